// Learned codes (seed 000, "Learning a Code"): a neural encoder turns k queries into r
// parity queries that are run by the deployed base model F itself, and a neural decoder
// reconstructs unavailable outputs F(X_i) from whatever of the k + r outputs arrived.
//
// The code is systematic: the k originals go to base-model workers untouched; the r parity
// queries are also sent to base-model workers (WorkerFunction 'base'), unless the config names
// a parity-model architecture (`parityModel`, joint training of encoder, decoder and parity
// models, seed 002 section VI-C): then parity query j goes to parity model F_P[j]
// (WorkerFunction {kind: 'parity', index: j}, one parity model per parity slot, as in ParM),
// whose weights the code checkpoint holds under "parity.<j>.". Encoders and decoders
// are pluggable "coders", registered by name (see registerEncoder / registerDecoder and the
// worked example in src/codes/README.md); the built-in ones are the paper's MLPEncoder,
// ConvEncoder and MLPDecoder.
//
// Coder contracts (single-channel; the code handles channels and batching):
//   encoder.forward(x [N, k, H, W]) -> [N, r, H, W]     (N = groups x channels)
//   decoder.forward(y [N, k + r, m]) -> [N, k, m]        (unavailable outputs are zeros)
import { cat, stack } from '../engine/ops.js';
import { tensor, zeros, type Tensor } from '../engine/tensor.js';
import { tidy } from '../engine/scope.js';
import { Linear } from '../nn/linear.js';
import { ReLU } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { ConvEncoder, ENCODER_INITS, encoderInitNamed } from '../models/conv-encoder.js';
import { applyReferenceInit } from '../models/paper-init.js';
import { isModelName, modelNames } from '../models/registry.js';
import { registerCodeFamily } from './family-table.js';
import {
  UndecodableError,
  availabilityOf,
  checkGroupInput,
  checkOutputs,
  missingIndices,
  systematicEvaluationPatterns,
  type Availability,
  type Code,
  type CodeConfig,
  type CodedQuery,
  type Decoded,
  type WorkerFunction,
} from './code.js';

// ---------------------------------------------------------------------------
// the coder interface and registry

/** What an encoder factory is given. */
export interface EncoderSpec {
  k: number;
  r: number;
  /** one channel's spatial size (multi-channel queries are encoded channel by channel) */
  height: number;
  width: number;
  /** free-form options from the code config (encoderOptions) */
  options: Record<string, unknown>;
}

/** What a decoder factory is given. */
export interface DecoderSpec {
  k: number;
  r: number;
  /** length of one base-model output (e.g. the number of classes) */
  m: number;
  options: Record<string, unknown>;
}

export interface CoderFactory<S> {
  description: string;
  /** Build a freshly initialised module obeying the encoder or decoder contract. */
  build(spec: S): Module;
}

const encoders = new Map<string, CoderFactory<EncoderSpec>>();
const decoders = new Map<string, CoderFactory<DecoderSpec>>();

function checkCoderName(kind: string, name: string, map: Map<string, unknown>): void {
  if (!/^[a-z0-9][a-z0-9_-]*$/i.test(name)) throw new RangeError(`${kind} name '${name}' must be letters, digits, '-' or '_'`);
  if (map.has(name)) throw new Error(`${kind} '${name}' is already registered`);
}

/** Register an encoder: build(spec) returns a Module mapping [N, k, H, W] to [N, r, H, W]. */
export function registerEncoder(name: string, factory: CoderFactory<EncoderSpec>): void {
  checkCoderName('encoder', name, encoders);
  encoders.set(name, factory);
}

/** Register a decoder: build(spec) returns a Module mapping [N, k + r, m] to [N, k, m]. */
export function registerDecoder(name: string, factory: CoderFactory<DecoderSpec>): void {
  checkCoderName('decoder', name, decoders);
  decoders.set(name, factory);
}

export function encoderNames(): string[] {
  return [...encoders.keys()];
}
export function decoderNames(): string[] {
  return [...decoders.keys()];
}
// ---------------------------------------------------------------------------
// built-in coders

/** MLPEncoder: flatten the k inputs, FC kn^2 -> kn^2, ReLU, FC kn^2 -> rn^2, reshape to r images. */
export class MLPEncoder extends Module {
  readonly net: Sequential;
  constructor(
    readonly k: number,
    readonly r: number,
    readonly height: number,
    readonly width: number,
  ) {
    super();
    const d = height * width;
    this.net = this.registerModule('net', new Sequential(new Linear(k * d, k * d), new ReLU(), new Linear(k * d, r * d)));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.net.forward(x.flatten(1)).reshape([x.shape[0], this.r, this.height, this.width]));
  }
}

/**
 * MLPDecoder: FC (k+r)m -> h1, ReLU, FC h1 -> h2, ReLU, FC h2 -> km, reshaped to [N, k, m].
 * The reference code's widths (coders/mlp_coder.py MLPDecoder: layer multipliers [k + r, k]) are
 * h1 = (k+r)m, h2 = km, the default. Before issue 19 ours were h1 = h2 = km; checkpoints of that
 * layout load with decoderOptions.hidden = [km, km] (recognised from their tensors' shapes).
 */
export class MLPDecoder extends Module {
  readonly net: Sequential;
  readonly hidden: readonly [number, number];
  constructor(
    readonly k: number,
    readonly r: number,
    readonly m: number,
    hidden?: readonly [number, number],
  ) {
    super();
    const km = k * m;
    this.hidden = hidden ?? [(k + r) * m, km];
    const [h1, h2] = this.hidden;
    this.net = this.registerModule(
      'net',
      new Sequential(new Linear((k + r) * m, h1), new ReLU(), new Linear(h1, h2), new ReLU(), new Linear(h2, km)),
    );
  }
  forward(y: Tensor): Tensor {
    return tidy(() => this.net.forward(y.flatten(1)).reshape([y.shape[0], this.k, this.m]));
  }
}

registerEncoder('mlp', {
  description: 'MLPEncoder: FC kn^2 -> kn^2, ReLU, FC kn^2 -> rn^2 (N(0, 0.01) weights, zero biases)',
  build: (s) => applyReferenceInit(new MLPEncoder(s.k, s.r, s.height, s.width)),
});
registerEncoder('conv', {
  description:
    "ConvEncoder: 3x3 convs, dilations 1,1,2,4,8,1, 'same' padding, 20k channels, 1x1 conv to r channels (the reference code's Xavier-uniform with the ReLU gain, zero biases; options.init 'xavier': gain 1, 'kaiming': He init)",
  build: (s) => {
    const { hidden, init } = s.options;
    if (hidden !== undefined && !(Number.isInteger(hidden) && (hidden as number) >= 1)) {
      throw new RangeError(`conv encoder: options.hidden must be a positive integer, got ${String(hidden)}`);
    }
    const named = init === undefined ? 'reference' : encoderInitNamed(init);
    if (named === undefined) {
      throw new RangeError(`conv encoder: options.init must be one of ${ENCODER_INITS.join(', ')}, got ${String(init)}`);
    }
    return new ConvEncoder({ k: s.k, outChannels: s.r, hidden: hidden as number | undefined }).initialise(named);
  },
});
registerDecoder('mlp', {
  description:
    'MLPDecoder: FC (k+r)m -> (k+r)m, ReLU, FC (k+r)m -> km, ReLU, FC km -> km (N(0, 0.01) weights, zero biases; options.hidden [h1, h2] other widths)',
  build: (s) => {
    const { hidden } = s.options;
    if (hidden !== undefined && !(Array.isArray(hidden) && hidden.length === 2 && hidden.every((h) => Number.isInteger(h) && h >= 1))) {
      throw new RangeError(`mlp decoder: options.hidden must be two positive integers [h1, h2], got ${JSON.stringify(hidden)}`);
    }
    return applyReferenceInit(new MLPDecoder(s.k, s.r, s.m, hidden as [number, number] | undefined));
  },
});

/**
 * A stored learned-code config as the current code reads it, given the shapes of the checkpoint's
 * tensors: an MLPDecoder saved before issue 19 (first layer km wide, no options.hidden) gets
 * decoderOptions.hidden = [km, km], the layout it was trained with.
 */
export function upgradeLearnedConfig(config: CodeConfig, shapes: ReadonlyMap<string, readonly number[]>): CodeConfig {
  const c = config as Partial<LearnedCodeConfig>;
  if (c.decoder !== 'mlp' || c.decoderOptions?.hidden !== undefined || !posInt(c.k) || !posInt(c.r) || !posInt(c.outputs)) return config;
  const first = shapes.get('decoder.net.0.weight');
  const km = c.k * c.outputs;
  if (first === undefined || first[0] !== km || km === (c.k + c.r) * c.outputs) return config;
  return { ...config, decoderOptions: { ...(c.decoderOptions ?? {}), hidden: [km, km] } } as CodeConfig;
}

// ---------------------------------------------------------------------------
// the code

export interface LearnedCodeConfig extends CodeConfig {
  family: 'learned';
  encoder: string;
  decoder: string;
  /** one query's shape */
  input: { channels: number; height: number; width: number };
  /** length m of one base-model output */
  outputs: number;
  encoderOptions?: Record<string, unknown>;
  decoderOptions?: Record<string, unknown>;
  /**
   * Architecture (a model-zoo name) of the parity models that compute on the parity queries,
   * one per parity slot (F_P[j] runs parity query j). Absent: the base model F runs them.
   */
  parityModel?: string;
}

const posInt = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1;

/** Validate a learned-code config with clear errors. */
export function checkLearnedConfig(c: CodeConfig): LearnedCodeConfig {
  const l = c as Partial<LearnedCodeConfig>;
  if (!posInt(c.k)) throw new RangeError(`learned code: k must be a positive integer, got ${String(c.k)}`);
  if (!posInt(c.r)) throw new RangeError(`learned code: r must be >= 1, got ${String(c.r)}`);
  if (typeof l.encoder !== 'string' || !encoders.has(l.encoder)) {
    throw new Error(
      `learned code: unknown encoder '${String(l.encoder)}' (registered: ${encoderNames().join(', ')}; register your own with registerEncoder)`,
    );
  }
  if (typeof l.decoder !== 'string' || !decoders.has(l.decoder)) {
    throw new Error(
      `learned code: unknown decoder '${String(l.decoder)}' (registered: ${decoderNames().join(', ')}; register your own with registerDecoder)`,
    );
  }
  const i = l.input;
  if (i === undefined || !posInt(i.channels) || !posInt(i.height) || !posInt(i.width)) {
    throw new RangeError(`learned code: input must be {channels, height, width} of positive integers, got ${JSON.stringify(i)}`);
  }
  if (!posInt(l.outputs))
    throw new RangeError(`learned code: outputs (length of a base-model output) must be a positive integer, got ${String(l.outputs)}`);
  if (l.parityModel !== undefined && (typeof l.parityModel !== 'string' || !isModelName(l.parityModel))) {
    throw new Error(
      `learned code: unknown parityModel '${String(l.parityModel)}' (an architecture: ${modelNames().join(', ')}; leave it out to run the base model on the parities)`,
    );
  }
  return l as LearnedCodeConfig;
}

export class LearnedCode implements Code {
  readonly family = 'learned';
  readonly systematic = true;
  readonly k: number;
  readonly r: number;
  readonly n: number;
  readonly encoder: Module;
  readonly decoder: Module;
  readonly cfg: LearnedCodeConfig;
  private readonly patterns: boolean[][];

  constructor(config: CodeConfig) {
    this.cfg = checkLearnedConfig(config);
    this.k = this.cfg.k;
    this.r = this.cfg.r;
    this.n = this.k + this.r;
    const { height, width } = this.cfg.input;
    this.encoder = encoders.get(this.cfg.encoder)!.build({ k: this.k, r: this.r, height, width, options: this.cfg.encoderOptions ?? {} });
    this.decoder = decoders
      .get(this.cfg.decoder)!
      .build({ k: this.k, r: this.r, m: this.cfg.outputs, options: this.cfg.decoderOptions ?? {} });
    this.patterns = systematicEvaluationPatterns(this.k, this.r);
  }

  get name(): string {
    const pm = this.cfg.parityModel === undefined ? '' : `, parity=${this.cfg.parityModel}`;
    return `learned(k=${this.k}, r=${this.r}, encoder=${this.cfg.encoder}, decoder=${this.cfg.decoder}${pm})`;
  }

  /** Whether parity queries go to parity models F_P[j] (true) or to the base model F (false). */
  get usesParityModels(): boolean {
    return this.cfg.parityModel !== undefined;
  }

  /** The worker function of parity slot j: F_P[j] with parity models, else F. */
  parityFunction(j: number): WorkerFunction {
    return this.usesParityModels ? { kind: 'parity', index: j } : { kind: 'base' };
  }

  /**
   * The r parity queries of G groups: x [G, k, C, H, W] -> [G, r, C, H, W]. Each channel is
   * encoded separately (red with red): channels never mix.
   */
  parities(x: Tensor): Tensor {
    const s = checkGroupInput(this, x);
    const { channels: C, height: H, width: W } = this.cfg.input;
    if (s.length !== 5 || s[2] !== C || s[3] !== H || s[4] !== W) {
      throw new RangeError(`${this.name}: expected coding groups shaped [G, ${this.k}, ${C}, ${H}, ${W}], got [${s.join(', ')}]`);
    }
    const G = s[0];
    return tidy(() => {
      const perChannel = x.permute(0, 2, 1, 3, 4).reshape([G * C, this.k, H, W]);
      const p = this.encoder.forward(perChannel);
      const ps = p.shape;
      if (ps.length !== 4 || ps[0] !== G * C || ps[1] !== this.r || ps[2] !== H || ps[3] !== W) {
        throw new Error(
          `encoder '${this.cfg.encoder}' returned [${ps.join(', ')}] for input [${G * C}, ${this.k}, ${H}, ${W}]; it must return [N, r = ${this.r}, H, W]`,
        );
      }
      return p.reshape([G, C, this.r, H, W]).permute(0, 2, 1, 3, 4).contiguous();
    });
  }

  encode(x: Tensor): CodedQuery[] {
    const p = this.parities(x);
    const out: CodedQuery[] = [];
    for (let i = 0; i < this.k; i++) out.push({ fn: { kind: 'base' }, inputs: [x.select(1, i)] });
    for (let j = 0; j < this.r; j++) out.push({ fn: this.parityFunction(j), inputs: [p.select(1, j)] });
    p.dispose();
    return out;
  }

  /**
   * The decoder run on every pattern at once: all [G, n, m] (every worker output; the masked
   * ones may hold anything) and P availability patterns -> reconstructions [P, G, k, m].
   * Unavailable outputs are replaced by zeros in place, so positions are preserved.
   */
  decodePatterns(all: Tensor, patterns: readonly Availability[]): Tensor {
    const s = all.shape;
    if (s.length !== 3 || s[1] !== this.n || s[2] !== this.cfg.outputs) {
      throw new RangeError(`${this.name}: decodePatterns expects outputs [G, ${this.n}, ${this.cfg.outputs}], got [${s.join(', ')}]`);
    }
    for (const p of patterns)
      if (p.length !== this.n) throw new RangeError(`${this.name}: a pattern has ${p.length} entries, expected ${this.n}`);
    const [G, n, m] = s;
    const P = patterns.length;
    return tidy(() => {
      const mask = tensor(
        patterns.flatMap((p) => p.map((a) => (a ? 1 : 0))),
        [P, 1, n, 1],
        { dtype: all.dtype, device: all.device },
      );
      const input = all
        .unsqueeze(0)
        .mul(mask)
        .reshape([P * G, n, m]);
      const out = this.decoder.forward(input);
      const os = out.shape;
      if (os.length !== 3 || os[0] !== P * G || os[1] !== this.k || os[2] !== m) {
        throw new Error(
          `decoder '${this.cfg.decoder}' returned [${os.join(', ')}] for input [${P * G}, ${n}, ${m}]; it must return [N, k = ${this.k}, m = ${m}]`,
        );
      }
      return out.reshape([P, G, this.k, m]);
    });
  }

  canDecode(available: Availability): boolean {
    if (available.length !== this.n) return false;
    return missingIndices(available).length <= this.r;
  }

  decode(outputs: readonly (Tensor | null)[]): Decoded {
    checkOutputs(this, outputs);
    const avail = availabilityOf(outputs);
    const missing = missingIndices(avail);
    if (missing.length > this.r) throw new UndecodableError(this.name, avail, `more than r = ${this.r} outputs are missing`);
    const present = outputs.filter((o): o is Tensor => o !== null);
    const ref = present[0];
    const m = this.cfg.outputs;
    for (const o of present) {
      if (o.rank !== 2 || o.shape[1] !== m || o.shape[0] !== ref.shape[0]) {
        throw new RangeError(
          `${this.name}: every output must be [G, ${m}] with the same G, got [${o.shape.join(', ')}] and [${ref.shape.join(', ')}]`,
        );
      }
    }
    const dataMissing = missing.filter((i) => i < this.k);
    if (dataMissing.length === 0) {
      return { outputs: outputs.slice(0, this.k).map((o) => o!.share()), reconstructed: Array<boolean>(this.k).fill(false) };
    }
    const rec = tidy(() => {
      const G = ref.shape[0];
      const all = stack(
        outputs.map((o) => (o === null ? zeros([G, m], { dtype: ref.dtype, device: ref.device }) : o)),
        1,
      );
      const r = this.decodePatterns(all, [avail]).select(0, 0);
      return dataMissing.map((i) => r.select(1, i).contiguous());
    });
    const result: Tensor[] = [];
    let j = 0;
    for (let i = 0; i < this.k; i++) result.push(avail[i] ? outputs[i]!.share() : rec[j++]);
    return { outputs: result, reconstructed: avail.slice(0, this.k).map((a) => !a) };
  }

  evaluationPatterns(): Availability[] {
    return this.patterns.map((p) => [...p]);
  }

  modules(): Map<string, Module> {
    return new Map<string, Module>([
      ['encoder', this.encoder],
      ['decoder', this.decoder],
    ]);
  }

  config(): LearnedCodeConfig {
    return JSON.parse(JSON.stringify(this.cfg)) as LearnedCodeConfig;
  }
}

registerCodeFamily('learned', (c) => new LearnedCode(c), upgradeLearnedConfig);

/** Concatenate data outputs [G, k, m] and parity outputs [G, r, m] into the decoder's [G, n, m]. */
export function allOutputs(data: Tensor, parity: Tensor): Tensor {
  return cat([data, parity], 1);
}
