// Tensor: a JS object around a libtorch tensor handle. Methods cover the common
// element-wise, reduction and shape ops; layer-level ops live in ops.ts.
import { native, type BinaryOp, type Handle, type ReduceOp, type ScalarOp, type UnaryOp } from './native.js';
import { checkDevice, dtypeCode, dtypeName, dtypeOfArray, type Device, type DType, type TensorData } from './dtype.js';
import { track, type Disposable } from './scope.js';

export type Shape = readonly number[];
export type Scalar = number;

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  requiresGrad?: boolean;
}

export class Tensor implements Disposable {
  private handleOrNull: Handle | null;
  private cachedShape: number[] | null = null;
  kept = false;

  /** Wrap a native handle (internal: use the factories). */
  constructor(handle: Handle) {
    this.handleOrNull = handle;
    track(this);
  }

  /** The native handle; throws once the tensor was disposed. */
  get handle(): Handle {
    const h = this.handleOrNull;
    if (h === null) throw new Error('Tensor used after dispose()');
    return h;
  }

  get isDisposed(): boolean {
    return this.handleOrNull === null;
  }

  /** Release this tensor's native memory now (idempotent). */
  dispose(): void {
    if (this.handleOrNull !== null) {
      native.dispose(this.handleOrNull);
      this.handleOrNull = null;
      this.cachedShape = null; // metadata must not outlive the tensor
    }
  }

  /** Keep this tensor alive past the enclosing tidy() scope. */
  keep(): this {
    this.kept = true;
    return this;
  }

  /** Point this object at another tensor's storage (used by Module.to()); takes ownership of `other`. */
  replaceWith(other: Tensor): void {
    const h = other.handle;
    other.handleOrNull = null;
    other.cachedShape = null;
    if (this.handleOrNull !== null) native.dispose(this.handleOrNull);
    this.handleOrNull = h;
    this.cachedShape = null;
  }

  get shape(): number[] {
    if (this.cachedShape === null) this.cachedShape = native.shape(this.handle);
    return this.cachedShape.slice();
  }
  get rank(): number {
    return this.shape.length;
  }
  get size(): number {
    return native.numel(this.handle);
  }
  get dtype(): DType {
    return dtypeName(native.dtype(this.handle));
  }
  get device(): Device {
    return native.device(this.handle);
  }

  /** A copy of the data, row-major, as a typed array (float16/bfloat16 come back as Float32Array, bool as Uint8Array). */
  data(): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array {
    return native.toArray(this.handle);
  }
  /** Data as a Float32Array (converts). */
  dataFloat32(): Float32Array {
    const d = this.data();
    if (d instanceof Float32Array) return d;
    if (d instanceof BigInt64Array) return Float32Array.from(d, (v) => Number(v));
    return Float32Array.from(d as ArrayLike<number>);
  }
  /** Data as plain numbers (int64 converted with Number()). */
  toList(): number[] {
    const d = this.data();
    return d instanceof BigInt64Array ? Array.from(d, (v) => Number(v)) : Array.from(d as ArrayLike<number>);
  }
  /** The single value of a one-element tensor. */
  item(): number {
    return native.item(this.handle);
  }

  toString(): string {
    if (this.isDisposed) return 'Tensor(disposed)';
    const n = this.size;
    const values =
      n <= 8
        ? this.toList()
            .map((v) => +v.toPrecision(5))
            .join(', ')
        : `${n} values`;
    return `Tensor(shape=[${this.shape.join(', ')}], dtype=${this.dtype}, device=${this.device}, [${values}])`;
  }

  // ---- conversion ----
  to(target: DType | Device | { dtype?: DType; device?: Device }, copy = false): Tensor {
    let dtype: DType | undefined;
    let device: Device | undefined;
    if (typeof target === 'string') {
      if (/^(cpu|cuda)/.test(target)) device = checkDevice(target);
      else dtype = target as DType;
    } else {
      dtype = target.dtype;
      device = target.device === undefined ? undefined : checkDevice(target.device);
    }
    return new Tensor(native.to(this.handle, dtype === undefined ? null : dtypeCode(dtype), device ?? null, copy));
  }
  float(): Tensor {
    return this.to('float32');
  }
  double(): Tensor {
    return this.to('float64');
  }
  long(): Tensor {
    return this.to('int64');
  }
  cpu(): Tensor {
    return this.to('cpu');
  }

  // ---- element-wise ----
  private bin(op: BinaryOp & ScalarOp, other: Tensor | Scalar): Tensor {
    if (typeof other === 'number') return new Tensor(native.scalar[op](this.handle, other));
    return new Tensor(native.binary[op](this.handle, other.handle));
  }
  /** this + alpha * other */
  add(other: Tensor | Scalar, alpha?: number): Tensor {
    if (alpha !== undefined && typeof other !== 'number') return new Tensor(native.binary.add(this.handle, other.handle, alpha));
    return this.bin('add', typeof other === 'number' && alpha !== undefined ? other * alpha : other);
  }
  /** this - alpha * other */
  sub(other: Tensor | Scalar, alpha?: number): Tensor {
    if (alpha !== undefined && typeof other !== 'number') return new Tensor(native.binary.sub(this.handle, other.handle, alpha));
    return this.bin('sub', typeof other === 'number' && alpha !== undefined ? other * alpha : other);
  }
  mul(other: Tensor | Scalar): Tensor {
    return this.bin('mul', other);
  }
  div(other: Tensor | Scalar): Tensor {
    return this.bin('div', other);
  }
  pow(other: Tensor | Scalar): Tensor {
    return this.bin('pow', other);
  }
  /** scalar - this */
  rsub(s: Scalar): Tensor {
    return new Tensor(native.scalar.rsub(this.handle, s));
  }
  /** scalar / this */
  rdiv(s: Scalar): Tensor {
    return new Tensor(native.scalar.rdiv(this.handle, s));
  }
  remainder(other: Tensor | Scalar): Tensor {
    return this.bin('remainder', other);
  }
  maximum(other: Tensor): Tensor {
    return new Tensor(native.binary.maximum(this.handle, other.handle));
  }
  minimum(other: Tensor): Tensor {
    return new Tensor(native.binary.minimum(this.handle, other.handle));
  }
  clamp(min?: number, max?: number): Tensor {
    if (min !== undefined && max !== undefined) {
      const lo = new Tensor(native.scalar.clampMin(this.handle, min));
      const out = new Tensor(native.scalar.clampMax(lo.handle, max));
      lo.dispose();
      return out;
    }
    if (min !== undefined) return new Tensor(native.scalar.clampMin(this.handle, min));
    if (max !== undefined) return new Tensor(native.scalar.clampMax(this.handle, max));
    return this.clone();
  }
  eq(other: Tensor | Scalar): Tensor {
    return this.bin('eq', other);
  }
  ne(other: Tensor | Scalar): Tensor {
    return this.bin('ne', other);
  }
  lt(other: Tensor | Scalar): Tensor {
    return this.bin('lt', other);
  }
  le(other: Tensor | Scalar): Tensor {
    return this.bin('le', other);
  }
  gt(other: Tensor | Scalar): Tensor {
    return this.bin('gt', other);
  }
  ge(other: Tensor | Scalar): Tensor {
    return this.bin('ge', other);
  }
  logicalAnd(other: Tensor): Tensor {
    return new Tensor(native.binary.logicalAnd(this.handle, other.handle));
  }
  logicalOr(other: Tensor): Tensor {
    return new Tensor(native.binary.logicalOr(this.handle, other.handle));
  }
  matmul(other: Tensor): Tensor {
    return new Tensor(native.binary.matmul(this.handle, other.handle));
  }

  private un(op: UnaryOp): Tensor {
    return new Tensor(native.unary[op](this.handle));
  }
  neg(): Tensor {
    return this.un('neg');
  }
  exp(): Tensor {
    return this.un('exp');
  }
  log(): Tensor {
    return this.un('log');
  }
  log1p(): Tensor {
    return this.un('log1p');
  }
  expm1(): Tensor {
    return this.un('expm1');
  }
  sqrt(): Tensor {
    return this.un('sqrt');
  }
  rsqrt(): Tensor {
    return this.un('rsqrt');
  }
  abs(): Tensor {
    return this.un('abs');
  }
  relu(): Tensor {
    return this.un('relu');
  }
  gelu(): Tensor {
    return this.un('gelu');
  }
  leakyRelu(slope = 0.01): Tensor {
    return new Tensor(native.scalar.leakyRelu(this.handle, slope));
  }
  sigmoid(): Tensor {
    return this.un('sigmoid');
  }
  tanh(): Tensor {
    return this.un('tanh');
  }
  sin(): Tensor {
    return this.un('sin');
  }
  cos(): Tensor {
    return this.un('cos');
  }
  square(): Tensor {
    return this.un('square');
  }
  sign(): Tensor {
    return this.un('sign');
  }
  floor(): Tensor {
    return this.un('floor');
  }
  ceil(): Tensor {
    return this.un('ceil');
  }
  round(): Tensor {
    return this.un('round');
  }
  reciprocal(): Tensor {
    return this.un('reciprocal');
  }
  isnan(): Tensor {
    return this.un('isnan');
  }
  isfinite(): Tensor {
    return this.un('isfinite');
  }
  logicalNot(): Tensor {
    return this.un('logicalNot');
  }
  /** A tensor sharing storage, cut from the autograd graph. */
  detach(): Tensor {
    return this.un('detach');
  }
  contiguous(): Tensor {
    return this.un('contiguous');
  }
  clone(): Tensor {
    return this.un('clone');
  }
  zerosLike(): Tensor {
    return this.un('zerosLike');
  }
  onesLike(): Tensor {
    return this.un('onesLike');
  }
  /** A second handle to the same tensor (same storage and autograd identity). */
  share(): Tensor {
    return this.un('share');
  }

  // ---- reductions ----
  private red(op: ReduceOp, dims: number | number[] | undefined, keepdim: boolean, unbiased = false): Tensor {
    const d = dims === undefined ? null : typeof dims === 'number' ? [dims] : dims;
    return new Tensor(native.reduce[op](this.handle, d, keepdim, unbiased));
  }
  sum(dims?: number | number[], keepdim = false): Tensor {
    return this.red('sum', dims, keepdim);
  }
  mean(dims?: number | number[], keepdim = false): Tensor {
    return this.red('mean', dims, keepdim);
  }
  /** Maximum over dims (values only; see maxWithIndices). */
  max(dims?: number | number[], keepdim = false): Tensor {
    return this.red('amax', dims, keepdim);
  }
  min(dims?: number | number[], keepdim = false): Tensor {
    return this.red('amin', dims, keepdim);
  }
  logsumexp(dims?: number | number[], keepdim = false): Tensor {
    return this.red('logsumexp', dims, keepdim);
  }
  variance(dims?: number | number[], { unbiased = true, keepdim = false } = {}): Tensor {
    return this.red('var', dims, keepdim, unbiased);
  }
  std(dims?: number | number[], { unbiased = true, keepdim = false } = {}): Tensor {
    return this.red('std', dims, keepdim, unbiased);
  }
  prod(dim?: number, keepdim = false): Tensor {
    return this.red('prod', dim, keepdim);
  }
  any(dim?: number, keepdim = false): Tensor {
    return this.red('any', dim, keepdim);
  }
  all(dim?: number, keepdim = false): Tensor {
    return this.red('all', dim, keepdim);
  }
  maxWithIndices(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [v, i] = native.maxDim(this.handle, dim, keepdim, false);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  minWithIndices(dim: number, keepdim = false): { values: Tensor; indices: Tensor } {
    const [v, i] = native.maxDim(this.handle, dim, keepdim, true);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  argmax(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmax(this.handle, dim ?? null, keepdim, false));
  }
  argmin(dim?: number, keepdim = false): Tensor {
    return new Tensor(native.argmax(this.handle, dim ?? null, keepdim, true));
  }
  topk(k: number, { dim = -1, largest = true, sorted = true } = {}): { values: Tensor; indices: Tensor } {
    const [v, i] = native.topk(this.handle, k, dim, largest, sorted);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  sort(dim = -1, descending = false): { values: Tensor; indices: Tensor } {
    const [v, i] = native.sort(this.handle, dim, descending);
    return { values: new Tensor(v), indices: new Tensor(i) };
  }
  cumsum(dim: number): Tensor {
    return new Tensor(native.cumsum(this.handle, dim));
  }
  softmax(dim = -1): Tensor {
    return new Tensor(native.softmax(this.handle, dim));
  }
  logSoftmax(dim = -1): Tensor {
    return new Tensor(native.logSoftmax(this.handle, dim));
  }

  // ---- shape ----
  reshape(...shape: number[] | [number[]]): Tensor {
    const s = Array.isArray(shape[0]) ? (shape[0] as number[]) : (shape as number[]);
    return new Tensor(native.reshape(this.handle, s));
  }
  /** Alias of reshape. */
  view(...shape: number[] | [number[]]): Tensor {
    return this.reshape(...shape);
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(native.flatten(this.handle, startDim, endDim));
  }
  permute(...dims: number[] | [number[]]): Tensor {
    const d = Array.isArray(dims[0]) ? (dims[0] as number[]) : (dims as number[]);
    return new Tensor(native.permute(this.handle, d));
  }
  transpose(dim0 = 0, dim1 = 1): Tensor {
    return new Tensor(native.transpose(this.handle, dim0, dim1));
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(native.squeeze(this.handle, dim ?? null));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.unsqueeze(this.handle, dim));
  }
  expand(...shape: number[] | [number[]]): Tensor {
    const s = Array.isArray(shape[0]) ? (shape[0] as number[]) : (shape as number[]);
    return new Tensor(native.expand(this.handle, s));
  }
  repeat(...reps: number[] | [number[]]): Tensor {
    const r = Array.isArray(reps[0]) ? (reps[0] as number[]) : (reps as number[]);
    return new Tensor(native.repeat(this.handle, r));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(native.narrow(this.handle, dim, start, length));
  }
  slice(dim: number, start: number, end: number, step = 1): Tensor {
    return new Tensor(native.slice(this.handle, dim, start, end, step));
  }
  select(dim: number, index: number): Tensor {
    return new Tensor(native.select(this.handle, dim, index));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.indexSelect(this.handle, dim, index.handle));
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(native.gather(this.handle, dim, index.handle));
  }
  split(sizes: number[], dim = 0): Tensor[] {
    return native.split(this.handle, sizes, dim).map((h) => new Tensor(h!));
  }
  flip(...dims: number[]): Tensor {
    return new Tensor(native.flip(this.handle, dims));
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return native.requiresGrad(this.handle);
  }
  set requiresGrad(v: boolean) {
    native.setRequiresGrad(this.handle, v);
  }
  requiresGrad_(v = true): this {
    native.setRequiresGrad(this.handle, v);
    return this;
  }
  get isLeaf(): boolean {
    return native.isLeaf(this.handle);
  }
  /** The accumulated gradient (a new handle sharing it), or null. */
  get grad(): Tensor | null {
    const g = native.grad(this.handle);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) {
    native.setGrad(this.handle, g === null ? null : g.handle);
  }
  /** Back-propagate from this tensor (a scalar unless `gradient` is given). */
  backward(gradient?: Tensor, { retainGraph = false, createGraph = false } = {}): void {
    native.backward(this.handle, gradient === undefined ? null : gradient.handle, retainGraph, createGraph);
  }

  // ---- in-place (mutate this tensor; return this) ----
  zero_(): this {
    native.inplace.zero(this.handle);
    return this;
  }
  fill_(v: number): this {
    native.inplace.fill(this.handle, v);
    return this;
  }
  copy_(src: Tensor): this {
    native.inplace.copy(this.handle, src.handle);
    return this;
  }
  /** this += alpha * other (other may be a scalar). */
  add_(other: Tensor | Scalar, alpha = 1): this {
    if (typeof other === 'number') native.inplace.addScalar(this.handle, other * alpha);
    else native.inplace.add(this.handle, other.handle, alpha);
    return this;
  }
  sub_(other: Tensor, alpha = 1): this {
    native.inplace.sub(this.handle, other.handle, alpha);
    return this;
  }
  mul_(other: Tensor | Scalar): this {
    if (typeof other === 'number') native.inplace.mulScalar(this.handle, other);
    else native.inplace.mul(this.handle, other.handle);
    return this;
  }
  div_(other: Tensor | Scalar): this {
    if (typeof other === 'number') native.inplace.divScalar(this.handle, other);
    else native.inplace.div(this.handle, other.handle);
    return this;
  }
  sqrt_(): this {
    native.inplace.sqrt(this.handle);
    return this;
  }
  relu_(): this {
    native.inplace.relu(this.handle);
    return this;
  }
  clamp_(min: number, max: number): this {
    native.inplace.clamp(this.handle, min, max);
    return this;
  }
  clampMin_(min: number): this {
    native.inplace.clampMin(this.handle, min);
    return this;
  }
  lerp_(end: Tensor, weight: number): this {
    native.inplace.lerp(this.handle, end.handle, weight);
    return this;
  }
  /** this += value * a * b */
  addcmul_(a: Tensor, b: Tensor, value = 1): this {
    native.inplace.addcmul(this.handle, a.handle, b.handle, value);
    return this;
  }
  /** this += value * a / b */
  addcdiv_(a: Tensor, b: Tensor, value = 1): this {
    native.inplace.addcdiv(this.handle, a.handle, b.handle, value);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    native.inplace.normal(this.handle, mean, std);
    return this;
  }
  uniform_(low = 0, high = 1): this {
    native.inplace.uniform(this.handle, low, high);
    return this;
  }
  bernoulli_(p: number): this {
    native.inplace.bernoulli(this.handle, p);
    return this;
  }
}

// ---------------------------------------------------------------------------
// factories

function device(o: TensorOptions | undefined): string | null {
  return o?.device === undefined ? null : checkDevice(o.device);
}

function opts(o: TensorOptions | undefined, fallback: DType = 'float32'): [number, string | null] {
  return [dtypeCode(o?.dtype ?? fallback), device(o)];
}

function finish(t: Tensor, o: TensorOptions | undefined): Tensor {
  if (o?.requiresGrad) t.requiresGrad_(true);
  return t;
}

type Nested = number | boolean | Nested[];

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let cur: Nested = data;
  while (Array.isArray(cur)) {
    shape.push(cur.length);
    cur = cur[0] as Nested;
  }
  return shape;
}

/**
 * Create a tensor from a typed array (with a shape; default 1-D) or nested number arrays.
 * Data are copied. Default dtype: the typed array's, float32 for number arrays.
 */
export function tensor(data: TensorData | Nested, shape?: Shape, o?: TensorOptions): Tensor {
  if (ArrayBuffer.isView(data)) {
    const arr = data as TensorData;
    const s = shape ?? [arr.length];
    const dtype = o?.dtype ?? dtypeOfArray(arr);
    return finish(new Tensor(native.fromArray(arr, [...s], dtypeCode(dtype), device(o))), o);
  }
  const inferred = inferShape(data);
  const flat = (Array.isArray(data) ? (data as unknown[]).flat(Infinity) : [data]) as (number | boolean)[];
  for (const v of flat) {
    if (typeof v !== 'number' && typeof v !== 'boolean') throw new TypeError('tensor(): nested arrays must hold numbers');
  }
  const s = shape ?? inferred;
  const values = Float64Array.from(flat, (v) => Number(v));
  const dtype = o?.dtype ?? 'float32';
  return finish(new Tensor(native.fromArray(values, [...s], dtypeCode(dtype), device(o))), o);
}

/** A 0-d tensor. */
export function scalar(v: number, o?: TensorOptions): Tensor {
  return tensor(new Float64Array([v]), [], { dtype: 'float32', ...o });
}

export function zeros(shape: Shape, o?: TensorOptions): Tensor {
  return finish(new Tensor(native.zeros([...shape], ...opts(o))), o);
}
export function ones(shape: Shape, o?: TensorOptions): Tensor {
  return finish(new Tensor(native.ones([...shape], ...opts(o))), o);
}
export function empty(shape: Shape, o?: TensorOptions): Tensor {
  return finish(new Tensor(native.empty([...shape], ...opts(o))), o);
}
export function full(shape: Shape, value: number, o?: TensorOptions): Tensor {
  const [d, dev] = opts(o);
  return finish(new Tensor(native.full([...shape], value, d, dev)), o);
}
export function arange(start: number, end?: number, step = 1, o?: TensorOptions): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  const [d, dev] = opts(o, 'int64');
  return finish(new Tensor(native.arange(s, e, step, d, dev)), o);
}
export function linspace(start: number, end: number, steps: number, o?: TensorOptions): Tensor {
  const [d, dev] = opts(o);
  return finish(new Tensor(native.linspace(start, end, steps, d, dev)), o);
}
export function eye(n: number, o?: TensorOptions): Tensor {
  return finish(new Tensor(native.eye(n, ...opts(o))), o);
}
/** Standard normal samples (seeded by manualSeed). */
export function randn(shape: Shape, o?: TensorOptions): Tensor {
  return finish(new Tensor(native.randn([...shape], ...opts(o))), o);
}
/** Uniform samples in [0, 1). */
export function rand(shape: Shape, o?: TensorOptions): Tensor {
  return finish(new Tensor(native.rand([...shape], ...opts(o))), o);
}
/** Integers in [low, high). */
export function randint(low: number, high: number, shape: Shape, o?: TensorOptions): Tensor {
  const [d, dev] = opts(o, 'int64');
  return new Tensor(native.randint(low, high, [...shape], d, dev));
}
/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number, o?: { device?: Device }): Tensor {
  return new Tensor(native.randperm(n, o?.device === undefined ? null : checkDevice(o.device)));
}
