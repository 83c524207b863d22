// Loads the libtorch N-API addon and names its integer op codes. Everything above this
// file speaks in names; the addon (native/*.cc) only marshals.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { packageRoot } from '../util/package-root.js';

/** An opaque reference to a libtorch tensor owned by the addon. */
export type Handle = { readonly __brand: 'TensorHandle' };
/** An opaque reference to a TorchScript module (libtorch JIT) owned by the addon. */
export type JitHandle = { readonly __brand: 'JitHandle' };
type H = Handle;
type N = H | null;

export interface NativeAddon {
  fromArray(data: ArrayBufferView, shape: number[], dtype: number, device: string | null): H;
  toArray(t: H): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;
  shape(t: H): number[];
  dtype(t: H): number;
  device(t: H): string;
  numel(t: H): number;
  item(t: H): number;
  isDisposed(t: H): boolean;
  dispose(t: H): void;
  liveHandles(): number;
  zeros(shape: number[], dtype: number, device: string | null): H;
  ones(shape: number[], dtype: number, device: string | null): H;
  empty(shape: number[], dtype: number, device: string | null): H;
  full(shape: number[], value: number, dtype: number, device: string | null): H;
  arange(start: number, end: number, step: number, dtype: number, device: string | null): H;
  linspace(start: number, end: number, steps: number, dtype: number, device: string | null): H;
  eye(n: number, dtype: number, device: string | null): H;
  randn(shape: number[], dtype: number, device: string | null): H;
  rand(shape: number[], dtype: number, device: string | null): H;
  randint(low: number, high: number, shape: number[], dtype: number, device: string | null): H;
  randperm(n: number, device: string | null): H;
  to(t: H, dtype: number | null, device: string | null, copy: boolean): H;
  setNumThreads(n: number): void;
  getNumThreads(): number;
  manualSeed(seed: number): void;
  setDeterministic(on: boolean): void;
  getDeterministic(): boolean;
  cudaAvailable(): boolean;
  cudaDeviceCount(): number;
  cudaSynchronize(): void;
  version(): string;

  unary(op: number, t: H): H;
  binary(op: number, a: H, b: H, alpha?: number | null): H;
  scalar(op: number, a: H, s: number): H;
  inplace(op: number, t: H, other: N, s1: number, s2: number): void;
  addcmul_(t: H, a: H, b: H, value: number): void;
  addcdiv_(t: H, a: H, b: H, value: number): void;
  reduce(op: number, t: H, dims: number[] | null, keepdim: boolean, flag: boolean): H;
  maxDim(t: H, dim: number, keepdim: boolean, isMin: boolean): [H, H];
  argmax(t: H, dim: number | null, keepdim: boolean, isMin: boolean): H;
  topk(t: H, k: number, dim: number, largest: boolean, sorted: boolean): [H, H];
  sort(t: H, dim: number, descending: boolean): [H, H];
  cumsum(t: H, dim: number): H;
  reshape(t: H, shape: number[]): H;
  permute(t: H, dims: number[]): H;
  transpose(t: H, d0: number, d1: number): H;
  flatten(t: H, start: number, end: number): H;
  squeeze(t: H, dim: number | null): H;
  unsqueeze(t: H, dim: number): H;
  expand(t: H, shape: number[]): H;
  repeat(t: H, reps: number[]): H;
  cat(ts: H[], dim: number): H;
  stack(ts: H[], dim: number): H;
  narrow(t: H, dim: number, start: number, length: number): H;
  slice(t: H, dim: number, start: number, end: number, step: number): H;
  select(t: H, dim: number, index: number): H;
  indexSelect(t: H, dim: number, index: H): H;
  gather(t: H, dim: number, index: H): H;
  scatter(t: H, dim: number, index: H, src: H, add: boolean): H;
  split(t: H, sizes: number[], dim: number): H[];
  flip(t: H, dims: number[]): H;
  pad(t: H, pads: number[], mode: number, value: number): H;
  where(cond: H, a: H, b: H): H;
  maskedFill(t: H, mask: H, value: number): H;
  oneHot(t: H, numClasses: number): H;

  linear(x: H, w: H, b: N): H;
  conv2d(x: H, w: H, b: N, stride: number[], padding: number[], dilation: number[], groups: number): H;
  convTranspose2d(x: H, w: H, b: N, stride: number[], padding: number[], outputPadding: number[], groups: number, dilation: number[]): H;
  batchNorm(x: H, w: N, b: N, rm: N, rv: N, training: boolean, momentum: number, eps: number): H;
  layerNorm(x: H, normalizedShape: number[], w: N, b: N, eps: number): H;
  maxPool2d(x: H, kernel: number[], stride: number[], padding: number[], dilation: number[], ceilMode: boolean): H;
  avgPool2d(x: H, kernel: number[], stride: number[], padding: number[], ceilMode: boolean, countIncludePad: boolean): H;
  adaptiveAvgPool2d(x: H, size: number[]): H;
  interpolate(x: H, size: number[], mode: number, alignCorners: boolean): H;
  dropout(x: H, p: number, train: boolean): H;
  softmax(x: H, dim: number): H;
  logSoftmax(x: H, dim: number): H;
  mseLoss(a: H, b: H, reduction: number): H;
  klDiv(input: H, target: H, reduction: number, logTarget: boolean): H;
  crossEntropy(x: H, target: H, weight: N, reduction: number, ignoreIndex: number, labelSmoothing: number): H;
  nllLoss(x: H, target: H, weight: N, reduction: number, ignoreIndex: number): H;
  bceWithLogits(x: H, target: H, reduction: number): H;
  l1Loss(x: H, target: H, reduction: number): H;

  requiresGrad(t: H): boolean;
  setRequiresGrad(t: H, v: boolean): void;
  isLeaf(t: H): boolean;
  grad(t: H): N;
  setGrad(t: H, g: N): void;
  backward(t: H, grad: N, retainGraph: boolean, createGraph: boolean): void;
  gradOf(outputs: H[], inputs: H[], gradOutputs: H[] | null, retainGraph: boolean, createGraph: boolean, allowUnused: boolean): N[];
  isGradEnabled(): boolean;
  setGradEnabled(v: boolean): void;

  // TorchScript (native/jit.cc): named exports, not op-table entries
  jitLoad(path: string, device: string | null): JitHandle;
  jitDispose(m: JitHandle): void;
  /** the tensors of forward's result, flattened (a tensor, or a tuple/list of tensors) */
  jitForward(m: JitHandle, inputs: H[]): H[];
  /** [dotted names, handles sharing storage with the module's own tensors] */
  jitParameters(m: JitHandle): [string[], H[]];
  jitBuffers(m: JitHandle): [string[], H[]];
  jitTrain(m: JitHandle, on: boolean): void;
  jitIsTraining(m: JitHandle): boolean;
  /** move (device) and cast (floating-point tensors to dtype) parameters and buffers in place */
  jitTo(m: JitHandle, device: string | null, dtype: number | null): void;
  jitClone(m: JitHandle): JitHandle;
  jitSave(m: JitHandle, path: string): void;
}

export const UNARY = {
  neg: 0, exp: 1, log: 2, sqrt: 3, rsqrt: 4, abs: 5, relu: 6, sigmoid: 7, tanh: 8, square: 9, sign: 10,
  floor: 11, ceil: 12, round: 13, reciprocal: 14, detach: 15, contiguous: 16, clone: 17, isnan: 18,
  logicalNot: 19, zerosLike: 20, onesLike: 21, sin: 22, cos: 23, log1p: 24, expm1: 25, isfinite: 26,
  gelu: 27, share: 28,
} as const;

export const BINARY = {
  add: 0, sub: 1, mul: 2, div: 3, pow: 4, maximum: 5, minimum: 6, eq: 7, ne: 8, lt: 9, le: 10, gt: 11,
  ge: 12, matmul: 13, remainder: 14, logicalAnd: 15, logicalOr: 16,
} as const;

export const SCALAR = {
  add: 0, sub: 1, mul: 2, div: 3, pow: 4, eq: 5, ne: 6, lt: 7, le: 8, gt: 9, ge: 10, rsub: 11, rdiv: 12,
  remainder: 13, clampMin: 14, clampMax: 15, rpow: 16, leakyRelu: 17,
} as const;

export const INPLACE = {
  zero: 0, fill: 1, copy: 2, add: 3, addScalar: 4, mulScalar: 5, mul: 6, div: 7, sqrt: 8, clampMin: 9,
  normal: 10, uniform: 11, sub: 12, divScalar: 13, lerp: 14, relu: 15, clamp: 16, bernoulli: 17,
  detach: 18,
} as const;

export const REDUCE = { sum: 0, mean: 1, amax: 2, amin: 3, logsumexp: 4, var: 5, std: 6, prod: 7, any: 8, all: 9 } as const;

export const REDUCTION = { none: 0, mean: 1, sum: 2 } as const;
export const INTERPOLATE = { nearest: 0, bilinear: 1, area: 2, bicubic: 3 } as const;
export const PAD = { constant: 0, reflect: 1, replicate: 2 } as const;

function loadAddon(): NativeAddon {
  const require = createRequire(import.meta.url);
  const explicit = process.env.CODED_ADDON;
  const path = explicit ? resolve(explicit) : join(packageRoot(), 'build', 'Release', 'coded_torch.node');
  if (!existsSync(path)) {
    throw new Error(
      `coded-inference: the libtorch addon is not built (${path} is missing). ` +
        'Run `npm run build:native` (needs Debian libtorch-dev, or LIBTORCH=/path/to/libtorch), ' +
        'or set CODED_ADDON to a built coded_torch.node.',
    );
  }
  try {
    return require(path) as NativeAddon;
  } catch (e) {
    throw new Error(
      `coded-inference: failed to load the libtorch addon ${path}: ${(e as Error).message}. ` +
        'If libtorch moved or was upgraded, rebuild with `npm run build:native`.',
    );
  }
}

export const native: NativeAddon = loadAddon();

// libtorch starts with one intra-op thread here; use every core unless told otherwise.
{
  const fromEnv = Number(process.env.CODED_NUM_THREADS ?? '');
  native.setNumThreads(Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : availableParallelism());
}
