// `synthetic`: small, deterministic, learnable image classification data for tests.
// Each class has a fixed random pattern (a smooth blob field drawn from the seed); a sample
// is its class pattern, randomly shifted in brightness, plus Gaussian pixel noise, stored
// as uint8 like real datasets. A linear model separates the classes well above chance.
import { Rng, deriveSeed } from './rng.js';
import type { RawImages } from './split.js';

export interface SyntheticOptions {
  classes?: number;
  channels?: number;
  height?: number;
  width?: number;
  trainSize?: number;
  testSize?: number;
  /** pixel noise std in [0, 255] units (default 40) */
  noise?: number;
  /** generator seed: the data set is a pure function of the options (default 0) */
  dataSeed?: number;
}

export const SYNTHETIC_DEFAULTS: Required<SyntheticOptions> = {
  classes: 10,
  channels: 1,
  height: 8,
  width: 8,
  trainSize: 2000,
  testSize: 500,
  noise: 40,
  dataSeed: 0,
};

/**
 * Nominal normalisation for synthetic pixels: patterns are centred on 128 with an amplitude
 * of 64, plus noise, so (x/255 - 0.5) / 0.25 is roughly zero-mean and unit-variance.
 */
export const SYNTHETIC_NORMALIZATION = { mean: 0.5, std: 0.25 };

function patterns(o: Required<SyntheticOptions>): Float32Array[] {
  const rng = new Rng(deriveSeed(o.dataSeed, 'synthetic-patterns'));
  const per = o.channels * o.height * o.width;
  return Array.from({ length: o.classes }, () => {
    // a few Gaussian blobs of random sign per channel, scaled to [-1, 1]
    const p = new Float32Array(per);
    for (let c = 0; c < o.channels; c++) {
      for (let b = 0; b < 3; b++) {
        const cy = rng.float() * o.height;
        const cx = rng.float() * o.width;
        const s = 0.5 + (rng.float() * Math.max(o.height, o.width)) / 4;
        const sign = rng.bernoulli() ? 1 : -1;
        for (let y = 0; y < o.height; y++) {
          for (let x = 0; x < o.width; x++) {
            p[(c * o.height + y) * o.width + x] += sign * Math.exp(-((y - cy) ** 2 + (x - cx) ** 2) / (2 * s * s));
          }
        }
      }
    }
    let m = 0;
    for (const v of p) m = Math.max(m, Math.abs(v));
    if (m > 0) for (let i = 0; i < per; i++) p[i] /= m;
    return p;
  });
}

/** Generate one split ('train' and 'test' use different sample streams, same class patterns). */
export function syntheticSplit(split: 'train' | 'test', options: SyntheticOptions = {}): RawImages {
  const o = { ...SYNTHETIC_DEFAULTS, ...options };
  for (const k of ['classes', 'channels', 'height', 'width', 'trainSize', 'testSize'] as const) {
    if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new RangeError(`synthetic: ${k} must be a positive integer, got ${o[k]}`);
  }
  if (o.classes > 256) throw new RangeError('synthetic: at most 256 classes (labels are bytes)');
  const n = split === 'train' ? o.trainSize : o.testSize;
  const per = o.channels * o.height * o.width;
  const pats = patterns(o);
  const rng = new Rng(deriveSeed(o.dataSeed, 'synthetic-samples', split));
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) labels[i] = i % o.classes;
  rng.shuffle(labels);
  const images = new Uint8Array(n * per);
  for (let i = 0; i < n; i++) {
    const p = pats[labels[i]];
    const gain = 0.8 + 0.4 * rng.float();
    for (let j = 0; j < per; j++) {
      const v = 128 + 64 * gain * p[j] + o.noise * rng.normal();
      images[i * per + j] = v < 0 ? 0 : v > 255 ? 255 : Math.round(v);
    }
  }
  return { images, labels, count: n, channels: o.channels, height: o.height, width: o.width };
}
