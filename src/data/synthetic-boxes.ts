// A synthetic localization dataset generated with a seed (one object per image, predict its
// box): every 1 x S x S image holds one filled axis-aligned rectangle of random size, position
// and brightness on a background of Gaussian noise and a few faint distractor blobs; the target
// is the rectangle's box (x0, y0, x1, y1) as fractions of the image side (pixel edges, so a box
// covering columns 3..7 has x0 = 3 / S, x1 = 8 / S). Pixels are roughly zero-mean, unit-variance.
import { tensor, type Tensor } from '../engine/tensor.js';
import { Rng, deriveSeed } from './rng.js';

export interface BoxDatasetOptions {
  /** image side in pixels (default 28) */
  side?: number;
  trainSize?: number;
  validationSize?: number;
  testSize?: number;
  /** data seed (default 0): the same seed gives the same images and boxes */
  seed?: number;
  /** background noise standard deviation (default 0.3) */
  noise?: number;
}

export const BOX_DATASET_DEFAULTS: Required<BoxDatasetOptions> = {
  side: 28,
  trainSize: 10000,
  validationSize: 2000,
  testSize: 2000,
  seed: 0,
  noise: 0.3,
};

export interface BoxSplit {
  /** [N, 1, S, S] float32 */
  images: Tensor;
  /** [N, 4] float32: x0, y0, x1, y1 in [0, 1] */
  boxes: Tensor;
  size: number;
}

export interface BoxDataset {
  train: BoxSplit;
  validation: BoxSplit;
  test: BoxSplit;
  /** the mean training box: the default answer */
  meanBox: [number, number, number, number];
  options: Required<BoxDatasetOptions>;
}

function generate(n: number, o: Required<BoxDatasetOptions>, stream: string): { images: Float32Array; boxes: Float32Array } {
  const rng = new Rng(deriveSeed(o.seed, 'synthetic-boxes', stream));
  const s = o.side;
  const images = new Float32Array(n * s * s);
  const boxes = new Float32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const img = images.subarray(i * s * s, (i + 1) * s * s);
    for (let p = 0; p < s * s; p++) img[p] = o.noise * rng.normal() - 0.5;
    // two faint distractor blobs
    for (let b = 0; b < 2; b++) {
      const cy = rng.float() * s;
      const cx = rng.float() * s;
      const r = 1 + rng.float() * 2;
      for (let y = 0; y < s; y++)
        for (let x = 0; x < s; x++) img[y * s + x] += 0.6 * Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * r * r));
    }
    const w = 4 + rng.int(Math.floor(s * 0.5));
    const h = 4 + rng.int(Math.floor(s * 0.5));
    const x0 = rng.int(s - w + 1);
    const y0 = rng.int(s - h + 1);
    const level = 1.5 + rng.float();
    for (let y = y0; y < y0 + h; y++) for (let x = x0; x < x0 + w; x++) img[y * s + x] += level;
    boxes.set([x0 / s, y0 / s, (x0 + w) / s, (y0 + h) / s], i * 4);
  }
  return { images, boxes };
}

/** Generate the dataset (train, validation and test from separate streams of the seed). */
export function syntheticBoxes(options: BoxDatasetOptions = {}): BoxDataset {
  const o = { ...BOX_DATASET_DEFAULTS, ...options };
  for (const k of ['side', 'trainSize', 'validationSize', 'testSize'] as const) {
    if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new RangeError(`synthetic boxes: ${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.side < 12) throw new RangeError(`synthetic boxes: side must be >= 12 pixels, got ${o.side}`);
  const split = (n: number, stream: string): BoxSplit => {
    const g = generate(n, o, stream);
    return { images: tensor(g.images, [n, 1, o.side, o.side]), boxes: tensor(g.boxes, [n, 4]), size: n };
  };
  const train = split(o.trainSize, 'train');
  const mean = train.boxes.mean(0).toList() as number[];
  return {
    train,
    validation: split(o.validationSize, 'validation'),
    test: split(o.testSize, 'test'),
    meanBox: [mean[0], mean[1], mean[2], mean[3]],
    options: o,
  };
}

export function disposeBoxDataset(d: BoxDataset): void {
  for (const s of [d.train, d.validation, d.test]) {
    s.images.dispose();
    s.boxes.dispose();
  }
}
