// Picking a LeTCC code's smoothing parameters on held-out data: every (lambdaEnc, lambdaDec) of
// a grid is evaluated with the shared code evaluation (degraded-mode accuracy pooled over every
// straggler pattern of 0..N-K stragglers) on a validation split the base model never trained
// on, and the most accurate pair is returned (ties: the smaller lambdas, earlier in the grid).
import type { Device } from '../engine/dtype.js';
import type { Split } from '../data/split.js';
import type { Module } from '../nn/module.js';
import { LetccCode } from '../codes/letcc.js';
import { evaluateCode } from './code-metrics.js';

/** lambdaEnc candidates (only for k >= 3: with two data points every smoothing spline is their line) */
export const LAMBDA_ENC_GRID = [0, 1e-4, 1e-3, 1e-2, 1e-1];
export const LAMBDA_DEC_GRID = [0, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1];

export interface SmoothingTrial {
  lambdaEnc: number;
  lambdaDec: number;
  /** validation A_d pooled over every straggler pattern */
  accuracy: number;
  /** validation recovery (argmax equals the base model's) */
  recovery: number;
}

export interface SmoothingPick {
  lambdaEnc: number;
  lambdaDec: number;
  trials: SmoothingTrial[];
  /** validation samples used */
  samples: number;
}

export interface PickSmoothingOptions {
  k: number;
  n: number;
  base: Module;
  validation: Split;
  classes: number;
  device?: Device;
  seed?: number;
  lambdaEncGrid?: readonly number[];
  lambdaDecGrid?: readonly number[];
  onTrial?: (t: SmoothingTrial) => void;
}

export function pickSmoothing(o: PickSmoothingOptions): SmoothingPick {
  const encGrid = o.k <= 2 ? [0] : (o.lambdaEncGrid ?? LAMBDA_ENC_GRID);
  const decGrid = o.lambdaDecGrid ?? LAMBDA_DEC_GRID;
  if (encGrid.length === 0 || decGrid.length === 0) throw new RangeError('pickSmoothing: empty grid');
  const trials: SmoothingTrial[] = [];
  let best: SmoothingTrial | null = null;
  let samples = 0;
  for (const lambdaEnc of encGrid) {
    for (const lambdaDec of decGrid) {
      const code = new LetccCode({ k: o.k, n: o.n, lambdaEnc, lambdaDec });
      const e = evaluateCode({ code, workers: { base: o.base }, test: o.validation, classes: o.classes, device: o.device, seed: o.seed });
      samples = e.samples;
      const t: SmoothingTrial = { lambdaEnc, lambdaDec, accuracy: e.degraded.accuracy, recovery: e.degraded.recovery };
      trials.push(t);
      o.onTrial?.(t);
      if (best === null || t.accuracy > best.accuracy) best = t;
    }
  }
  return { lambdaEnc: best!.lambdaEnc, lambdaDec: best!.lambdaDec, trials, samples };
}
