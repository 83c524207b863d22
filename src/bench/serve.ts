// The serving benchmark's report (`coded bench serve`, whose options are read in
// src/cli/commands/bench-serve.ts; the experiment itself runs in ./serving-experiment.ts):
// the markdown table and summary, the coded / X ratios, the latency plots (SVG/PNG), the
// frontend's encode + decode time for one coding group, and the instances' input shape.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { V2GrpcClient } from '../serve/client.js';
import { poissonSchedule } from '../serve/load-generator.js';
import type { SlowQueryStory } from '../serve/policy.js';
import { fmt, describeTail, type TailComposition } from '../serve/load-generator.js';
import { describeFrontendHealth, type FrontendHealth, type RoundLatency, type Stragglers } from './serving-experiment.js';

export { poissonSchedule, fmt };

/** "coded / X" ratios of p50, p99, p99.9 for every other mode measured. */
export function ratios(
  modes: { mode: string; latencyMs: { p50: number; p99: number; p999: number } }[],
): Record<string, { p50: number; p99: number; p999: number }> {
  const coded = modes.find((m) => m.mode === 'coded');
  const out: Record<string, { p50: number; p99: number; p999: number }> = {};
  if (coded === undefined) return out;
  for (const m of modes) {
    if (m.mode === 'coded') continue;
    out[m.mode] = {
      p50: coded.latencyMs.p50 / m.latencyMs.p50,
      p99: coded.latencyMs.p99 / m.latencyMs.p99,
      p999: coded.latencyMs.p999 / m.latencyMs.p999,
    };
  }
  return out;
}

export function busyWarning(share: number | null): string | null {
  if (share === null || share < 0.15) return null;
  return `WARNING: other processes used ${Math.round(100 * share)}% of the CPUs during the measured rounds: latencies include their interference; rerun on a quiet machine to compare modes`;
}

export interface ServeReport {
  settings: {
    model: string;
    device: string;
    rate: number;
    queries: number;
    warmup: number;
    sloMs: number;
    decodeDeadlineMs: number;
    parityDelayMs: number;
    stragglers: Stragglers;
  };
  stragglers: string;
  warning: string | null;
  /** shapes absent in reports written before they were recorded (timed on 1000-value vectors) */
  coding: ReportedCodingTime;
  frontendOverheadMs: number;
  modes: (Parameters<typeof markdownTable>[0][number] & {
    lateNotDefault?: number;
    sendLagMs?: { p99: number; max: number };
    rounds?: RoundLatency[];
    frontend?: FrontendHealth;
  })[];
  comparisons: Record<string, { p50: number; p99: number; p999: number }>;
}

/** serve.md: the settings, the table, the ratios and notes, in sentences (no raw JSON keys). */
export function serveMarkdown(r: ServeReport): string {
  const st = r.settings;
  const predicted = r.modes.some((m) => m.predictedMs !== null);
  const late = r.modes.filter((m) => (m.lateNotDefault ?? 0) > 0);
  return [
    `# coded bench serve`,
    '',
    `${st.queries} queries per mode (after ${st.warmup} warm-up), Poisson ${st.rate}/s; model ${st.model} on ${st.device}; stragglers: ${r.stragglers}; SLO ${st.sloMs} ms, decode deadline ${st.decodeDeadlineMs} ms${st.parityDelayMs > 0 ? `, parity delay ${st.parityDelayMs} ms` : ''}.`,
    ...(r.warning !== null ? ['', `**${r.warning}**`] : []),
    '',
    markdownTable(r.modes),
    '',
    `Ratios coded / X (< 1: coded is faster): ${Object.entries(r.comparisons)
      .map(([m, c]) => `${m} p50 ${c.p50.toFixed(2)}, p99 ${c.p99.toFixed(2)}, p99.9 ${c.p999.toFixed(2)}`)
      .join('; ')}.`,
    `${describeCoding(r.coding)}.`,
    ...tailLines(r.modes),
    ...roundLines(r.modes),
    ...frontendLines(r.modes),
    ...slowQueryLines(r.modes),
    ...(predicted
      ? [
          `Predicted: the planner's simulation of each mode (same policy code, service times measured during the rounds plus the measured frontend hop of ${fmt(r.frontendOverheadMs)} ms${st.stragglers.backgroundCpu ? '; background CPU load is not modelled' : ''}${st.stragglers.network ? '; network interference is not modelled' : ''}).`,
        ]
      : []),
    // why a latency above the SLO need not be a default: the SLO starts when the frontend reads the query
    ...(late.length > 0
      ? [
          `Latency is measured from each query's intended send time; the frontend counts its SLO from when it reads the query. ${late.map((m) => `${m.mode}: ${m.lateNotDefault} answers came more than ${st.sloMs} ms after their intended send time without being defaults (the load generator sent p99 ${fmt(m.sendLagMs?.p99 ?? 0)} ms, at most ${fmt(m.sendLagMs?.max ?? 0)} ms late)`).join('; ')}: the rest of that time the queries waited before the frontend read them or after it answered (its event loop or the machine saturated), which no SLO timer inside it can see.`,
        ]
      : []),
    '',
  ].join('\n');
}

/** The slowest query of each mode as its frontend told it (with --slow-log). */
export function slowQueryLines(modes: { mode: string; slowQueries?: { count: number; slowest: SlowQueryStory[] } }[]): string[] {
  const with_ = modes.filter((m) => m.slowQueries !== undefined);
  if (with_.length === 0) return [];
  const t = (x: number | null) => (x === null ? '-' : fmt(x));
  return [
    "Slow queries (the frontends' log; times in ms after the query arrived: created / started / finished):",
    ...with_.map((m) => {
      const s = m.slowQueries!;
      const q = s.slowest[0];
      if (q === undefined) return `- ${m.mode}: none`;
      const tasks = q.tasks
        .map(
          (k) =>
            `${k.role} on ${k.instance ?? '(not started)'} ${t(k.createdMs)} / ${t(k.startedMs)} / ${t(k.finishedMs)}${k.cancelled ? ' (cancelled)' : ''}`,
        )
        .join('; ');
      return `- ${m.mode}: ${s.count} slow; the slowest ${fmt(q.latencyMs)} ms, ${q.outcome}${q.byCopy ? ' by a copy' : ''}${q.groupSize > 0 ? `, group of ${q.groupSize}` : ''}${q.paddedWithAnswered > 0 ? ` padded with ${q.paddedWithAnswered} answered` : ''}${q.copyDenied === true ? ', its copy refused by the copy budget' : ''}: ${tasks}`;
    }),
  ];
}

/** Each mode's rounds on their own, when there were several: a tail made by one round's episode shows as one high p99.9. */
export function roundLines(modes: { mode: string; rounds?: RoundLatency[] }[]): string[] {
  const with_ = modes.filter((m) => m.rounds !== undefined && m.rounds.length > 1);
  if (with_.length === 0) return [];
  return [
    'Each round on its own, p99.9 (max) in ms:',
    ...with_.map(
      (m) => `- ${m.mode}: ${m.rounds!.map((r) => (r.answers === 0 ? 'no answers' : `${fmt(r.p999)} (${fmt(r.max)})`)).join(' / ')}.`,
    ),
  ];
}

/** The frontend processes' health over the measured rounds: a stalled event loop or long garbage collections delay every query they hold. */
export function frontendLines(modes: { mode: string; frontend?: FrontendHealth }[]): string[] {
  const with_ = modes.filter((m) => m.frontend !== undefined);
  if (with_.length === 0) return [];
  return ['The frontend processes over the measured rounds:', ...with_.map((m) => `- ${m.mode}: ${describeFrontendHealth(m.frontend!)}.`)];
}

/** What the slowest answers of each mode were (originals, reconstructions, copies, defaults). */
export function tailLines(
  modes: { mode: string; tail?: { p99: TailComposition & { fromMs: number }; p999: TailComposition & { fromMs: number } } }[],
): string[] {
  const with_ = modes.filter((m) => m.tail !== undefined);
  if (with_.length === 0) return [];
  return [
    'The tail, by how each answer was made:',
    ...with_.map((m) => `- ${m.mode}: ${describeTail(m.tail!.p99, 'p99')}; ${describeTail(m.tail!.p999, 'p99.9')}.`),
  ];
}

export function markdownTable(
  rows: {
    mode: string;
    config: string;
    queries: number;
    latencyMs: { p50: number; p99: number; p999: number; max: number };
    predictedMs: { p50: number; p99: number; p999: number } | null;
    requestsPerQuery: number;
    reconstructed: number;
    answeredByCopy: number;
    defaults: number;
    lost: number;
    duplicates: number;
    rejected: number;
  }[],
): string {
  const pct = (n: number, d: number) => `${((100 * n) / Math.max(1, d)).toFixed(2)}%`;
  const pred = (r: (typeof rows)[number]) =>
    r.predictedMs === null ? '-' : `${fmt(r.predictedMs.p50)} / ${fmt(r.predictedMs.p99)} / ${fmt(r.predictedMs.p999)}`;
  return [
    '| mode | instances | p50 ms | p99 ms | p99.9 ms | predicted p50 / p99 / p99.9 | requests per query | reconstructed | answered by a copy | default | lost | duplicated | rejected |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map(
      (r) =>
        `| ${r.mode} | ${r.config} | ${fmt(r.latencyMs.p50)} | ${fmt(r.latencyMs.p99)} | ${fmt(r.latencyMs.p999)} | ${pred(r)} | ${r.requestsPerQuery.toFixed(2)} | ${pct(r.reconstructed, r.queries)} | ${pct(r.answeredByCopy, r.queries)} | ${pct(r.defaults, r.queries)} | ${r.lost} | ${r.duplicates} | ${r.rejected} |`,
    ),
  ].join('\n');
}

/** "Encode of one addition(k=2, r=1) group of 3x224x224 inputs: 120 us; decode of its 1000-value outputs: 45.0 us (frontend, CPU)" */
export function describeCoding(c: Omit<ReportedCodingTime, 'totalUs'>): string {
  const input = c.input === undefined ? '1000-value' : c.input.join('x');
  const output = c.output === undefined ? '1000-value' : `${c.output.join('x')}-value`;
  return `Encode of one ${c.code} group of ${input} inputs: ${fmt(c.encodeUs)} us; decode of its ${output} outputs: ${fmt(c.decodeUs)} us (frontend, CPU, one thread)`;
}

/** The per-sample input and output shapes of an instance model spec, from a short-lived instance. */
export async function modelShapes(model: string, device: string): Promise<{ input: number[]; output: number[] }> {
  const { startInstanceProcess } = await import('../serve/processes.js');
  const inst = await startInstanceProcess(['--model', model, '--device', device, '--name', 'model'], { timeoutMs: 120000 });
  const c = new V2GrpcClient(inst.address);
  try {
    const meta = await c.modelMetadata('model', 10000);
    return { input: meta.inputs[0].shape.slice(1).map(Number), output: meta.outputs[0].shape.slice(1).map(Number) };
  } finally {
    c.close();
    await inst.stop('SIGTERM');
  }
}

export async function plots(
  results: { mode: string; latencyMs: { p50: number; p99: number; p999: number }; cdf: { latencyMs: number; percentile: number }[] }[],
  outDir: string,
): Promise<void> {
  const cdfRows = results.flatMap((r) =>
    r.cdf.map((c) => ({ mode: r.mode, latencyMs: Math.max(0.01, c.latencyMs), tail: Math.max(1e-4, (100 - c.percentile) / 100) })),
  );
  await render(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: 'Latency tail (1 - CDF)',
      width: 420,
      height: 280,
      data: { values: cdfRows },
      mark: { type: 'line', point: true },
      encoding: {
        x: { field: 'latencyMs', type: 'quantitative', scale: { type: 'log' }, title: 'latency (ms)' },
        y: { field: 'tail', type: 'quantitative', scale: { type: 'log' }, title: 'fraction of queries slower' },
        color: { field: 'mode', type: 'nominal' },
      },
    },
    join(outDir, 'latency-cdf.svg'),
    join(outDir, 'latency-cdf.png'),
  );
  const barRows = results.flatMap((r) =>
    (['p50', 'p99', 'p999'] as const).map((q) => ({ mode: r.mode, percentile: q === 'p999' ? 'p99.9' : q, latencyMs: r.latencyMs[q] })),
  );
  await render(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
      title: 'Latency percentiles by mode',
      width: 120,
      height: 240,
      data: { values: barRows },
      mark: 'bar',
      encoding: {
        column: { field: 'percentile', type: 'nominal' },
        x: { field: 'mode', type: 'nominal' },
        y: { field: 'latencyMs', type: 'quantitative', title: 'latency (ms)' },
        color: { field: 'mode', type: 'nominal' },
      },
      resolve: { scale: { y: 'independent' } },
    },
    join(outDir, 'latency-percentiles.svg'),
    join(outDir, 'latency-percentiles.png'),
  );
}

export interface CodingTime {
  code: string;
  /** encoding one group's k inputs of `input` shape into its parity queries (us) */
  encodeUs: number;
  /** decoding one group's outputs of `output` shape with one original missing (us) */
  decodeUs: number;
  totalUs: number;
  input: number[];
  output: number[];
}

export type ReportedCodingTime = Omit<CodingTime, 'input' | 'output'> & Partial<Pick<CodingTime, 'input' | 'output'>>;

/** Time the frontend's encode path (its group codec) for one coding group of the model's inputs, and its decode path for the model's outputs. */
export async function timeCoding(family: string, k: number, r: number, input: number[], output: number[]): Promise<CodingTime> {
  await import('../codes/index.js');
  const { codeFromConfig } = await import('../codes/registry.js');
  const { tensorCodec } = await import('../serve/group-codec.js');
  const { setNumThreads } = await import('../engine/runtime.js');
  setNumThreads(1);
  const code = codeFromConfig({ family, k, r });
  // the frontend's own codec: what it does per group (systematic codes: only the parity queries are built)
  const codec = tensorCodec(code, input, output);
  const inSize = input.reduce((a, b) => a * b, 1);
  const outSize = output.reduce((a, b) => a * b, 1);
  const queries = Array.from({ length: k }, (_, q) => Float32Array.from({ length: inSize }, (_, i) => Math.sin(q * inSize + i)));
  const outs: (Float32Array | null)[] = Array.from({ length: code.n }, (_, i) =>
    Float32Array.from({ length: outSize }, (_, j) => Math.cos(i + j)),
  );
  outs[0] = null;
  const enc = () => codec.encode(queries);
  const dec = () => codec.decode(outs);
  // about 0.3 s of each (large inputs take longer per call), after a tenth as many to warm up
  const timeIt = (f: () => unknown): number => {
    const t = performance.now();
    f();
    const once = Math.max(1e-3, performance.now() - t);
    const iters = Math.max(20, Math.min(3000, Math.round(300 / once)));
    for (let i = 0; i < Math.ceil(iters / 10); i++) f();
    const t0 = performance.now();
    for (let i = 0; i < iters; i++) f();
    return ((performance.now() - t0) * 1000) / iters;
  };
  const encodeUs = timeIt(enc);
  const decodeUs = timeIt(dec);
  return { code: code.name, encodeUs, decodeUs, totalUs: encodeUs + decodeUs, input, output };
}

export async function render(spec: Record<string, unknown>, svgPath: string, pngPath: string): Promise<void> {
  const vega = await import('vega');
  const vl = await import('vega-lite');
  const view = new vega.View(vega.parse(vl.compile(spec as never).spec), { renderer: 'none' });
  const svg = await view.toSVG();
  view.finalize();
  mkdirSync(dirname(svgPath), { recursive: true });
  writeFileSync(svgPath, svg);
  const { Resvg } = await import('@resvg/resvg-js');
  writeFileSync(pngPath, new Resvg(svg, { fitTo: { mode: 'zoom', value: 2 }, background: 'white' }).render().asPng());
}
