// Training-time augmentation for CIFAR: random crop with zero padding (default 4 pixels)
// and random horizontal flip, as in the standard CIFAR ResNet recipe. Applied to a whole
// batch natively: the batch is padded once, then each sample's crop window (and flip) is
// taken with two gathers whose indices come from a seeded generator, so a run is
// reproducible from its seed and does not touch libtorch's global RNG.
import { tensor, type Tensor } from '../engine/tensor.js';
import { pad } from '../engine/ops.js';
import { tidy } from '../engine/scope.js';
import { Rng, deriveSeed } from './rng.js';

export interface CropFlipOptions {
  /** pixels of padding on every side (default 4) */
  padding?: number;
  /** flip horizontally with probability 0.5 (default true) */
  flip?: boolean;
  /**
   * The value padded pixels take, per channel, in the images' units. "Zero padding" means
   * black pixels before normalisation, i.e. -mean/std for normalised images: pass
   * paddingFill(norm). Default 0 (zero in the given units).
   */
  fill?: number | readonly number[];
}

/** Per-sample crop offsets (in [0, 2*padding]) and flips. */
export interface CropFlipParams {
  dy: Int32Array;
  dx: Int32Array;
  flip: Uint8Array;
}

export function cropFlipParams(n: number, padding: number, flip: boolean, rng: Rng): CropFlipParams {
  const dy = new Int32Array(n);
  const dx = new Int32Array(n);
  const f = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    dy[i] = rng.int(2 * padding + 1);
    dx[i] = rng.int(2 * padding + 1);
    f[i] = flip && rng.bernoulli(0.5) ? 1 : 0;
  }
  return { dy, dx, flip: f };
}

/** The normalised value of a black pixel per channel: -mean/std (the fill for "zero padding"). */
export function paddingFill(norm: { mean: readonly number[]; std: readonly number[] }): number[] {
  return norm.mean.map((m, c) => -m / norm.std[c]);
}

/** Apply explicit crop/flip parameters to images [N, C, H, W]: out[i] = crop(pad(x[i]), dy, dx), flipped if asked. */
export function applyCropFlip(
  images: Tensor,
  p: CropFlipParams,
  { padding = 4, fill = 0 }: Pick<CropFlipOptions, 'padding' | 'fill'> = {},
): Tensor {
  const [n, c, h, w] = images.shape;
  if (images.rank !== 4) throw new RangeError(`applyCropFlip: images must be [N, C, H, W], got [${images.shape.join(', ')}]`);
  if (p.dy.length !== n) throw new RangeError(`applyCropFlip: ${p.dy.length} parameter sets for ${n} images`);
  return tidy(() => {
    const device = images.device;
    const fills = typeof fill === 'number' ? Array(c).fill(fill) : [...fill];
    if (fills.length !== c) throw new RangeError(`applyCropFlip: fill has ${fills.length} values for ${c} channels`);
    const uniform = fills.every((v) => v === fills[0]);
    let padded: Tensor;
    if (uniform) {
      padded = pad(images, [padding, padding, padding, padding], { value: fills[0] });
    } else {
      const f = tensor(Float32Array.from(fills), [1, c, 1, 1], { device, dtype: images.dtype });
      padded = pad(images.sub(f), [padding, padding, padding, padding]).add(f);
    }
    const wp = w + 2 * padding;
    const rows = new Int32Array(n * h);
    const cols = new Int32Array(n * w);
    for (let i = 0; i < n; i++) {
      for (let y = 0; y < h; y++) rows[i * h + y] = p.dy[i] + y;
      for (let x = 0; x < w; x++) cols[i * w + x] = p.dx[i] + (p.flip[i] ? w - 1 - x : x);
    }
    const rowIdx = tensor(rows, [n, 1, h, 1], { dtype: 'int64', device }).expand([n, c, h, wp]);
    const colIdx = tensor(cols, [n, 1, 1, w], { dtype: 'int64', device }).expand([n, c, h, w]);
    return padded.gather(2, rowIdx).gather(3, colIdx);
  });
}

/**
 * Random crop (padding pixels each side, then a random HxW window) and random horizontal
 * flip of a batch [N, C, H, W]. Deterministic for the generator's state: use one Rng per
 * (seed, epoch) and call once per batch in order.
 */
export function randomCropFlip(images: Tensor, rng: Rng, { padding = 4, flip = true, fill = 0 }: CropFlipOptions = {}): Tensor {
  const p = cropFlipParams(images.shape[0], padding, flip, rng);
  return applyCropFlip(images, p, { padding, fill });
}

/**
 * An augmentation function for one epoch of training (e.g. trainEpoch's `augment`):
 * crop+flip with a generator seeded by (seed, epoch), so a run replays exactly when the
 * batches come in the same order.
 */
export function cropFlipAugmenter(seed: number, epoch: number, o: CropFlipOptions = {}): (images: Tensor) => Tensor {
  const rng = new Rng(deriveSeed(seed, 'crop-flip', epoch));
  return (images) => randomCropFlip(images, rng, o);
}
