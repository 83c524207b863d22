// Lagrange codes with learned coefficient networks (AICC, after "Coded Distributed Image
// Classification"): a non-systematic code whose results are recovered from ANY R of the N
// worker outputs, R a design parameter independent of K.
//
// Encoder: E(alpha) = sum_{g=0..G} C_g alpha^g, each coefficient image C_g = Gamma_g(X_1..X_K)
// produced by its own network (an MLP over the K flattened images, or the dilated
// convolution stack over the K images as channels). Worker n (n = 1..N) receives E(alpha_n)
// with alpha_n = n / (N + 1).
// Workers, two designs:
//   H_B: an activation-free network (the Base-MLP shape, optionally after convolution
//        layers) on the encoded image only; affine, so H(E(alpha)) has degree G: R = G + 1.
//   H_S: Omega(sum_{p=0..P} V_p (.) E(alpha)^(.p)) with elementwise powers, Omega the
//        activation-free Base-MLP and V_p = Lambda_p(X_1..X_K) coefficient maps computed by
//        networks (with activations) at the master and sent along as side inputs;
//        degree G P, so R = G P + 1.
// Decoder: polynomial interpolation (barycentric form) through any R returned
// (alpha_n, output) pairs, evaluated at beta_k = k / K; softmax / argmax on top.
// Training evaluates D(beta_k) = H(E(beta_k)) directly (trainingLogits), which equals the
// decoded value up to rounding because D is a polynomial of degree R - 1.
import { tidy } from '../engine/scope.js';
import { stack } from '../engine/ops.js';
import type { Tensor } from '../engine/tensor.js';
import { kaimingNormal_, zeros_ } from '../engine/init.js';
import { Conv2d } from '../nn/conv2d.js';
import { ReLU } from '../nn/layers.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { ConvEncoder } from '../models/conv-encoder.js';
import { registerCodeFamily } from './family-table.js';
import { codeState } from './code-state.js';
import type { MultiInputModule, WorkerSet } from './computation.js';
import {
  UndecodableError,
  availabilityOf,
  checkGroupInput,
  checkOutputs,
  patternsWithMissing,
  type Availability,
  type Code,
  type CodeConfig,
  type CodedQuery,
  type Decoded,
} from './code.js';
import { combine, lagrangeMatrix } from './interpolation.js';

export type PolyArch = 'mlp' | 'cnn';
export type PolyWorkerDesign = 'HB' | 'HS';

export interface LagrangeOptions {
  k: number;
  /** workers N (>= max(k, R)) */
  n: number;
  /** encoder degree G (>= 1) */
  degree: number;
  /** H_S's elementwise power P (>= 1; H_B ignores it and uses 1) */
  power?: number;
  worker: PolyWorkerDesign;
  /** architecture of the coefficient networks Gamma_g */
  encoder: PolyArch;
  /** H_B: 'mlp' = Base-MLP only, 'cnn' = convolution layers then Base-MLP; H_S: architecture of Lambda_p */
  computation: PolyArch;
  /** one query's shape [C, H, W] */
  input: readonly number[];
  classes: number;
  /** Base-MLP hidden widths (default [200, 100]) */
  hidden?: readonly number[];
}

const DILATIONS = [1, 1, 2, 4, 8, 1];

/** The activation-free dilated convolution stack: C -> h channels through 3x3 layers, then 1x1 back to C. */
class LinearConvStack extends Module {
  readonly net: Sequential;
  constructor(channels: number, hidden: number) {
    super();
    const layers: Module[] = [];
    let c = channels;
    for (const d of DILATIONS) {
      layers.push(new Conv2d(c, hidden, 3, { padding: 'same', dilation: d }));
      c = hidden;
    }
    layers.push(new Conv2d(c, channels, 1));
    this.net = this.registerModule('net', new Sequential(...layers));
  }
  forward(x: Tensor): Tensor {
    return this.net.forward(x);
  }
}

/** The Base-MLP shape with or without ReLU between layers. */
export class PlainMLP extends Module {
  readonly net: Sequential;
  constructor(widths: readonly number[], activations: boolean) {
    super();
    const layers: Module[] = [];
    for (let i = 0; i + 1 < widths.length; i++) {
      layers.push(new Linear(widths[i], widths[i + 1]));
      if (activations && i + 2 < widths.length) layers.push(new ReLU());
    }
    this.net = this.registerModule('net', new Sequential(...layers));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.net.forward(x.rank === 2 ? x : x.flatten(1)));
  }
}

/** A coefficient network: K images [G, K, C, H, W] -> one image [G, C, H, W]. */
export class CoefficientNet extends Module {
  readonly body: Module;
  constructor(
    readonly arch: PolyArch,
    readonly k: number,
    readonly input: readonly number[],
  ) {
    super();
    const [c, h, w] = input;
    const d = c * h * w;
    this.body = this.registerModule(
      'body',
      arch === 'cnn'
        ? new ConvEncoder({ k: k * c, hidden: 20 * k, outChannels: c, dilations: DILATIONS })
        : new PlainMLP([k * d, k * d, d], true),
    );
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const [g, k, c, h, w] = x.shape;
      const y = this.arch === 'cnn' ? this.body.forward(x.reshape([g, k * c, h, w])) : this.body.forward(x.reshape([g, -1]));
      return y.reshape([g, c, h, w]);
    });
  }
}

/** The worker computation H (H_B or H_S). */
export class PolyWorker extends Module implements MultiInputModule {
  readonly conv: LinearConvStack | null;
  readonly omega: PlainMLP;
  constructor(
    readonly design: PolyWorkerDesign,
    readonly power: number,
    computation: PolyArch,
    input: readonly number[],
    hidden: readonly number[],
    classes: number,
    k: number,
  ) {
    super();
    const [c, h, w] = input;
    this.conv = design === 'HB' && computation === 'cnn' ? this.registerModule('conv', new LinearConvStack(c, 20 * k)) : null;
    this.omega = this.registerModule('omega', new PlainMLP([c * h * w, ...hidden, classes], false));
  }
  /** H_B on an encoded image [B, C, H, W] -> logits-like outputs [B, classes]. */
  forward(x: Tensor): Tensor {
    if (this.design === 'HS')
      throw new Error(`H_S needs its coefficient maps V_0..V_${this.power} as side inputs: use forwardInputs([x, V_0, ...])`);
    return tidy(() => this.omega.forward(this.conv === null ? x : this.conv.forward(x)));
  }
  forwardInputs(inputs: Tensor[]): Tensor {
    if (this.design === 'HB') {
      if (inputs.length !== 1) throw new Error(`H_B takes only the encoded input, got ${inputs.length} inputs`);
      return this.forward(inputs[0]);
    }
    if (inputs.length !== this.power + 2)
      throw new Error(`H_S takes the encoded input and ${this.power + 1} coefficient maps, got ${inputs.length} inputs`);
    const [x, ...v] = inputs;
    return tidy(() => {
      let acc = v[0];
      let xp: Tensor | null = null;
      for (let p = 1; p <= this.power; p++) {
        xp = xp === null ? x : xp.mul(x);
        acc = acc.add(v[p].mul(xp));
      }
      return this.omega.forward(acc);
    });
  }
}

export class LagrangeCode implements Code {
  readonly family = 'lagrange';
  readonly systematic = false;
  readonly k: number;
  readonly n: number;
  readonly r: number;
  readonly degree: number;
  readonly power: number;
  /** recovery threshold: outputs needed to decode */
  readonly R: number;
  readonly alphas: number[];
  readonly betas: number[];
  readonly gammas: CoefficientNet[];
  readonly lambdas: CoefficientNet[];
  readonly worker: PolyWorker;

  constructor(readonly options: LagrangeOptions) {
    const { k, n, degree, worker, encoder, computation, input, classes } = options;
    const hidden = options.hidden ?? [200, 100];
    if (!(Number.isInteger(k) && k >= 1)) throw new RangeError(`lagrange: k must be a positive integer, got ${k}`);
    if (!(Number.isInteger(degree) && degree >= 1)) throw new RangeError(`lagrange: degree G must be a positive integer, got ${degree}`);
    if (worker !== 'HB' && worker !== 'HS') throw new RangeError(`lagrange: worker must be HB or HS, got ${String(worker)}`);
    const power = worker === 'HB' ? 1 : (options.power ?? 1);
    if (!(Number.isInteger(power) && power >= 1)) throw new RangeError(`lagrange: power P must be a positive integer, got ${power}`);
    for (const [name, a] of [
      ['encoder', encoder],
      ['computation', computation],
    ] as const) {
      if (a !== 'mlp' && a !== 'cnn') throw new RangeError(`lagrange: ${name} must be mlp or cnn, got ${String(a)}`);
    }
    if (input.length !== 3 || !input.every((d) => Number.isInteger(d) && d >= 1))
      throw new RangeError(`lagrange: input must be [C, H, W], got [${input.join(', ')}]`);
    if (!(Number.isInteger(classes) && classes >= 2)) throw new RangeError(`lagrange: classes must be an integer >= 2, got ${classes}`);
    this.k = k;
    this.degree = degree;
    this.power = power;
    this.R = degree * power + 1;
    if (!(Number.isInteger(n) && n >= Math.max(k, this.R))) {
      throw new RangeError(`lagrange: n must be an integer >= max(k = ${k}, R = G P + 1 = ${this.R}), got ${n}`);
    }
    this.n = n;
    this.r = n - k;
    this.alphas = Array.from({ length: n }, (_, i) => (i + 1) / (n + 1));
    this.betas = Array.from({ length: k }, (_, i) => (i + 1) / k);
    this.gammas = Array.from({ length: degree + 1 }, () => new CoefficientNet(encoder, k, input));
    this.lambdas = worker === 'HS' ? Array.from({ length: power + 1 }, () => new CoefficientNet(computation, k, input)) : [];
    this.worker = new PolyWorker(worker, power, computation, input, hidden, classes, k);
  }

  get name(): string {
    const o = this.options;
    return `lagrange(k=${this.k}, n=${this.n}, G=${this.degree}, ${o.worker}${o.worker === 'HS' ? `, P=${this.power}` : ''}, ${o.encoder}+${o.computation}, R=${this.R})`;
  }

  /** Coefficient images C_0..C_G [G, C, H, W] of the encoding polynomial. */
  coefficients(x: Tensor): Tensor[] {
    return this.gammas.map((m) => m.forward(x));
  }

  /** H_S's coefficient maps V_0..V_P (empty for H_B). */
  maps(x: Tensor): Tensor[] {
    return this.lambdas.map((m) => m.forward(x));
  }

  private static evalPoly(coeffs: Tensor[], a: number): Tensor {
    return tidy(() => {
      // Horner: (((C_G a + C_{G-1}) a + ...) a + C_0)
      let acc = coeffs[coeffs.length - 1];
      for (let g = coeffs.length - 2; g >= 0; g--) acc = acc.mul(a).add(coeffs[g]);
      return acc === coeffs[coeffs.length - 1] ? acc.clone() : acc;
    });
  }

  encode(x: Tensor): CodedQuery[] {
    this.checkInput(x);
    return tidy(() => {
      const c = this.coefficients(x);
      const v = this.maps(x);
      return this.alphas.map((a, i) => ({
        fn: { kind: 'worker' as const, name: 'H', index: 0 },
        inputs: [LagrangeCode.evalPoly(c, a), ...v.map((t) => (i === 0 ? t : t.share()))],
      }));
    });
  }

  /** D(beta_k) = H(E(beta_k)) for each group and k: [G, K, classes] (the training forward pass). */
  trainingLogits(x: Tensor): Tensor {
    this.checkInput(x);
    return tidy(() => {
      const [g, k] = x.shape;
      const c = this.coefficients(x);
      const enc = stack(
        this.betas.map((b) => LagrangeCode.evalPoly(c, b)),
        1,
      ); // [G, K, C, H, W]
      const flat = enc.reshape([g * k, ...enc.shape.slice(2)]);
      const v = this.maps(x).map((t) =>
        t
          .unsqueeze(1)
          .expand([g, k, ...t.shape.slice(1)])
          .reshape([g * k, ...t.shape.slice(1)]),
      );
      const y = this.worker.forwardInputs([flat, ...v]);
      return y.reshape([g, k, -1]);
    });
  }

  private checkInput(x: Tensor): void {
    const s = checkGroupInput(this, x);
    const want = this.options.input;
    if (s.length !== 5 || s.slice(2).join(',') !== want.join(',')) {
      throw new RangeError(`${this.name}: expected coding groups shaped [G, ${this.k}, ${want.join(', ')}], got [${s.join(', ')}]`);
    }
  }

  canDecode(available: Availability): boolean {
    return available.length === this.n && available.filter(Boolean).length >= this.R;
  }

  decode(outputs: readonly (Tensor | null)[]): Decoded {
    checkOutputs(this, outputs);
    const avail = availabilityOf(outputs);
    const idx = avail.flatMap((a, i) => (a ? [i] : []));
    if (idx.length < this.R) {
      throw new UndecodableError(
        this.name,
        avail,
        `needs any R = ${this.R} worker outputs (degree ${this.R - 1} polynomial), got ${idx.length}`,
      );
    }
    const use = idx.slice(0, this.R);
    const m = lagrangeMatrix(
      use.map((i) => this.alphas[i]),
      this.betas,
    );
    return {
      outputs: combine(
        m,
        use.map((i) => outputs[i]!),
      ),
      reconstructed: Array<boolean>(this.k).fill(true),
      info: { used: this.R },
    };
  }

  evaluationPatterns(): Availability[] {
    const out: boolean[][] = [];
    for (let m = 0; m <= this.n - this.R; m++) out.push(...patternsWithMissing(this.n, m));
    return out;
  }

  modules(): Map<string, Module> {
    const m = new Map<string, Module>();
    this.gammas.forEach((g, i) => m.set(`gamma${i}`, g));
    this.lambdas.forEach((l, i) => m.set(`lambda${i}`, l));
    m.set('H', this.worker);
    return m;
  }

  parameters(): Tensor[] {
    return codeState(this).parameters();
  }

  numParameters(): number {
    return codeState(this).numParameters();
  }

  train(mode = true): void {
    codeState(this).train(mode);
  }

  to(device: string): void {
    codeState(this).to(device as never);
  }

  dispose(): void {
    codeState(this).dispose();
  }

  /** The worker computation H, as worker 'H'[0] (every worker runs the same H). */
  workerModules(): Map<string, Module[]> {
    return new Map([['H', [this.worker as Module]]]);
  }

  /** The worker set evaluation and serving need: H as worker 'H'[0], plus the given base model. */
  workerSet(base: Module): WorkerSet {
    return { base, workers: this.workerModules() };
  }

  config(): CodeConfig {
    const o = this.options;
    return {
      family: this.family,
      k: this.k,
      r: this.r,
      degree: this.degree,
      power: this.power,
      worker: o.worker,
      encoder: o.encoder,
      computation: o.computation,
      input: [...o.input],
      classes: o.classes,
      hidden: [...(o.hidden ?? [200, 100])],
    };
  }
}

registerCodeFamily(
  'lagrange',
  (c) =>
    new LagrangeCode({
      k: c.k,
      n: c.k + c.r,
      degree: Number(c.degree),
      power: c.power === undefined ? undefined : Number(c.power),
      worker: c.worker as PolyWorkerDesign,
      encoder: c.encoder as PolyArch,
      computation: c.computation as PolyArch,
      input: (c.input as number[]) ?? [],
      classes: Number(c.classes),
      hidden: c.hidden as number[] | undefined,
    }),
);

/** The centralized CNN baseline: the dilated convolution stack (1 image, with ReLU) then Base-MLP with ReLU. */
export class CnnBaseline extends Module {
  readonly conv: ConvEncoder;
  readonly mlp: PlainMLP;
  constructor(input: readonly number[], classes: number, hidden: readonly number[] = [200, 100], convHidden = 40) {
    super();
    const [c, h, w] = input;
    this.conv = this.registerModule('conv', new ConvEncoder({ k: c, hidden: convHidden, outChannels: c, dilations: DILATIONS }));
    this.mlp = this.registerModule('mlp', new PlainMLP([c * h * w, ...hidden, classes], true));
    // Every conv here feeds a ReLU (the last one the ReLU before the MLP), so He init with zero
    // biases. The default (Kaiming-uniform a = sqrt(5)) shrinks the signal ~0.6x per layer: after
    // the 7 layers the C-channel output was its last bias (std ~1e-3 around it), so for a negative
    // bias the ReLU was closed on every pixel, no gradient reached the convs or the first Linear,
    // and training stayed at chance.
    for (const [, m] of this.conv.namedModules()) {
      if (!(m instanceof Conv2d)) continue;
      kaimingNormal_(m.weight, { nonlinearity: 'relu' });
      if (m.bias !== null) zeros_(m.bias);
    }
  }
  forward(x: Tensor): Tensor {
    return tidy(() => this.mlp.forward(this.conv.forward(x).relu()));
  }
}
