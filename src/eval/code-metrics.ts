// Degraded-mode evaluation of a code, shared by every code family (parity models, learned
// codes, polynomial codes): the test set is cut into coding groups of k, every group is
// encoded and run through the workers, and every erasure pattern the code reports in
// evaluationPatterns() is decoded. Reported:
//   - A_a: the base model's accuracy on the same samples (what you get when nothing is late);
//   - A_d: degraded-mode accuracy, the reconstructions' accuracy against the true labels,
//     counted only on reconstructed slots, pooled over all patterns;
//   - recovery accuracy: a reconstruction's argmax equals the base model's argmax;
//   - top-5 variants of both, per-pattern results, results grouped by how many outputs were
//     missing (for non-systematic codes: by straggler count, every output being decoded);
//   - A_o(f) = (1 - f) A_a + f A_d for f in 0..1 (f: fraction of queries needing decoding);
//   - the default-prediction baseline 1 / classes;
//   - recovery split by whether the base model was right;
//   - for reconstructions whose argmax differs from the base model's: the rank of that class
//     in the base model's output (2, 3, other).
import { writeFileSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import { stack } from '../engine/ops.js';
import { workerSetState } from '../codes/code-state.js';
import { saveTrainingModes } from '../nn/module.js';
import type { Device } from '../engine/dtype.js';
import type { Tensor } from '../engine/tensor.js';
import type { Split } from '../data/split.js';
import { GroupSampler, gatherGroups } from '../data/group-sampler.js';
import type { Availability, Code } from '../codes/code.js';
import { missingIndices } from '../codes/code.js';
import { runQuery, type WorkerSet } from '../codes/computation.js';

export interface EvaluateCodeOptions {
  code: Code;
  workers: WorkerSet;
  test: Split;
  /** number of classes (or their names) */
  classes: number | readonly string[];
  /** coding groups per forward batch (default 500) */
  batchGroups?: number;
  device?: Device;
  /** seed of the permutation that forms the coding groups (default 1) */
  seed?: number;
  /** called after each batch with (done groups, total groups) */
  onProgress?: (done: number, total: number) => void;
}

/** Counters for one set of reconstructions. */
export interface ReconstructionStats {
  /** reconstructed outputs counted */
  count: number;
  /** argmax equals the true label (A_d) */
  accuracy: number;
  /** true label among the 5 largest */
  top5: number;
  /** argmax equals the base model's argmax */
  recovery: number;
  /** base model's argmax among the 5 largest */
  recoveryTop5: number;
}

export interface PatternResult extends ReconstructionStats {
  /** availability as a string of 0/1 over the n outputs, e.g. "011" */
  pattern: string;
  missing: number[];
  /** means of the decoder's diagnostics over batches (e.g. condition number) */
  info: Record<string, number>;
}

export interface MissingGroupResult extends ReconstructionStats {
  missing: number;
  patterns: number;
}

export interface CodeEvaluation {
  code: string;
  family: string;
  k: number;
  r: number;
  n: number;
  systematic: boolean;
  classes: number;
  groups: number;
  /** samples in complete groups (the test set minus a remainder < k) */
  samples: number;
  /** A_a */
  baseAccuracy: number;
  baseTop5: number;
  /** A_d, recovery and top-5 over every evaluation pattern, pooled */
  degraded: ReconstructionStats;
  /** 1 / classes */
  defaultBaseline: number;
  /** recovery split by whether the base model was right on that sample */
  byBaseCorrect: { baseCorrect: ReconstructionStats; baseWrong: ReconstructionStats };
  /** reconstructions whose argmax differs from the base argmax: rank of that class in the base output */
  wrongRanks: { count: number; rank2: number; rank3: number; other: number };
  patterns: PatternResult[];
  byMissing: MissingGroupResult[];
  /** A_o(f) for f = 0, 0.05, ..., 1 */
  overall: { f: number; accuracy: number }[];
  seconds: number;
}

class Acc {
  count = 0;
  correct = 0;
  top5 = 0;
  recovered = 0;
  recoveredTop5 = 0;
  stats(): ReconstructionStats {
    const d = this.count || 1;
    return {
      count: this.count,
      accuracy: this.correct / d,
      top5: this.top5 / d,
      recovery: this.recovered / d,
      recoveryTop5: this.recoveredTop5 / d,
    };
  }
}

const patternString = (p: Availability) => p.map((a) => (a ? '1' : '0')).join('');

/** A_o(f) = (1 - f) A_a + f A_d. */
export function overallAccuracy(baseAccuracy: number, degradedAccuracy: number, f: number): number {
  return (1 - f) * baseAccuracy + f * degradedAccuracy;
}

export function evaluateCode(o: EvaluateCodeOptions): CodeEvaluation {
  const t0 = performance.now();
  const { code, workers, test } = o;
  const classes = typeof o.classes === 'number' ? o.classes : o.classes.length;
  if (!Number.isInteger(classes) || classes < 2) throw new RangeError(`evaluateCode: classes must be >= 2, got ${classes}`);
  const device = o.device ?? 'cpu';
  const batchGroups = o.batchGroups ?? 500;
  const patterns = code.evaluationPatterns();
  if (patterns.length === 0) throw new Error(`evaluateCode: ${code.name} reports no erasure patterns to evaluate`);
  for (const p of patterns) {
    if (p.length !== code.n)
      throw new Error(`evaluateCode: ${code.name} reported pattern ${patternString(p)} of length ${p.length}, expected n = ${code.n}`);
  }
  const sampler = new GroupSampler({ size: test.size, k: code.k, groupsPerBatch: batchGroups, seed: o.seed ?? 1 });
  const totalGroups = sampler.groupsPerEpoch;
  const top = Math.min(5, classes);
  const k = code.k;

  const perPattern = patterns.map(() => ({ acc: new Acc(), info: new Map<string, { sum: number; n: number }>() }));
  const all = new Acc();
  const baseRight = new Acc();
  const baseWrong = new Acc();
  const ranks = { count: 0, rank2: 0, rank3: 0, other: 0 };
  let baseCorrect = 0;
  let baseTop5 = 0;
  let samples = 0;
  let done = 0;

  const state = workerSetState(code, workers);
  const restoreModes = saveTrainingModes(state);
  state.eval();
  try {
    noGrad(() => {
      for (const batch of sampler.batches(0)) {
        tidy(() => {
          const g = gatherGroups(test, batch);
          const x = device === 'cpu' ? g.images : g.images.to(device);
          const G = batch.groups;
          const labels = g.labels.toList(); // [G * k], group-major
          const queries = code.encode(x);
          if (queries.length !== code.n)
            throw new Error(`${code.name}: encode() returned ${queries.length} coded queries, expected n = ${code.n}`);
          const outputs = queries.map((q) => runQuery(workers, q));
          // the base model's outputs on the originals: [G, k, C]
          let base: Tensor;
          if (code.systematic) base = stack(outputs.slice(0, k), 1);
          else base = workers.base.forward(x.flatten(0, 1)).reshape([G, k, -1]);
          if (base.shape[2] !== classes)
            throw new Error(`evaluateCode: the base model outputs ${base.shape[2]} values per query, expected ${classes} classes`);
          const baseSorted = base
            .reshape([G * k, classes])
            .sort(1, true)
            .indices.toList(); // [G*k*C]
          const basePred = new Int32Array(G * k);
          for (let i = 0; i < G * k; i++) {
            basePred[i] = baseSorted[i * classes];
            if (basePred[i] === labels[i]) baseCorrect++;
            for (let t = 0; t < top; t++) if (baseSorted[i * classes + t] === labels[i]) baseTop5++;
          }
          samples += G * k;
          patterns.forEach((p, pi) => {
            tidy(() => {
              const d = code.decode(outputs.map((t, i) => (p[i] ? t : null)));
              const slot = perPattern[pi];
              for (const [key, v] of Object.entries(d.info ?? {})) {
                const s = slot.info.get(key) ?? { sum: 0, n: 0 };
                s.sum += v;
                s.n++;
                slot.info.set(key, s);
              }
              for (let j = 0; j < k; j++) {
                if (!d.reconstructed[j]) continue;
                const topIdx = d.outputs[j].topk(top, { dim: 1 }).indices.toList(); // [G * top]
                for (let gi = 0; gi < G; gi++) {
                  const s = gi * k + j;
                  const pred = topIdx[gi * top];
                  const label = labels[s];
                  const bp = basePred[s];
                  let inTop = false;
                  let baseInTop = false;
                  for (let t = 0; t < top; t++) {
                    if (topIdx[gi * top + t] === label) inTop = true;
                    if (topIdx[gi * top + t] === bp) baseInTop = true;
                  }
                  const split = bp === label ? baseRight : baseWrong;
                  for (const a of [slot.acc, all, split]) {
                    a.count++;
                    if (pred === label) a.correct++;
                    if (inTop) a.top5++;
                    if (pred === bp) a.recovered++;
                    if (baseInTop) a.recoveredTop5++;
                  }
                  if (pred !== bp) {
                    ranks.count++;
                    let rank = 0;
                    for (let c = 0; c < classes; c++) if (baseSorted[s * classes + c] === pred) rank = c + 1;
                    if (rank === 2) ranks.rank2++;
                    else if (rank === 3) ranks.rank3++;
                    else ranks.other++;
                  }
                }
              }
            });
          });
        });
        done += batch.groups;
        o.onProgress?.(done, totalGroups);
      }
    });
  } finally {
    restoreModes();
  }

  const patternResults: PatternResult[] = patterns.map((p, i) => ({
    pattern: patternString(p),
    missing: missingIndices(p),
    ...perPattern[i].acc.stats(),
    info: Object.fromEntries([...perPattern[i].info].map(([key, s]) => [key, s.sum / s.n])),
  }));
  const byMissingMap = new Map<number, { acc: Acc; patterns: number }>();
  patterns.forEach((p, i) => {
    const m = missingIndices(p).length;
    const e = byMissingMap.get(m) ?? { acc: new Acc(), patterns: 0 };
    const a = perPattern[i].acc;
    e.acc.count += a.count;
    e.acc.correct += a.correct;
    e.acc.top5 += a.top5;
    e.acc.recovered += a.recovered;
    e.acc.recoveredTop5 += a.recoveredTop5;
    e.patterns++;
    byMissingMap.set(m, e);
  });
  const byMissing = [...byMissingMap]
    .sort((a, b) => a[0] - b[0])
    .map(([missing, e]) => ({ missing, patterns: e.patterns, ...e.acc.stats() }));
  const baseAccuracy = samples ? baseCorrect / samples : 0;
  const degraded = all.stats();
  const overall = Array.from({ length: 21 }, (_, i) => i / 20).map((f) => ({
    f,
    accuracy: overallAccuracy(baseAccuracy, degraded.accuracy, f),
  }));
  const rc = ranks.count || 1;
  return {
    code: code.name,
    family: code.family,
    k: code.k,
    r: code.r,
    n: code.n,
    systematic: code.systematic,
    classes,
    groups: totalGroups,
    samples,
    baseAccuracy,
    baseTop5: samples ? baseTop5 / samples : 0,
    degraded,
    defaultBaseline: 1 / classes,
    byBaseCorrect: { baseCorrect: baseRight.stats(), baseWrong: baseWrong.stats() },
    wrongRanks: { count: ranks.count, rank2: ranks.rank2 / rc, rank3: ranks.rank3 / rc, other: ranks.other / rc },
    patterns: patternResults,
    byMissing,
    overall,
    seconds: (performance.now() - t0) / 1000,
  };
}

// ---------------------------------------------------------------------------
// reporting

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;

/** A markdown report: summary, by missing count, per pattern, and A_o(f). */
export function formatCodeEvaluation(e: CodeEvaluation): string {
  const lines: string[] = [];
  lines.push(`### ${e.code} (${e.systematic ? 'systematic' : 'non-systematic'}, k = ${e.k}, r = ${e.r}, n = ${e.n})`);
  lines.push('');
  lines.push(
    `${e.groups} coding groups, ${e.samples} test samples, ${e.classes} classes, ${e.degraded.count} reconstructions; ${e.seconds.toFixed(1)} s`,
  );
  lines.push('');
  lines.push('| metric | value |');
  lines.push('|---|---|');
  lines.push(`| A_a (base accuracy) | ${pct(e.baseAccuracy)} |`);
  lines.push(`| base top-5 | ${pct(e.baseTop5)} |`);
  lines.push(`| **A_d (degraded-mode accuracy)** | **${pct(e.degraded.accuracy)}** |`);
  lines.push(`| A_d top-5 | ${pct(e.degraded.top5)} |`);
  lines.push(`| recovery accuracy (vs base argmax) | ${pct(e.degraded.recovery)} |`);
  lines.push(`| recovery top-5 | ${pct(e.degraded.recoveryTop5)} |`);
  lines.push(`| default-prediction baseline (1/classes) | ${pct(e.defaultBaseline)} |`);
  lines.push(`| recovery when base right (${e.byBaseCorrect.baseCorrect.count}) | ${pct(e.byBaseCorrect.baseCorrect.recovery)} |`);
  lines.push(`| recovery when base wrong (${e.byBaseCorrect.baseWrong.count}) | ${pct(e.byBaseCorrect.baseWrong.recovery)} |`);
  lines.push(
    `| wrong recoveries: rank 2 / 3 / other in base output (${e.wrongRanks.count}) | ${pct(e.wrongRanks.rank2)} / ${pct(e.wrongRanks.rank3)} / ${pct(e.wrongRanks.other)} |`,
  );
  for (const f of [0.01, 0.05, 0.1, 0.5, 1])
    lines.push(`| A_o(f = ${f}) | ${pct(overallAccuracy(e.baseAccuracy, e.degraded.accuracy, f))} |`);
  lines.push('');
  lines.push(`| ${e.systematic ? 'missing outputs' : 'stragglers'} | patterns | reconstructions | A_d | top-5 | recovery |`);
  lines.push('|---|---|---|---|---|---|');
  for (const m of e.byMissing)
    lines.push(`| ${m.missing} | ${m.patterns} | ${m.count} | ${pct(m.accuracy)} | ${pct(m.top5)} | ${pct(m.recovery)} |`);
  lines.push('');
  const infoKeys = [...new Set(e.patterns.flatMap((p) => Object.keys(p.info)))];
  lines.push(`| pattern | missing | A_d | top-5 | recovery | recovery top-5 |${infoKeys.map((k) => ` ${k} |`).join('')}`);
  lines.push(`|---|---|---|---|---|---|${infoKeys.map(() => '---|').join('')}`);
  for (const p of e.patterns) {
    lines.push(
      `| ${p.pattern} | ${p.missing.join(',')} | ${pct(p.accuracy)} | ${pct(p.top5)} | ${pct(p.recovery)} | ${pct(p.recoveryTop5)} |` +
        infoKeys.map((k) => ` ${p.info[k] === undefined ? '' : +p.info[k].toPrecision(4)} |`).join(''),
    );
  }
  return lines.join('\n');
}

/** The vega-lite spec of A_o(f) versus f for one or more evaluations (plus the base and default lines). */
export function overallAccuracySpec(
  evals: readonly CodeEvaluation[],
  title = 'Overall accuracy A_o(f) = (1 - f) A_a + f A_d',
): Record<string, unknown> {
  const values: { f: number; accuracy: number; series: string }[] = [];
  for (const e of evals) for (const p of e.overall) values.push({ f: p.f, accuracy: 100 * p.accuracy, series: e.code });
  if (evals.length > 0) {
    for (const f of [0, 1]) values.push({ f, accuracy: 100 * evals[0].defaultBaseline, series: 'default prediction (1/classes)' });
  }
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    width: 420,
    height: 280,
    background: 'white',
    data: { values },
    mark: { type: 'line', point: false },
    encoding: {
      x: { field: 'f', type: 'quantitative', title: 'f: fraction of outputs that need reconstruction' },
      y: { field: 'accuracy', type: 'quantitative', title: 'accuracy (%)', scale: { zero: false } },
      color: { field: 'series', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 1, labelLimit: 600 } },
    },
  };
}

/** Render a vega-lite spec to SVG (and PNG when pngPath is given). */
export async function renderVegaLite(spec: Record<string, unknown>, svgPath: string, pngPath?: string): Promise<void> {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const compiled = vl.compile(spec as never).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  mkdirSync(dirname(svgPath), { recursive: true });
  writeFileSync(svgPath, svg);
  if (pngPath !== undefined) {
    const { Resvg } = await import('@resvg/resvg-js');
    const png = new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, background: 'white' }).render().asPng();
    mkdirSync(dirname(pngPath), { recursive: true });
    writeFileSync(pngPath, png);
  }
}

/** Write the A_o-versus-f plot as PREFIX.svg and PREFIX.png; returns the two paths. */
export async function writeOverallAccuracyPlot(
  evals: CodeEvaluation | readonly CodeEvaluation[],
  prefix: string,
): Promise<{ svg: string; png: string }> {
  const list = Array.isArray(evals) ? (evals as readonly CodeEvaluation[]) : [evals as CodeEvaluation];
  const out = { svg: `${prefix}.svg`, png: `${prefix}.png` };
  await renderVegaLite(overallAccuracySpec(list), out.svg, out.png);
  return out;
}
