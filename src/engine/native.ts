// Loads the libtorch N-API addon and types its exports. The addon (native/*.cc) exports every
// op by name and only marshals; names, defaults and validation live in TypeScript.
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

  /** element-wise and reduction ops, one named function each (native/ops.cc's op tables) */
  unary: UnaryOps;
  binary: BinaryOps;
  scalar: ScalarOps;
  inplace: InplaceOps;
  reduce: ReduceOps;
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
  pad(t: H, pads: number[], mode: PadMode, value: number): H;
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
  interpolate(x: H, size: number[], mode: InterpolateMode, alignCorners: boolean): H;
  dropout(x: H, p: number, train: boolean): H;
  softmax(x: H, dim: number): H;
  logSoftmax(x: H, dim: number): H;
  mseLoss(a: H, b: H, reduction: Reduction): H;
  klDiv(input: H, target: H, reduction: Reduction, logTarget: boolean): H;
  crossEntropy(x: H, target: H, weight: N, reduction: Reduction, ignoreIndex: number, labelSmoothing: number): H;
  nllLoss(x: H, target: H, weight: N, reduction: Reduction, ignoreIndex: number): H;
  bceWithLogits(x: H, target: H, reduction: Reduction): H;
  l1Loss(x: H, target: H, reduction: Reduction): H;

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
  /** forward with one input: the output handle, or (a result that is not one tensor) jitForward's flattened list */
  jitForward1(m: JitHandle, input: H): H | H[];
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

// The names of the addon's op tables (native/ops.cc: CODED_UNARY_OPS, ...). Ops are called by
// name (native.unary.neg(h)); test/engine/native-ops.test.ts checks that these lists and the
// addon's exports agree both ways.
export const UNARY_OPS = [
  'neg',
  'exp',
  'log',
  'sqrt',
  'rsqrt',
  'abs',
  'relu',
  'sigmoid',
  'tanh',
  'square',
  'sign',
  'floor',
  'ceil',
  'round',
  'reciprocal',
  'detach',
  'contiguous',
  'clone',
  'isnan',
  'logicalNot',
  'zerosLike',
  'onesLike',
  'sin',
  'cos',
  'log1p',
  'expm1',
  'isfinite',
  'gelu',
  'share',
] as const;
export const BINARY_OPS = [
  'add',
  'sub',
  'mul',
  'div',
  'pow',
  'maximum',
  'minimum',
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
  'matmul',
  'remainder',
  'logicalAnd',
  'logicalOr',
] as const;
export const SCALAR_OPS = [
  'add',
  'sub',
  'mul',
  'div',
  'pow',
  'eq',
  'ne',
  'lt',
  'le',
  'gt',
  'ge',
  'rsub',
  'rdiv',
  'remainder',
  'clampMin',
  'clampMax',
  'leakyRelu',
] as const;
export const INPLACE_OPS = [
  'zero',
  'fill',
  'copy',
  'add',
  'addScalar',
  'mulScalar',
  'mul',
  'div',
  'sqrt',
  'clampMin',
  'normal',
  'uniform',
  'sub',
  'divScalar',
  'lerp',
  'relu',
  'clamp',
  'bernoulli',
  'addcmul',
  'addcdiv',
] as const;
export const REDUCE_OPS = ['sum', 'mean', 'amax', 'amin', 'logsumexp', 'var', 'std', 'prod', 'any', 'all'] as const;

export type UnaryOp = (typeof UNARY_OPS)[number];
export type BinaryOp = (typeof BINARY_OPS)[number];
export type ScalarOp = (typeof SCALAR_OPS)[number];
export type ReduceOp = (typeof REDUCE_OPS)[number];

/** unary.NAME(t) -> a new tensor */
export type UnaryOps = Readonly<Record<UnaryOp, (t: H) => H>>;
/** binary.NAME(a, b, alpha?) -> a new tensor (alpha: add and sub only, a ± alpha * b) */
export type BinaryOps = Readonly<Record<BinaryOp, (a: H, b: H, alpha?: number | null) => H>>;
/** scalar.NAME(a, s) -> a new tensor (rsub: s - a, rdiv: s / a) */
export type ScalarOps = Readonly<Record<ScalarOp, (a: H, s: number) => H>>;
/** inplace.NAME(t, ...) mutates t */
export interface InplaceOps {
  zero(t: H): void;
  fill(t: H, v: number): void;
  copy(t: H, src: H): void;
  /** t += alpha * other */
  add(t: H, other: H, alpha: number): void;
  addScalar(t: H, s: number): void;
  mulScalar(t: H, s: number): void;
  mul(t: H, other: H): void;
  div(t: H, other: H): void;
  sqrt(t: H): void;
  clampMin(t: H, min: number): void;
  normal(t: H, mean: number, std: number): void;
  uniform(t: H, low: number, high: number): void;
  /** t -= alpha * other */
  sub(t: H, other: H, alpha: number): void;
  divScalar(t: H, s: number): void;
  lerp(t: H, end: H, weight: number): void;
  relu(t: H): void;
  clamp(t: H, min: number, max: number): void;
  bernoulli(t: H, p: number): void;
  /** t += value * a * b */
  addcmul(t: H, a: H, b: H, value: number): void;
  /** t += value * a / b */
  addcdiv(t: H, a: H, b: H, value: number): void;
}
/** reduce.NAME(t, dims (null: every element), keepdim, unbiased (var and std)) -> a new tensor */
export type ReduceOps = Readonly<Record<ReduceOp, (t: H, dims: number[] | null, keepdim: boolean, unbiased: boolean) => H>>;
// a compile-time check that InplaceOps names exactly INPLACE_OPS
type SameKeys<A, B> = [Exclude<keyof A, B>, Exclude<B, keyof A>] extends [never, never] ? true : never;
const inplaceNamesAgree: SameKeys<InplaceOps, (typeof INPLACE_OPS)[number]> = true;
void inplaceNamesAgree;

/** A loss's reduction, by name (native/nn.cc maps it to at::Reduction). */
export type Reduction = 'mean' | 'sum' | 'none';
export const REDUCTIONS: readonly Reduction[] = ['mean', 'sum', 'none'];
export type InterpolateMode = 'nearest' | 'bilinear' | 'area' | 'bicubic';
export const INTERPOLATE_MODES: readonly InterpolateMode[] = ['nearest', 'bilinear', 'area', 'bicubic'];
export type PadMode = 'constant' | 'reflect' | 'replicate';

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
