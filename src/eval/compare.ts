// Side-by-side comparison of coding schemes on one harness (`coded compare`): for every scheme
// (a code with its workers, replication, or no code) the test set is cut into coding groups of
// the scheme's k and run once; then, for every number of stragglers s = 0..maxStragglers, every
// pattern of s late workers (each equally likely) is decoded and the k answers of every group
// are scored:
//   - accuracy: answer argmax equals the true label; a query that cannot be answered gets the
//     default answer, credited as a uniform guess (1 / classes);
//   - recovery: answer argmax equals the base model's argmax on the query (defaults: 1 / classes);
//   - workers per query (n / k) and extra multiply-adds per query over running F once per query
//     (the coding itself plus the extra worker computation: F, or parity models / worker networks,
//     on n coded queries instead of k), counted on one group by countMacs;
//   - encode time per group and decode time per group and pattern, measured in this run:
//     wall clock around each batch's encode() and each decode(), divided by the batch's groups;
//     the median over batches (and patterns) is reported, after one untimed warm-up pass.
// Replication spreads n workers over the k queries round-robin (worker j runs F on query
// j mod k; a query is answered when any of its copies arrives); "no code" is replication with
// n = k (a straggler's query gets the default answer).
import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import type { Device } from '../engine/dtype.js';
import type { Tensor } from '../engine/tensor.js';
import { saveTrainingModes, type Module } from '../nn/module.js';
import type { Split } from '../data/split.js';
import { GroupSampler, gatherGroups } from '../data/group-sampler.js';
import { patternsWithMissing, type Code } from '../codes/code.js';
import { runQuery, type WorkerSet } from '../codes/computation.js';
import { workerSetState } from '../codes/code-state.js';
import { countMacs } from './macs.js';

export type Scheme =
  | { label: string; kind: 'code'; code: Code; workers: WorkerSet }
  /** n workers over k queries round-robin; n = k is "no code" */
  | { label: string; kind: 'replication'; k: number; n: number };

export interface StragglerResult {
  stragglers: number;
  patterns: number;
  /** accuracy of the k answers (defaults credited 1 / classes) */
  accuracy: number;
  /** answers whose argmax equals the base model's (defaults credited 1 / classes) */
  recovery: number;
  /** share of answers that had to be defaulted (the pattern left them undecodable) */
  defaulted: number;
}

export interface SchemeResult {
  label: string;
  /** the code's name, or replication(k, n) / none(k) */
  scheme: string;
  family: string;
  k: number;
  n: number;
  workersPerQuery: number;
  /** multiply-adds per query beyond one F evaluation per query */
  extraMacsPerQuery: number;
  /** of which encoding and decoding (all outputs returned) */
  codingMacsPerQuery: number;
  /** F's multiply-adds per query */
  baseMacsPerQuery: number;
  /** microseconds per coding group (median over batches / decodes); null where there is nothing to encode / decode */
  encodeUsPerGroup: number | null;
  decodeUsPerGroup: number | null;
  groups: number;
  samples: number;
  baseAccuracy: number;
  byStragglers: StragglerResult[];
}

export interface CompareOptions {
  schemes: readonly Scheme[];
  /** F, for the base accuracy, recovery, and the replication schemes */
  base: Module;
  test: Split;
  classes: number;
  /** straggler counts 0..maxStragglers are reported (a scheme with fewer workers has them all late) */
  maxStragglers: number;
  device?: Device;
  seed?: number;
  batchGroups?: number;
  onScheme?: (label: string, index: number) => void;
}

function median(v: number[]): number {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const argmaxRows = (t: Tensor): Int32Array => Int32Array.from(t.argmax(-1).toList() as number[]);

export function compareSchemes(o: CompareOptions): SchemeResult[] {
  if (!(Number.isInteger(o.maxStragglers) && o.maxStragglers >= 0))
    throw new RangeError(`compareSchemes: maxStragglers must be a non-negative integer, got ${o.maxStragglers}`);
  return o.schemes.map((s, i) => {
    o.onScheme?.(s.label, i);
    return noGrad(() => compareOne(s, o));
  });
}

function compareOne(s: Scheme, o: CompareOptions): SchemeResult {
  const k = s.kind === 'code' ? s.code.k : s.k;
  const n = s.kind === 'code' ? s.code.n : s.n;
  if (s.kind === 'replication' && !(Number.isInteger(k) && k >= 1 && Number.isInteger(n) && n >= k))
    throw new RangeError(`replication: need integers n >= k >= 1, got k = ${k}, n = ${n}`);
  const device = o.device ?? 'cpu';
  const classes = o.classes;
  const sampler = new GroupSampler({ size: o.test.size, k, groupsPerBatch: o.batchGroups ?? 500, seed: o.seed ?? 1 });
  // every module the scheme runs, in evaluation mode for the run and as found afterwards
  const state = s.kind === 'code' ? workerSetState(s.code, s.workers) : o.base;
  const restoreModes = saveTrainingModes(state);
  state.eval();
  o.base.eval();
  // straggler patterns over this scheme's n workers
  const patterns = Array.from({ length: o.maxStragglers + 1 }, (_, st) => patternsWithMissing(n, Math.min(st, n)));
  const acc = patterns.map(() => ({ correct: 0, recovered: 0, defaulted: 0, answers: 0 }));
  // per-group times of every batch's encode and every decode (medians are reported: robust to
  // other work on the machine)
  const encodeUs: number[] = [];
  const decodeUs: number[] = [];
  let groups = 0;
  let baseCorrect = 0;
  let samples = 0;
  let macs = { base: 0, scheme: 0, coding: 0 };
  try {
    for (const batch of sampler.batches(0)) {
      tidy(() => {
        const g = gatherGroups(o.test, batch);
        const x = device === 'cpu' ? g.images : g.images.to(device);
        const G = batch.groups;
        const labels = g.labels.toList() as number[];
        if (groups === 0) macs = countSchemeMacs(s, o.base, x);
        const baseOut = o.base.forward(x.flatten(0, 1)); // [G k, C]
        if (baseOut.shape[1] !== classes)
          throw new Error(`compare: the base model outputs ${baseOut.shape[1]} values per query, expected ${classes} classes`);
        const basePred = argmaxRows(baseOut);
        for (let i = 0; i < G * k; i++) if (basePred[i] === labels[i]) baseCorrect++;
        samples += G * k;
        const score = (st: number, answers: (Tensor | null)[]) => {
          const a = acc[st];
          answers.forEach((t, j) => {
            a.answers += G;
            if (t === null) {
              a.defaulted += G;
              a.correct += G / classes;
              a.recovered += G / classes;
              return;
            }
            const pred = argmaxRows(t);
            for (let gi = 0; gi < G; gi++) {
              if (pred[gi] === labels[gi * k + j]) a.correct++;
              if (pred[gi] === basePred[gi * k + j]) a.recovered++;
            }
          });
        };
        if (s.kind === 'replication') {
          const per = baseOut.reshape([G, k, classes]);
          const answers = Array.from({ length: k }, (_, j) => per.select(1, j));
          patterns.forEach((ps, st) => {
            for (const p of ps)
              score(
                st,
                answers.map((t, j) => (p.some((a, w) => a && w % k === j) ? t : null)),
              );
          });
        } else {
          if (groups === 0) {
            // warm-up (first shapes through libtorch), untimed
            tidy(() => {
              const w = s.code.encode(x).map((q) => runQuery(s.workers, q));
              if (s.code.canDecode(w.map(() => true))) s.code.decode(w);
            });
          }
          const t0 = performance.now();
          const queries = s.code.encode(x);
          encodeUs.push((1000 * (performance.now() - t0)) / G);
          const outputs = queries.map((q) => runQuery(s.workers, q));
          patterns.forEach((ps, st) => {
            for (const p of ps) {
              tidy(() => {
                const avail = outputs.map((t, i) => (p[i] ? t : null));
                if (s.code.canDecode(p)) {
                  const t1 = performance.now();
                  const d = s.code.decode(avail);
                  decodeUs.push((1000 * (performance.now() - t1)) / G);
                  score(st, d.outputs);
                } else {
                  // undecodable: a systematic code still has the originals that arrived
                  score(
                    st,
                    Array.from({ length: k }, (_, j) => (s.code.systematic && p[j] ? avail[j] : null)),
                  );
                }
              });
            }
          });
        }
        groups += G;
      });
    }
  } finally {
    restoreModes();
  }
  const family = s.kind === 'code' ? s.code.family : n === k ? 'none' : 'replication';
  return {
    label: s.label,
    scheme: s.kind === 'code' ? s.code.name : n === k ? `none(k=${k})` : `replication(k=${k}, n=${n})`,
    family,
    k,
    n,
    workersPerQuery: n / k,
    extraMacsPerQuery: (macs.scheme - k * macs.base) / k,
    codingMacsPerQuery: macs.coding / k,
    baseMacsPerQuery: macs.base,
    encodeUsPerGroup: s.kind === 'code' && encodeUs.length > 0 ? median(encodeUs) : null,
    decodeUsPerGroup: s.kind === 'code' && decodeUs.length > 0 ? median(decodeUs) : null,
    groups,
    samples,
    baseAccuracy: samples ? baseCorrect / samples : 0,
    byStragglers: acc.map((a, st) => ({
      stragglers: st,
      patterns: patterns[st].length,
      accuracy: a.answers ? a.correct / a.answers : 0,
      recovery: a.answers ? a.recovered / a.answers : 0,
      defaulted: a.answers ? a.defaulted / a.answers : 0,
    })),
  };
}

/** MACs on the first group: F per query, the whole scheme per group (coding and workers), and the coding alone. */
function countSchemeMacs(s: Scheme, base: Module, x: Tensor): { base: number; scheme: number; coding: number } {
  return tidy(() => {
    const one = x.narrow(0, 0, 1); // [1, k, ...]
    const k = one.shape[1];
    const baseMacs = countMacs(() => base.forward(one.flatten(0, 1))).macs / k;
    if (s.kind === 'replication') return { base: baseMacs, scheme: baseMacs * s.n, coding: 0 };
    const enc = countMacs(() => s.code.encode(one));
    const work = countMacs(() => enc.result.map((q) => runQuery(s.workers, q)));
    const dec = countMacs(() => s.code.decode(work.result));
    return { base: baseMacs, scheme: enc.macs + work.macs + dec.macs, coding: enc.macs + dec.macs };
  });
}

// ---------------------------------------------------------------------------
// reporting

const pct = (v: number) => `${(100 * v).toFixed(2)}%`;
const num = (v: number) =>
  Math.abs(v) >= 1e6 ? `${(v / 1e6).toFixed(2)} M` : Math.abs(v) >= 1e3 ? `${(v / 1e3).toFixed(1)} k` : v.toFixed(0);
const us = (v: number | null) => (v === null ? '—' : v.toFixed(1));

export interface ComparisonSection {
  k: number;
  n: number;
  results: SchemeResult[];
}

/** One markdown table per (K, N): a row per scheme, accuracy by straggler count, recovery, cost and timing. */
export function formatComparison(sections: readonly ComparisonSection[], header = ''): string {
  const lines: string[] = header ? [header, ''] : [];
  for (const sec of sections) {
    const smax = sec.n - sec.k;
    lines.push(`### K = ${sec.k}, N = ${sec.n}`);
    lines.push('');
    const base = sec.results[0];
    if (base)
      lines.push(
        `${base.samples} test samples in ${base.groups} groups of ${sec.k}; base accuracy ${pct(base.baseAccuracy)}; F: ${num(base.baseMacsPerQuery)} MACs per query.`,
      );
    lines.push('');
    const sCols = Array.from({ length: smax + 1 }, (_, s) => `acc. s=${s}`);
    lines.push(
      `| scheme | k | n | ${sCols.join(' | ')} | recovery (s=1..${smax}) | workers/query | extra MACs/query | coding MACs/query | encode µs/group | decode µs/group |`,
    );
    lines.push(`|---|---|---|${sCols.map(() => '---|').join('')}---|---|---|---|---|---|`);
    for (const r of sec.results) {
      const late = r.byStragglers.filter((b) => b.stragglers >= 1);
      const rec = late.length ? late.reduce((a, b) => a + b.recovery, 0) / late.length : NaN;
      lines.push(
        `| ${r.label} | ${r.k} | ${r.n} | ${r.byStragglers.map((b) => pct(b.accuracy) + (b.defaulted > 0 ? ` (${pct(b.defaulted)} def.)` : '')).join(' | ')} | ${Number.isNaN(rec) ? '—' : pct(rec)} | ${r.workersPerQuery.toFixed(2)} | ${num(r.extraMacsPerQuery)} | ${num(r.codingMacsPerQuery)} | ${us(r.encodeUsPerGroup)} | ${us(r.decodeUsPerGroup)} |`,
      );
    }
    lines.push('');
  }
  lines.push(
    's: stragglers (late workers), every pattern of s equally likely; accuracy of all k answers per group; a query that cannot be answered gets the default answer, credited 1/classes ("def." gives their share). Recovery: answer argmax equals the base model\'s, averaged over s = 1..N-K. Extra MACs: beyond one F per query (coding plus extra worker computation); coding MACs: encoding and decoding alone. Times: wall clock in this run, median per group over batches (and patterns).',
  );
  return lines.join('\n');
}

/** Vega-lite: accuracy versus stragglers, a line per scheme, a panel per (K, N). */
export function comparisonSpec(
  sections: readonly ComparisonSection[],
  title = 'Accuracy of the k answers by number of stragglers',
): Record<string, unknown> {
  const values = sections.flatMap((sec) =>
    sec.results.flatMap((r) =>
      r.byStragglers.map((b) => ({
        config: `K=${sec.k}, N=${sec.n}`,
        scheme: r.label,
        stragglers: b.stragglers,
        accuracy: 100 * b.accuracy,
      })),
    ),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
    title,
    background: 'white',
    data: { values },
    facet: { field: 'config', type: 'nominal', title: null, sort: sections.map((s) => `K=${s.k}, N=${s.n}`) },
    columns: Math.min(3, sections.length),
    spec: {
      width: 220,
      height: 160,
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'stragglers', type: 'quantitative', title: 'stragglers', axis: { tickMinStep: 1 } },
        y: { field: 'accuracy', type: 'quantitative', title: 'accuracy (%)', scale: { zero: false } },
        color: { field: 'scheme', type: 'nominal', title: null, legend: { orient: 'bottom', columns: 4, labelLimit: 400 } },
      },
    },
  };
}
