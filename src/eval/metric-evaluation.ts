// Degraded-mode evaluation of a code with a task-aware metric (task-metric.ts): the samples are
// cut into coding groups of k (a seeded permutation), encoded and run through the workers, and
// every erasure pattern the code reports is decoded. Reported: the base model's mean score on
// the same samples, the mean score of the reconstructions (pooled over the patterns, and by
// number of missing outputs), and the default-answer baseline (one fixed output for every
// query, e.g. the mean training box). Works for any outputs the metric understands (class
// scores with accuracy, boxes with IoU).
import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import { tensor, type Tensor } from '../engine/tensor.js';
import type { Code } from '../codes/code.js';
import { missingIndices } from '../codes/code.js';
import { runQuery, type WorkerSet } from '../codes/computation.js';
import { workerSetState } from '../codes/code-state.js';
import { saveTrainingModes } from '../nn/module.js';
import { seededPermutation } from '../data/rng.js';
import type { TaskMetric } from './task-metric.js';

export interface MetricEvaluationOptions {
  code: Code;
  workers: WorkerSet;
  /** [N, ...queryShape] */
  inputs: Tensor;
  /** [N, ...] what the metric compares outputs with */
  targets: Tensor;
  metric: TaskMetric;
  /** the default answer's output (one query's worth), scored as the baseline */
  defaultOutput: readonly number[];
  /** seed of the grouping permutation (default 1) */
  seed?: number;
  /** coding groups per batch (default 500) */
  batchGroups?: number;
}

export interface MetricEvaluation {
  code: string;
  k: number;
  n: number;
  metric: string;
  samples: number;
  /** mean score of the base model's outputs */
  base: number;
  /** mean score of the reconstructions over every evaluation pattern */
  degraded: number;
  reconstructions: number;
  /** mean score of the default answer */
  defaultBaseline: number;
  byMissing: { missing: number; patterns: number; count: number; score: number }[];
}

export function evaluateCodeWithMetric(o: MetricEvaluationOptions): MetricEvaluation {
  const { code, workers, metric } = o;
  const k = code.k;
  const N = o.inputs.shape[0];
  if (o.targets.shape[0] !== N) throw new RangeError(`evaluateCodeWithMetric: ${N} inputs but ${o.targets.shape[0]} targets`);
  const groupsTotal = Math.floor(N / k);
  if (groupsTotal === 0) throw new RangeError(`evaluateCodeWithMetric: fewer than k = ${k} samples`);
  const perm = seededPermutation(N, o.seed ?? 1, 'metric-evaluation-groups');
  const patterns = code.evaluationPatterns();
  const per = patterns.map(() => ({ sum: 0, count: 0 }));
  let baseSum = 0;
  let defaultSum = 0;
  const bg = o.batchGroups ?? 500;
  const state = workerSetState(code, workers);
  const restoreModes = saveTrainingModes(state);
  state.eval();
  try {
    noGrad(() => {
      for (let g0 = 0; g0 < groupsTotal; g0 += bg) {
        const G = Math.min(bg, groupsTotal - g0);
        tidy(() => {
          const idx = tensor(Int32Array.from(perm.subarray(g0 * k, (g0 + G) * k)), [G * k], { dtype: 'int64' });
          const xs = o.inputs.indexSelect(0, idx); // [G k, ...]
          const ts = o.targets.indexSelect(0, idx);
          const x = xs.reshape([G, k, ...xs.shape.slice(1)]);
          const baseOut = workers.base.forward(xs);
          baseSum += metric.scores(baseOut, ts).sum().item();
          const def = tensor(Float32Array.from(o.defaultOutput), [1, o.defaultOutput.length])
            .expand([G * k, o.defaultOutput.length])
            .contiguous();
          defaultSum += metric.scores(def.reshape(baseOut.shape), ts).sum().item();
          const outputs = code.encode(x).map((q) => runQuery(workers, q));
          const tk = ts.reshape([G, k, ...ts.shape.slice(1)]);
          patterns.forEach((p, pi) => {
            tidy(() => {
              const d = code.decode(outputs.map((t, i) => (p[i] ? t : null)));
              for (let j = 0; j < k; j++) {
                if (!d.reconstructed[j]) continue;
                per[pi].sum += metric.scores(d.outputs[j], tk.select(1, j)).sum().item();
                per[pi].count += G;
              }
            });
          });
        });
      }
    });
  } finally {
    restoreModes();
  }
  const samples = groupsTotal * k;
  const byMissingMap = new Map<number, { patterns: number; sum: number; count: number }>();
  patterns.forEach((p, i) => {
    const m = missingIndices(p).length;
    const e = byMissingMap.get(m) ?? { patterns: 0, sum: 0, count: 0 };
    e.patterns++;
    e.sum += per[i].sum;
    e.count += per[i].count;
    byMissingMap.set(m, e);
  });
  const all = per.reduce((a, b) => ({ sum: a.sum + b.sum, count: a.count + b.count }), { sum: 0, count: 0 });
  return {
    code: code.name,
    k,
    n: code.n,
    metric: metric.name,
    samples,
    base: baseSum / samples,
    degraded: all.count ? all.sum / all.count : 0,
    reconstructions: all.count,
    defaultBaseline: defaultSum / samples,
    byMissing: [...byMissingMap]
      .sort((a, b) => a[0] - b[0])
      .map(([missing, e]) => ({ missing, patterns: e.patterns, count: e.count, score: e.count ? e.sum / e.count : 0 })),
  };
}
