// Functional operators: layers' maths, losses and multi-tensor ops.
import { INTERPOLATE_MODES, REDUCTIONS, native, type InterpolateMode, type PadMode, type Reduction } from './native.js';
import { Tensor, type Scalar } from './tensor.js';

export type Pair = number | readonly [number, number];
const pair = (v: Pair): number[] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

export type { InterpolateMode, PadMode, Reduction };
function reduction(r: Reduction): Reduction {
  if (!REDUCTIONS.includes(r)) throw new TypeError(`unknown reduction '${String(r)}': use 'mean', 'sum' or 'none'`);
  return r;
}

// element-wise conveniences in functional form
export const add = (a: Tensor, b: Tensor | Scalar): Tensor => a.add(b);
export const sub = (a: Tensor, b: Tensor | Scalar): Tensor => a.sub(b);
export const mul = (a: Tensor, b: Tensor | Scalar): Tensor => a.mul(b);
export const div = (a: Tensor, b: Tensor | Scalar): Tensor => a.div(b);
export const matmul = (a: Tensor, b: Tensor): Tensor => a.matmul(b);
export const relu = (x: Tensor): Tensor => x.relu();
export const softmax = (x: Tensor, dim = -1): Tensor => x.softmax(dim);
export const logSoftmax = (x: Tensor, dim = -1): Tensor => x.logSoftmax(dim);

/** y = x W^T + b */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  return new Tensor(native.linear(x.handle, weight.handle, bias ? bias.handle : null));
}

export interface Conv2dOptions {
  stride?: Pair;
  /** a number, a pair, or 'same' (stride 1 only: output keeps the input's size) */
  padding?: Pair | 'same';
  dilation?: Pair;
  groups?: number;
}

/** Padding that keeps the spatial size for a stride-1 convolution. */
export function samePadding(kernel: readonly [number, number], dilation: readonly [number, number]): [number, number] {
  const p = (k: number, d: number): number => {
    const total = d * (k - 1);
    if (total % 2 !== 0) throw new RangeError(`'same' padding needs an odd effective kernel size (kernel ${k}, dilation ${d})`);
    return total / 2;
  };
  return [p(kernel[0], dilation[0]), p(kernel[1], dilation[1])];
}

/** 2-D convolution, input [N, C, H, W], weight [out, C / groups, kh, kw]. */
export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: Conv2dOptions = {}): Tensor {
  const stride = pair(o.stride ?? 1);
  const dilation = pair(o.dilation ?? 1);
  let padding: number[];
  if (o.padding === 'same') {
    if (stride[0] !== 1 || stride[1] !== 1) throw new RangeError("conv2d: padding 'same' needs stride 1");
    const ws = weight.shape;
    padding = samePadding([ws[2], ws[3]], [dilation[0], dilation[1]]);
  } else {
    padding = pair(o.padding ?? 0);
  }
  return new Tensor(native.conv2d(x.handle, weight.handle, bias ? bias.handle : null, stride, padding, dilation, o.groups ?? 1));
}

export interface ConvTranspose2dOptions {
  stride?: Pair;
  padding?: Pair;
  outputPadding?: Pair;
  dilation?: Pair;
  groups?: number;
}
export function convTranspose2d(x: Tensor, weight: Tensor, bias?: Tensor | null, o: ConvTranspose2dOptions = {}): Tensor {
  return new Tensor(
    native.convTranspose2d(
      x.handle,
      weight.handle,
      bias ? bias.handle : null,
      pair(o.stride ?? 1),
      pair(o.padding ?? 0),
      pair(o.outputPadding ?? 0),
      o.groups ?? 1,
      pair(o.dilation ?? 1),
    ),
  );
}

export interface BatchNormOptions {
  weight?: Tensor | null;
  bias?: Tensor | null;
  runningMean?: Tensor | null;
  runningVar?: Tensor | null;
  /** train mode normalizes with batch statistics and updates the running ones */
  training: boolean;
  momentum?: number;
  eps?: number;
}
export function batchNorm(x: Tensor, o: BatchNormOptions): Tensor {
  if (!o.training && (!o.runningMean || !o.runningVar)) {
    throw new Error('batchNorm: evaluation mode needs runningMean and runningVar');
  }
  const h = (t?: Tensor | null) => (t ? t.handle : null);
  return new Tensor(
    native.batchNorm(x.handle, h(o.weight), h(o.bias), h(o.runningMean), h(o.runningVar), o.training, o.momentum ?? 0.1, o.eps ?? 1e-5),
  );
}

export function layerNorm(
  x: Tensor,
  normalizedShape: number[],
  o: { weight?: Tensor | null; bias?: Tensor | null; eps?: number } = {},
): Tensor {
  return new Tensor(
    native.layerNorm(x.handle, normalizedShape, o.weight ? o.weight.handle : null, o.bias ? o.bias.handle : null, o.eps ?? 1e-5),
  );
}

export interface PoolOptions {
  stride?: Pair;
  padding?: Pair;
  dilation?: Pair;
  ceilMode?: boolean;
}
export function maxPool2d(x: Tensor, kernelSize: Pair, o: PoolOptions = {}): Tensor {
  const k = pair(kernelSize);
  return new Tensor(
    native.maxPool2d(
      x.handle,
      k,
      o.stride === undefined ? k : pair(o.stride),
      pair(o.padding ?? 0),
      pair(o.dilation ?? 1),
      o.ceilMode ?? false,
    ),
  );
}
export function avgPool2d(x: Tensor, kernelSize: Pair, o: PoolOptions & { countIncludePad?: boolean } = {}): Tensor {
  const k = pair(kernelSize);
  return new Tensor(
    native.avgPool2d(
      x.handle,
      k,
      o.stride === undefined ? k : pair(o.stride),
      pair(o.padding ?? 0),
      o.ceilMode ?? false,
      o.countIncludePad ?? true,
    ),
  );
}
export function adaptiveAvgPool2d(x: Tensor, outputSize: Pair): Tensor {
  return new Tensor(native.adaptiveAvgPool2d(x.handle, pair(outputSize)));
}

/** Resize [N, C, H, W] to `size`: 'bilinear', 'area' (adaptive average), 'nearest' or 'bicubic'. */
export function interpolate(
  x: Tensor,
  size: Pair,
  { mode = 'bilinear', alignCorners = false }: { mode?: InterpolateMode; alignCorners?: boolean } = {},
): Tensor {
  if (!INTERPOLATE_MODES.includes(mode)) throw new TypeError(`interpolate: unknown mode '${String(mode)}'`);
  return new Tensor(native.interpolate(x.handle, pair(size), mode, alignCorners));
}

export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  return new Tensor(native.dropout(x.handle, p, training));
}

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(
    native.cat(
      tensors.map((t) => t.handle),
      dim,
    ),
  );
}
export function stack(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(
    native.stack(
      tensors.map((t) => t.handle),
      dim,
    ),
  );
}
export function where(condition: Tensor, a: Tensor, b: Tensor): Tensor {
  return new Tensor(native.where(condition.handle, a.handle, b.handle));
}
export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  return new Tensor(native.maskedFill(x.handle, mask.handle, value));
}
export function oneHot(labels: Tensor, numClasses: number): Tensor {
  return new Tensor(native.oneHot(labels.handle, numClasses));
}
export function scatter(x: Tensor, dim: number, index: Tensor, src: Tensor, { add = false } = {}): Tensor {
  return new Tensor(native.scatter(x.handle, dim, index.handle, src.handle, add));
}
/** Pad the last dims: pads = [left, right, top, bottom, ...] as in torch.nn.functional.pad. */
export function pad(x: Tensor, pads: number[], { mode = 'constant', value = 0 }: { mode?: PadMode; value?: number } = {}): Tensor {
  return new Tensor(native.pad(x.handle, pads, mode, value));
}

// ---- losses ----
export function mseLoss(input: Tensor, target: Tensor, { reduction: r = 'mean' }: { reduction?: Reduction } = {}): Tensor {
  return new Tensor(native.mseLoss(input.handle, target.handle, reduction(r)));
}
export function l1Loss(input: Tensor, target: Tensor, { reduction: r = 'mean' }: { reduction?: Reduction } = {}): Tensor {
  return new Tensor(native.l1Loss(input.handle, target.handle, reduction(r)));
}

/**
 * KL divergence, `input` holding log-probabilities (as torch.nn.functional.kl_div).
 * 'batchmean' divides the sum by the batch size (the mathematically correct KL).
 */
export function klDiv(
  input: Tensor,
  target: Tensor,
  { reduction: r = 'batchmean', logTarget = false }: { reduction?: Reduction | 'batchmean'; logTarget?: boolean } = {},
): Tensor {
  if (r === 'batchmean') {
    const s = new Tensor(native.klDiv(input.handle, target.handle, 'sum', logTarget));
    const out = s.div(input.rank > 0 ? input.shape[0] : 1);
    s.dispose();
    return out;
  }
  return new Tensor(native.klDiv(input.handle, target.handle, reduction(r), logTarget));
}

/** Cross-entropy of raw logits [N, C] against class indices [N] (int64) or class probabilities [N, C]. */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  {
    reduction: r = 'mean',
    weight = null,
    ignoreIndex = -100,
    labelSmoothing = 0,
  }: { reduction?: Reduction; weight?: Tensor | null; ignoreIndex?: number; labelSmoothing?: number } = {},
): Tensor {
  return new Tensor(
    native.crossEntropy(logits.handle, target.handle, weight ? weight.handle : null, reduction(r), ignoreIndex, labelSmoothing),
  );
}
export function nllLoss(
  logProbs: Tensor,
  target: Tensor,
  {
    reduction: r = 'mean',
    weight = null,
    ignoreIndex = -100,
  }: { reduction?: Reduction; weight?: Tensor | null; ignoreIndex?: number } = {},
): Tensor {
  return new Tensor(native.nllLoss(logProbs.handle, target.handle, weight ? weight.handle : null, reduction(r), ignoreIndex));
}
export function bceWithLogits(logits: Tensor, target: Tensor, { reduction: r = 'mean' }: { reduction?: Reduction } = {}): Tensor {
  return new Tensor(native.bceWithLogits(logits.handle, target.handle, reduction(r)));
}
