// A split (train / validation / test) as tensors, the raw-bytes form readers produce, and
// the operations on splits: normalisation into tensors, seeded validation hold-out, subsets
// and seeded shuffling.
import { tensor, type Tensor } from '../engine/tensor.js';
import { tidy } from '../engine/scope.js';
import type { Device } from '../engine/dtype.js';
import { seededPermutation } from './rng.js';

export interface Split {
  /** normalised images [N, C, H, W] float32 */
  images: Tensor;
  /** labels [N] int64 */
  labels: Tensor;
  size: number;
}

/** Images as stored on disk: uint8 pixels, [N, C, H, W] row-major, and uint8 labels. */
export interface RawImages {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
  channels: number;
  height: number;
  width: number;
}

/** Per-channel normalisation: x = (pixel / 255 - mean[c]) / std[c]. */
export interface Normalization {
  mean: readonly number[];
  std: readonly number[];
}

function channelTensor(values: readonly number[], c: number, device?: Device): Tensor {
  if (values.length !== 1 && values.length !== c) throw new RangeError(`normalisation has ${values.length} values for ${c} channels`);
  return tensor(Float32Array.from(values.length === 1 ? Array(c).fill(values[0]) : values), [1, c, 1, 1], { device });
}

/** Raw uint8 images -> a Split of normalised float32 images and int64 labels. */
export function toSplit(raw: RawImages, norm: Normalization, { device }: { device?: Device } = {}): Split {
  const { count: n, channels: c, height: h, width: w } = raw;
  if (raw.images.length !== n * c * h * w) throw new RangeError(`toSplit: ${raw.images.length} pixels for [${n}, ${c}, ${h}, ${w}]`);
  if (raw.labels.length !== n) throw new RangeError(`toSplit: ${raw.labels.length} labels for ${n} images`);
  return tidy(() => {
    const x = tensor(raw.images, [n, c, h, w], { dtype: 'float32', device });
    const images = x
      .div(255)
      .sub(channelTensor(norm.mean, c, device))
      .div(channelTensor(norm.std, c, device))
      .keep();
    const labels = tensor(raw.labels, [n], { dtype: 'int64', device }).keep();
    return { images, labels, size: n };
  });
}

/** The records at `indices` (in that order), copied. */
export function takeRaw(raw: RawImages, indices: ArrayLike<number>): RawImages {
  const per = raw.channels * raw.height * raw.width;
  const images = new Uint8Array(indices.length * per);
  const labels = new Uint8Array(indices.length);
  for (let i = 0; i < indices.length; i++) {
    const j = indices[i];
    if (!(j >= 0 && j < raw.count)) throw new RangeError(`takeRaw: index ${j} out of range [0, ${raw.count})`);
    images.set(raw.images.subarray(j * per, (j + 1) * per), i * per);
    labels[i] = raw.labels[j];
  }
  return { ...raw, images, labels, count: indices.length };
}

/** Concatenate raw record sets of the same image shape. */
export function concatRaw(parts: RawImages[]): RawImages {
  if (parts.length === 0) throw new RangeError('concatRaw: nothing to concatenate');
  const [first] = parts;
  if (parts.length === 1) return first;
  const count = parts.reduce((a, p) => a + p.count, 0);
  const images = new Uint8Array(parts.reduce((a, p) => a + p.images.length, 0));
  const labels = new Uint8Array(count);
  let io = 0;
  let lo = 0;
  for (const p of parts) {
    if (p.channels !== first.channels || p.height !== first.height || p.width !== first.width)
      throw new RangeError('concatRaw: image shapes differ');
    images.set(p.images, io);
    labels.set(p.labels, lo);
    io += p.images.length;
    lo += p.count;
  }
  return { ...first, images, labels, count };
}

export interface HoldOut {
  /** indices of the remaining training samples, ascending */
  train: Int32Array;
  /** indices of the validation samples, ascending */
  validation: Int32Array;
}

/**
 * A seeded hold-out of `size` of `n` training samples for validation: disjoint, covering
 * 0..n-1, the same for the same (n, size, seed). Both index lists are sorted, so each
 * part keeps the file order (shuffle separately).
 */
export function validationIndices(n: number, size: number, seed: number): HoldOut {
  if (!(Number.isInteger(size) && size >= 0 && size < n))
    throw new RangeError(`validation size must be an integer in [0, ${n}), got ${size}`);
  const perm = seededPermutation(n, seed, 'validation-split');
  const validation = perm.slice(0, size).sort();
  const train = perm.slice(size).sort();
  return { train, validation };
}

/** The samples of a Split at `indices` (copied natively with indexSelect). */
export function subsetSplit(split: Split, indices: ArrayLike<number>): Split {
  return tidy(() => {
    const idx = tensor(Int32Array.from(indices), [indices.length], { dtype: 'int64', device: split.images.device });
    return { images: split.images.indexSelect(0, idx), labels: split.labels.indexSelect(0, idx), size: indices.length };
  });
}

/** A copy of the split in a seeded random order (the same for the same seed and epoch). */
export function shuffleSplit(split: Split, seed: number, epoch = 0): Split {
  return subsetSplit(split, seededPermutation(split.size, seed, 'shuffle', epoch));
}
