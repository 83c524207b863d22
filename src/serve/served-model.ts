// What a model instance serves, from its --model argument:
//   a base checkpoint (models/*.safetensors from `coded train base`), run on a worker thread;
//   a parity-code checkpoint (`coded train parity`, or `coded train learned --parity-model`):
//                      its parity model j (parityIndex, default 0), loaded with readCodeCheckpoint
//                      on a worker thread;
//   linear:D:C[:SEED]  a seeded random linear map R^D -> R^C (logits, no softmax), worker thread;
//   random:MODEL:CxHxW:CLASSES[:SEED]
//                      a zoo model (src/models/registry.ts: resnet18, vgg11, mlp:..., ...) with
//                      seeded random weights for C x H x W inputs and CLASSES logits, worker
//                      thread; for latency experiments at a model's real size, e.g.
//                      random:resnet18:3x224x224:1000 (torchvision's ImageNet ResNet-18). The
//                      worker checks that the zoo has MODEL and that it takes C x H x W inputs;
//                      here only the syntax is checked (no libtorch on the main thread);
//   a code checkpoint with family-specific workers (e.g. `coded train polynomial`, Lagrange):
//                      its worker network NAME[INDEX] (default the first, H[0]); multi-input
//                      workers (H_S) take side inputs next to the main input;
//   noop:D             identity on D floats computed in the event loop (no libtorch), for
//                      measuring serving overheads;
//   FILE.pt (.pth, .torchscript)
//                      a TorchScript file (torch.jit.trace/script + save), libtorch's JIT on a
//                      worker thread; its input shape comes from --input-shape (the file does
//                      not record it), its output shape from a probe forward at load;
//   FILE.onnx          an ONNX file through ONNX Runtime (onnxruntime-node, CPU) on a worker
//                      thread; input shape from the file (or --input-shape for symbolic
//                      dimensions).
// Only the checkpoint's JSON header is read here, so the main thread never loads weights.
import { readCheckpointHeader } from '../nn/checkpoint.js';
import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { AsyncForward } from './async-forward.js';
import type { BuildOptions } from './model-builder.js';
import type { ParityMeta } from '../codes/parity-models.js';
import { workerSignatures } from '../codes/worker-signature.js';
import { Worker } from 'node:worker_threads';
import type { OnnxWorkerReply, OnnxWorkerRequest } from './onnx-worker.js';
import { TORCHSCRIPT_EXTENSIONS, isOnnxPath, isTorchScriptPath } from '../models/file-kinds.js';
import { checkpointPreprocessing, type Preprocessing } from '../data/preprocessing.js';

export interface ServedModel {
  /** V2 model name */
  name: string;
  platform: string;
  inputShape: number[];
  /** inputs after the main one (empty for single-input models), same batch */
  sideInputs: { name: string; shape: number[] }[];
  outputShape: number[];
  /** what the model is, for logs and metadata */
  description: string;
  /** how raw images become its input (published in the V2 metadata); null: unknown; undefined: not applicable */
  preprocessing?: Preprocessing | null;
  /** set up (start the worker thread); idempotent */
  load(device: string, threads: number): Promise<void>;
  /** forward a batch [B, ...inputShape] (and side inputs [B, ...shape], in order) -> [B, ...outputShape] */
  forward(data: Float32Array, batch: number, side?: Float32Array[]): Promise<Float32Array>;
  close(): Promise<void>;
}

/** Read a safetensors file's "coded" JSON metadata without loading tensors (nn's one header reader). */
export const readCheckpointMetadata: (path: string) => Record<string, unknown> = readCheckpointHeader;

/**
 * Models are built one at a time in a process: worker threads share libtorch's process-wide
 * random generator, so two seeded builds (`linear:`, `random:`) running at once would interleave
 * their draws and get weights other than their seed's (several instances in one process: tests,
 * embedding programs).
 */
let building: Promise<unknown> = Promise.resolve();

class WorkerModel implements ServedModel {
  private af: AsyncForward | null = null;
  constructor(
    readonly name: string,
    readonly platform: string,
    readonly inputShape: number[],
    /** empty until load() when `probe` is set (the file does not say it) */
    public outputShape: number[],
    readonly description: string,
    private readonly build: BuildOptions,
    readonly sideInputs: { name: string; shape: number[] }[] = [],
    /** learn the output shape (and check the input shape) with one forward of zeros at load */
    private readonly probe = false,
  ) {}
  async load(device: string, threads: number): Promise<void> {
    if (this.af !== null) return;
    const { AsyncForward } = await import('./async-forward.js');
    const module = fileURLToPath(new URL('./model-builder.js', import.meta.url));
    const made = building.then(() => AsyncForward.create({ module, options: this.build, device, threads }));
    building = made.catch(() => undefined);
    const af = await made;
    if (this.probe) {
      try {
        const r = await af.forward(new Float32Array(this.inputShape.reduce((a, b) => a * b, 1)), [1, ...this.inputShape]);
        this.outputShape = r.shape.slice(1);
      } catch (e) {
        await af.close();
        throw e;
      }
    }
    this.af = af;
  }
  async forward(data: Float32Array, batch: number, side?: Float32Array[]): Promise<Float32Array> {
    if (this.af === null) throw new Error('model not loaded');
    if ((side?.length ?? 0) !== this.sideInputs.length)
      throw new Error(`${this.name} takes ${this.sideInputs.length} side input(s), got ${side?.length ?? 0}`);
    const s = this.sideInputs.map((t, i) => ({ data: side![i], shape: [batch, ...t.shape] }));
    const r = await this.af.forward(data, [batch, ...this.inputShape], s.length > 0 ? s : undefined);
    return r.data;
  }
  async close(): Promise<void> {
    const af = this.af;
    this.af = null;
    if (af !== null) await af.close();
  }
}

class NoopModel implements ServedModel {
  readonly platform = 'coded-noop';
  readonly description: string;
  readonly sideInputs = [];
  constructor(
    readonly name: string,
    readonly inputShape: number[],
    readonly outputShape: number[],
  ) {
    this.description = `identity on ${inputShape[0]} floats (no-op)`;
  }
  async load(): Promise<void> {}
  async forward(data: Float32Array): Promise<Float32Array> {
    return data.slice();
  }
  async close(): Promise<void> {}
}

/** An ONNX file served by ONNX Runtime on a worker thread (src/serve/onnx-worker.ts). */
class OnnxServedModel implements ServedModel {
  readonly platform = 'onnxruntime_onnx';
  readonly sideInputs = [];
  private worker: Worker | null = null;
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (d: Float32Array) => void; reject: (e: Error) => void }>();
  inputShape: number[] = [];
  outputShape: number[] = [];
  description: string;
  constructor(
    readonly name: string,
    private readonly path: string,
    private readonly givenInputShape?: number[],
  ) {
    this.inputShape = givenInputShape ?? [];
    this.description = `ONNX model ${path} (ONNX Runtime, CPU)`;
  }
  async load(device: string, threads: number): Promise<void> {
    if (this.worker !== null) return;
    if (device !== 'cpu')
      throw new Error(
        `${this.path}: ONNX models run on the CPU here (ONNX Runtime's CPU provider); use --device cpu, or serve a TorchScript export of the model on ${device}`,
      );
    const worker = new Worker(new URL('./onnx-worker.js', import.meta.url));
    const ready = await new Promise<OnnxWorkerReply>((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', (e) => reject(new Error(`ONNX worker failed to start: ${e.message}`)));
      worker.postMessage({
        type: 'init',
        path: this.path,
        threads,
        ...(this.givenInputShape !== undefined ? { inputShape: this.givenInputShape } : {}),
      } satisfies OnnxWorkerRequest);
    });
    if (ready.type !== 'ready') {
      await worker.terminate();
      throw new Error(ready.type === 'error' ? ready.message : `${this.path}: unexpected reply from the ONNX worker`);
    }
    this.inputShape = ready.inputShape;
    this.outputShape = ready.outputShape;
    const failAll = (e: Error) => {
      for (const w of this.waiting.values()) w.reject(e);
      this.waiting.clear();
    };
    worker.on('message', (m: OnnxWorkerReply) => {
      if (m.type === 'ready') return;
      const w = this.waiting.get(m.id);
      if (w === undefined) return;
      this.waiting.delete(m.id);
      if (m.type === 'result') w.resolve(m.data);
      else w.reject(new Error(m.message));
    });
    worker.on('error', (e) => failAll(new Error(`ONNX worker crashed: ${e.message}`)));
    worker.on('exit', (code) => failAll(new Error(`ONNX worker exited (code ${code})`)));
    this.worker = worker;
  }
  forward(data: Float32Array, batch: number): Promise<Float32Array> {
    const worker = this.worker;
    if (worker === null) return Promise.reject(new Error('model not loaded'));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      worker.postMessage({ type: 'forward', id, data, batch } satisfies OnnxWorkerRequest);
    });
  }
  async close(): Promise<void> {
    const w = this.worker;
    this.worker = null;
    if (w !== null) await w.terminate();
  }
}

/** Parse an --input-shape such as 3x32x32 (per example, without the batch dimension). */
export function parseInputShape(text: string): number[] {
  const dims = text.split(/[x,]/);
  if (dims.length === 0 || !dims.every((d) => /^\d+$/.test(d) && Number(d) >= 1)) {
    throw new Error(
      `bad --input-shape '${text}': use positive integers joined by x, per example without the batch dimension (e.g. 3x32x32 or 784)`,
    );
  }
  return dims.map(Number);
}

/** The syntax of a random-weight zoo model spec (for help texts and errors). */
export const RANDOM_MODEL_SPEC = 'random:MODEL:CxHxW:CLASSES[:SEED]';

export interface RandomModelSpec {
  model: string;
  input: { channels: number; height: number; width: number };
  classes: number;
  seed: number;
}

/**
 * Parse `random:MODEL:CxHxW:CLASSES[:SEED]` (SEED default 1). MODEL may itself contain colons
 * (mlp:200,100:dropout=0.2); the CxHxW part after it ends the name. Throws an error naming the
 * syntax when the spec is malformed. Whether the zoo has MODEL is checked when it is built.
 */
export function parseRandomModelSpec(spec: string): RandomModelSpec {
  const bad = (why: string) =>
    new Error(
      `bad --model '${spec}': ${why}; use ${RANDOM_MODEL_SPEC}, e.g. random:resnet18:3x224x224:1000 or random:mlp:200,100:1x28x28:10:7 (MODEL from \`coded models\`)`,
    );
  if (!spec.startsWith('random:')) throw bad('not a random:... spec');
  const m = /^random:(.+):([^:]*x[^:]*):([^:]+)(?::([^:]+))?$/.exec(spec);
  if (m === null) throw bad('expected a model name, an input shape CxHxW and a class count');
  const [, model, shape, classesText, seedText] = m;
  const dims = shape.split('x');
  const n = dims.map(Number);
  if (dims.length !== 3 || !n.every((x) => Number.isInteger(x) && x >= 1) || dims.some((d) => !/^\d+$/.test(d)))
    throw bad(`the input shape '${shape}' must be three positive integers CxHxW`);
  if (!/^\d+$/.test(classesText) || !(Number(classesText) >= 1)) throw bad(`CLASSES must be a positive integer, got '${classesText}'`);
  if (seedText !== undefined && !/^-?\d+$/.test(seedText)) throw bad(`SEED must be an integer, got '${seedText}'`);
  return {
    model,
    input: { channels: n[0], height: n[1], width: n[2] },
    classes: Number(classesText),
    seed: seedText === undefined ? 1 : Number(seedText),
  };
}

function positiveInts(parts: string[], what: string): number[] {
  const n = parts.map(Number);
  if (!n.every((x) => Number.isInteger(x) && x >= 1)) throw new Error(`bad --model '${what}': dimensions must be positive integers`);
  return n;
}

/**
 * Resolve an instance's --model argument (see the file comment); `name` overrides the V2 model
 * name; `parityIndex` picks the parity model of a parity-code checkpoint (only for those).
 */
export function servedModelFrom(
  spec: string,
  name?: string,
  parityIndex?: number,
  worker?: string,
  opts: { inputShape?: number[] } = {},
): ServedModel {
  const isTorchScript = isTorchScriptPath(spec);
  const isOnnx = isOnnxPath(spec);
  if (opts.inputShape !== undefined && !isTorchScript && !isOnnx)
    throw new Error(
      `--input-shape applies to TorchScript (${TORCHSCRIPT_EXTENSIONS.join(', ')}) and ONNX (.onnx) files, not to '${spec}' (its shape is known)`,
    );
  if ((isTorchScript || isOnnx) && (parityIndex !== undefined || worker !== undefined))
    throw new Error(`--parity-index and --worker apply to code checkpoints, not to '${spec}'`);
  if (isTorchScript) {
    if (opts.inputShape === undefined)
      throw new Error(
        `${spec}: TorchScript files do not record their input shape; pass --input-shape (per example, without the batch dimension, e.g. 3x32x32)`,
      );
    const n = name ?? basename(spec).replace(/\.[^.]+$/, '');
    return withPreprocessing(
      new WorkerModel(
        n,
        'pytorch_libtorch',
        opts.inputShape,
        [],
        `TorchScript model ${spec} (libtorch JIT) on ${opts.inputShape.join('x')} inputs`,
        { kind: 'torchscript', path: spec },
        [],
        true,
      ),
      null,
    );
  }
  if (isOnnx) return withPreprocessing(new OnnxServedModel(name ?? basename(spec).replace(/\.onnx$/i, ''), spec, opts.inputShape), null);
  if (parityIndex !== undefined && !(Number.isInteger(parityIndex) && parityIndex >= 0))
    throw new Error(`parity index must be a non-negative integer, got ${parityIndex}`);
  const notParity = () => {
    if (parityIndex !== undefined) throw new Error(`--parity-index applies to parity-code checkpoints only, not to '${spec}'`);
  };
  if (worker !== undefined && (spec.startsWith('noop:') || spec.startsWith('linear:') || spec.startsWith('random:'))) {
    throw new Error(`--worker applies to code checkpoints with worker networks (e.g. from \`coded train polynomial\`), not to '${spec}'`);
  }
  if (spec.startsWith('noop:')) {
    notParity();
    const [d] = positiveInts(spec.slice(5).split(':'), spec);
    if (spec.split(':').length !== 2) throw new Error(`bad --model '${spec}': use noop:D`);
    return new NoopModel(name ?? 'noop', [d], [d]);
  }
  if (spec.startsWith('linear:')) {
    notParity();
    const parts = spec.slice(7).split(':');
    if (parts.length < 2 || parts.length > 3) throw new Error(`bad --model '${spec}': use linear:D:C[:SEED]`);
    const [d, c] = positiveInts(parts.slice(0, 2), spec);
    const seed = parts[2] === undefined ? 1 : Number(parts[2]);
    if (!Number.isInteger(seed)) throw new Error(`bad --model '${spec}': SEED must be an integer`);
    return new WorkerModel(name ?? 'linear', 'coded-libtorch', [d], [c], `random linear map ${d} -> ${c} (seed ${seed})`, {
      kind: 'linear',
      inFeatures: d,
      classes: c,
      seed,
    });
  }
  if (spec.startsWith('random:')) {
    notParity();
    const r = parseRandomModelSpec(spec);
    const { channels, height, width } = r.input;
    return new WorkerModel(
      name ?? r.model.replace(/[^\w.-]/g, '_'),
      'coded-libtorch',
      [channels, height, width],
      [r.classes],
      `${r.model} with random weights (seed ${r.seed}) on ${channels}x${height}x${width} inputs, ${r.classes} classes`,
      { kind: 'random', ...r },
    );
  }
  const meta = readCheckpointMetadata(spec) as {
    kind?: string;
    model?: string;
    dataset?: string;
    input?: { channels: number; height: number; width: number };
    classes?: string[];
    parity?: Partial<ParityMeta>;
    code?: { family?: string; k?: number; r?: number } & Record<string, unknown>;
  };
  if (meta.kind === 'code' && meta.parity === undefined && meta.code !== undefined) {
    // a code with family-specific workers (Lagrange: H); only the header is read here
    const sigs = workerSignatures(meta.code as { family: string } & Record<string, unknown>);
    if (sigs.length > 0) notParity();
    if (sigs.length === 0)
      throw new Error(
        `${spec} is a ${String(meta.code.family)} code checkpoint without parity models (no "parity" metadata from \`coded train parity\`) or worker networks to serve; an instance serves a base checkpoint, a parity-code checkpoint, a code checkpoint with worker networks (e.g. Lagrange), linear:D:C[:SEED], ${RANDOM_MODEL_SPEC} or noop:D`,
      );
    let sig = sigs[0];
    if (worker !== undefined) {
      const m = /^([A-Za-z_][\w-]*)(?:\[(\d+)\])?$/.exec(worker);
      const found = m === null ? undefined : sigs.find((s) => s.name === m[1] && s.index === Number(m[2] ?? 0));
      if (found === undefined)
        throw new Error(`--worker '${worker}': ${spec} has worker(s) ${sigs.map((s) => `${s.name}[${s.index}]`).join(', ')}`);
      sig = found;
    }
    const n = name ?? `${basename(spec).replace(/\.safetensors$/, '')}-${sig.name}${sig.index}`;
    return new WorkerModel(
      n,
      'coded-libtorch',
      sig.input,
      [sig.outputs],
      `${sig.description} (${spec})`,
      { kind: 'code-worker', path: spec, name: sig.name, index: sig.index },
      sig.sideInputs,
    );
  }
  if (worker !== undefined)
    throw new Error(`--worker applies to code checkpoints with worker networks (e.g. from \`coded train polynomial\`), not to '${spec}'`);
  if (meta.kind === 'code') {
    // Only the header here; the worker thread loads the weights with readCodeCheckpoint, which checks them.
    const p = meta.parity;
    if (p === undefined || typeof p.model !== 'string' || p.input === undefined || !Number.isInteger(p.count)) {
      throw new Error(
        `${spec} is a code checkpoint without parity models (no "parity" metadata from \`coded train parity\` or \`coded train learned --parity-model\`); an instance serves a base checkpoint, a parity-code checkpoint, linear:D:C[:SEED], ${RANDOM_MODEL_SPEC} or noop:D`,
      );
    }
    const j = parityIndex ?? 0;
    if (j >= p.count!)
      throw new Error(`${spec} has ${p.count} parity model(s) (indices 0..${p.count! - 1}); --parity-index ${j} is out of range`);
    const { channels, height, width, classes } = p.input;
    const n = name ?? `${basename(spec).replace(/\.safetensors$/, '')}-parity${j}`;
    const code = meta.code ? `${meta.code.family}(k=${meta.code.k}, r=${meta.code.r})` : 'code';
    // the preprocessing of the base's inputs (a parity model takes codes of such inputs)
    return withPreprocessing(
      new WorkerModel(
        n,
        'coded-libtorch',
        [channels, height, width],
        [classes],
        `parity model ${j} (${p.model}) of ${code} for ${meta.dataset ?? (meta as { base?: { dataset?: string } }).base?.dataset ?? '?'} (${spec})`,
        { kind: 'parity', path: spec, index: j },
      ),
      checkpointPreprocessing((meta as { base?: Record<string, unknown> }).base),
    );
  }
  notParity();
  if (meta.kind !== 'base' || !meta.model || !meta.input || !meta.classes) {
    throw new Error(
      `${spec} is neither a base-model checkpoint from \`coded train base\` nor a parity-code checkpoint from \`coded train parity\` (its metadata lacks kind/model/input/classes); or use linear:D:C[:SEED], ${RANDOM_MODEL_SPEC} or noop:D`,
    );
  }
  const { channels, height, width } = meta.input;
  const n = name ?? basename(spec).replace(/\.safetensors$/, '');
  return withPreprocessing(
    new WorkerModel(
      n,
      'coded-libtorch',
      [channels, height, width],
      [meta.classes.length],
      `${meta.model} on ${meta.dataset ?? '?'} (${spec})`,
      { kind: 'checkpoint', path: spec },
    ),
    checkpointPreprocessing(meta),
  );
}

function withPreprocessing<M extends ServedModel>(m: M, p: Preprocessing | null): M {
  m.preprocessing = p;
  return m;
}
