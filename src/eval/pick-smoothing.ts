// Picking a LeTCC code's smoothing parameters on held-out data: for every (lambdaEnc, lambdaDec)
// of a grid, the degraded-mode accuracy pooled over every straggler pattern of 0..N-K stragglers
// (each pattern weighted equally, all k answers of every group decoded: the A_d that the shared
// code evaluation reports for a non-systematic code) on a validation split the base model never
// trained on; the most accurate pair is returned (ties: the smaller lambdas, earlier in the grid).
// The workers' outputs are computed once per lambdaEnc and decoded for every lambdaDec; scoring
// runs in the engine (argmax, compare, sum).
import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import { stack } from '../engine/ops.js';
import type { Device } from '../engine/dtype.js';
import type { Split } from '../data/split.js';
import type { Module } from '../nn/module.js';
import { GroupSampler, gatherGroups } from '../data/group-sampler.js';
import { LetccCode } from '../codes/letcc.js';

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
  /** validation samples used (complete groups of k) */
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
  /** coding groups per forward batch (default 500) */
  batchGroups?: number;
  onTrial?: (t: SmoothingTrial) => void;
}

export function pickSmoothing(o: PickSmoothingOptions): SmoothingPick {
  const encGrid = o.k <= 2 ? [0] : (o.lambdaEncGrid ?? LAMBDA_ENC_GRID);
  const decGrid = o.lambdaDecGrid ?? LAMBDA_DEC_GRID;
  if (encGrid.length === 0 || decGrid.length === 0) throw new RangeError('pickSmoothing: empty grid');
  const device = o.device ?? 'cpu';
  const sampler = new GroupSampler({ size: o.validation.size, k: o.k, groupsPerBatch: o.batchGroups ?? 500, seed: o.seed ?? 1 });
  const patterns = new LetccCode({ k: o.k, n: o.n }).evaluationPatterns();
  const wasTraining = o.base.training;
  o.base.eval();
  const trials: SmoothingTrial[] = [];
  let samples = 0;
  try {
    noGrad(() => {
      for (const lambdaEnc of encGrid) {
        const codes = decGrid.map((lambdaDec) => new LetccCode({ k: o.k, n: o.n, lambdaEnc, lambdaDec }));
        const correct = codes.map(() => 0);
        const recovered = codes.map(() => 0);
        let answers = 0;
        samples = 0;
        for (const batch of sampler.batches(0)) {
          tidy(() => {
            const g = gatherGroups(o.validation, batch);
            const x = device === 'cpu' ? g.images : g.images.to(device);
            const G = batch.groups;
            const labels = (device === 'cpu' ? g.labels : g.labels.to(device)).reshape([G, o.k]);
            const basePred = o.base.forward(x.flatten(0, 1)).argmax(-1).reshape([G, o.k]);
            samples += G * o.k;
            const outputs = codes[0].encode(x).map((q) => o.base.forward(q.inputs[0]));
            answers += G * o.k * patterns.length;
            codes.forEach((code, ci) => {
              for (const p of patterns) {
                tidy(() => {
                  const pred = stack(code.decode(outputs.map((t, i) => (p[i] ? t : null))).outputs, 1).argmax(-1); // [G, k]
                  correct[ci] += pred.eq(labels).sum().item();
                  recovered[ci] += pred.eq(basePred).sum().item();
                });
              }
            });
          });
        }
        codes.forEach((code, ci) => {
          const t: SmoothingTrial = {
            lambdaEnc,
            lambdaDec: code.lambdaDec,
            accuracy: correct[ci] / answers,
            recovery: recovered[ci] / answers,
          };
          trials.push(t);
          o.onTrial?.(t);
        });
      }
    });
  } finally {
    o.base.train(wasTraining);
  }
  let best = trials[0];
  for (const t of trials) if (t.accuracy > best.accuracy) best = t;
  return { lambdaEnc: best.lambdaEnc, lambdaDec: best.lambdaDec, trials, samples };
}
