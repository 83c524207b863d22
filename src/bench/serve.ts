// `coded bench serve`: the serving latency experiment (see ./serving-experiment.ts for how it
// runs: instance processes with stragglers, one frontend process per mode at equal
// resources, one open-loop Poisson schedule replayed through each in interleaved rounds).
// Writes JSON, a markdown table and SVG/PNG plots (latency CDF tail, percentile bars), with
// the planner's prediction of every mode next to the measurement. Also times the frontend's
// encode + decode of one coding group.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parse, intOption, numberOption, UsageError } from '../cli/args.js';
import { V2GrpcClient } from '../serve/client.js';
import { Rng } from '../data/rng.js';
import { poissonSchedule } from '../serve/load-generator.js';
import { runServingExperiment, checkStragglers, parseNetwork, fmt, SERVING_MODES, type ServingModeName, type ExperimentSpec, type Stragglers } from './serving-experiment.js';
import { predictExperiment } from './predict.js';
import { DEFAULT_COPY_BUDGET } from '../serve/policy.js';

export { poissonSchedule, fmt };

export const usage = `coded bench serve [options]

Open-loop Poisson load through the coded-serving frontend, modes compared at equal resources
in one run. Instances: B base + P parity processes (the parity pools run the same model: with
the default noop model, F(P) is exact for the linear/addition code). Ratios printed as
"coded / X" are < 1 when coded is faster.
  --model M          instance model (default noop:1000; or linear:D:C, a base checkpoint, or
                     random:NAME:SHAPE:CLASSES where supported)
  --device D         where instances compute: cpu (default) or cuda
  --modes LIST       comma list of ${SERVING_MODES.join(', ')}
                     (default coded,equal-resources,equal-resources-hedged,replication)
  --base B           base instances for coded / none (default 4)
  --parity P         parity instances for coded (default 2), split over the r parity pools;
                     the uncoded modes use B + P base replicas
  --code FAMILY      code family for coded (default addition; linear for r > 1), --k K (default 2),
                     --r R parity queries per group (default 1)
  --rate QPS         mean arrival rate (default 300)
  --queries N        measured queries per mode (default 10000), after --warmup W (default 500)
Stragglers (every instance; combine freely):
  --slow-prob P      independent stalls: probability a request is delayed (default 0.01)
  --slow-ms MS       ... by MS (default 100)
  --slow-periods S   time-correlated slow periods ON_MS:OFF_MS:FACTOR[:ADD_MS]: an instance is
                     slow for ~ON_MS every ~ON_MS+OFF_MS (exponential), compute x FACTOR and
                     +ADD_MS per request while slow (e.g. 300:15000:1:60)
  --latency-trace F  replay a latency trace (ms per request, one per line or a JSON array)
  --background-cpu N[:DUTY]
                     N co-located processes burning CPU DUTY of every 10 ms (default 0.5)
  --network RATE_MBIT[:PAIRS[:MIN_MB:MAX_MB]]
                     each instance in its own network namespace behind a RATE_MBIT link (veth +
                     tc), with PAIRS background bulk transfers (default 4, of 16-64 MB) between
                     random pairs of instances, as in ParM (needs root and iproute2)
Policy:
  --slo MS           frontend SLO (default 1000); --deadline MS decode deadline (default 10)
  --hedge MS         equal-resources-hedged: re-issue a query still running after MS (default:
                     the decode deadline)
  --fallback on|off  coded: re-issue late originals whose group cannot decode (default on)
  --parity-delay MS  coded: send a group's parity queries MS after it closed, and none if its
                     originals are all back by then (default 0: at once)
  --max-wait MS      a partial coding group closes after MS (default 5)
  --concurrency N    requests in flight per instance (default 1: pull when idle)
Run:
  --rounds R         the measured queries run in R interleaved rounds of all modes (default 5)
  --frontends N      frontend processes per mode (default 1), each owning 1/N of every pool's
                     instances; queries are spread over them in turn (as behind a load
                     balancer): for inputs so large that one frontend process saturates
  --singleton pad|copy  coded: a group closing with one query is padded and encoded (pad,
                     default) or sent alone with a fallback copy after the deadline (copy)
  --copy-budget X    hedged / fallback copies per query at most (default 0.1; 'none': no limit)
  --probe N          service-time probe requests to a fault-free instance (default 500; 0: no
                     probe and no prediction)
  --seed S           schedule and fault seeds (default 1)
  --out DIR          output directory (default bench-results/serve)
  --json             print the JSON report on stdout`;


function singletonOption(v: string): 'pad' | 'copy' {
  if (v !== 'pad' && v !== 'copy') throw new UsageError(`--singleton must be 'pad' or 'copy', not '${v}'`);
  return v;
}

export function parseBackground(v: string | undefined): Stragglers['backgroundCpu'] {
  if (v === undefined) return undefined;
  const m = /^(\d+)(?::([0-9.]+))?$/.exec(v);
  const processes = m === null ? NaN : Number(m[1]);
  const duty = m?.[2] === undefined ? 0.5 : Number(m[2]);
  if (!Number.isInteger(processes) || !(duty > 0 && duty <= 1)) throw new UsageError(`--background-cpu must be N or N:DUTY with DUTY in (0, 1], got '${v}'`);
  return { processes, duty };
}

export function parseNetworkOption(v: string) {
  try {
    return parseNetwork(v);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The straggler options every serving experiment takes (--slow-prob, --slow-ms, --slow-periods, --latency-trace, --background-cpu, --network). */
export function stragglersFrom(values: Record<string, string | boolean | undefined>, defaultSlowProb: number): Stragglers {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const slowPeriods = str('slow-periods');
  const latencyTrace = str('latency-trace');
  const backgroundCpu = str('background-cpu');
  const network = str('network');
  return {
    slowProb: numberOption(str('slow-prob'), 'slow-prob', defaultSlowProb), slowMs: numberOption(str('slow-ms'), 'slow-ms', 100),
    ...(slowPeriods !== undefined ? { slowPeriods } : {}),
    ...(latencyTrace !== undefined ? { latencyTrace } : {}),
    ...(backgroundCpu !== undefined ? { backgroundCpu: parseBackground(backgroundCpu) } : {}),
    ...(network !== undefined ? { network: parseNetworkOption(network) } : {}),
  };
}

export function parseModes(v: string | undefined, fallback: ServingModeName[]): ServingModeName[] {
  if (v === undefined) return fallback;
  const modes = v.split(',').map((m) => m.trim()) as ServingModeName[];
  for (const m of modes) if (!SERVING_MODES.includes(m)) throw new UsageError(`unknown mode '${m}': use ${SERVING_MODES.join(', ')}`);
  return modes;
}

export function onOff(v: string | undefined, name: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (v === 'on' || v === 'true') return true;
  if (v === 'off' || v === 'false') return false;
  throw new UsageError(`--${name} must be on or off, got '${v}'`);
}

/** "coded / X" ratios of p50, p99, p99.9 for every other mode measured. */
export function ratios(modes: { mode: string; latencyMs: { p50: number; p99: number; p999: number } }[]): Record<string, { p50: number; p99: number; p999: number }> {
  const coded = modes.find((m) => m.mode === 'coded');
  const out: Record<string, { p50: number; p99: number; p999: number }> = {};
  if (coded === undefined) return out;
  for (const m of modes) {
    if (m.mode === 'coded') continue;
    out[m.mode] = { p50: coded.latencyMs.p50 / m.latencyMs.p50, p99: coded.latencyMs.p99 / m.latencyMs.p99, p999: coded.latencyMs.p999 / m.latencyMs.p999 };
  }
  return out;
}

export function busyWarning(share: number | null): string | null {
  if (share === null || share < 0.15) return null;
  return `WARNING: other processes used ${Math.round(100 * share)}% of the CPUs during the measured rounds: latencies include their interference; rerun on a quiet machine to compare modes`;
}

export async function serveBenchMain(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      model: { type: 'string' }, device: { type: 'string' }, modes: { type: 'string' }, base: { type: 'string' }, parity: { type: 'string' }, code: { type: 'string' }, k: { type: 'string' }, r: { type: 'string' },
      rate: { type: 'string' }, queries: { type: 'string' }, warmup: { type: 'string' }, 'slow-prob': { type: 'string' }, 'slow-ms': { type: 'string' }, 'slow-periods': { type: 'string' }, 'latency-trace': { type: 'string' },
      slo: { type: 'string' }, rounds: { type: 'string' }, deadline: { type: 'string' }, hedge: { type: 'string' }, fallback: { type: 'string' }, 'parity-delay': { type: 'string' }, 'max-wait': { type: 'string' },
      'background-cpu': { type: 'string' }, network: { type: 'string' }, concurrency: { type: 'string' }, probe: { type: 'string' }, frontends: { type: 'string' }, 'copy-budget': { type: 'string' }, singleton: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const modes = parseModes(values.modes, ['coded', 'equal-resources', 'equal-resources-hedged', 'replication']);
  const model = values.model ?? 'noop:1000';
  const device = values.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') throw new UsageError(`--device must be cpu or cuda, got '${device}'`);
  const B = intOption(values.base, 'base', 4);
  const P = intOption(values.parity, 'parity', 2);
  const k = intOption(values.k, 'k', 2);
  const r = intOption(values.r, 'r', 1);
  const family = values.code ?? (r > 1 ? 'linear' : 'addition');
  if (modes.includes('coded') && P < r) throw new UsageError(`--parity ${P} is fewer than the r = ${r} parity pools`);
  const rate = numberOption(values.rate, 'rate', 300);
  if (!(rate > 0)) throw new UsageError('--rate must be > 0');
  const deadline = numberOption(values.deadline, 'deadline', 10);
  const stragglers = stragglersFrom(values, 0.01);
  try {
    checkStragglers(stragglers);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const parityDelay = numberOption(values['parity-delay'], 'parity-delay', 0);
  if (!(parityDelay >= 0)) throw new UsageError(`--parity-delay must be >= 0 ms, got ${values['parity-delay']}`);
  const seed = intOption(values.seed, 'seed', 1, { min: 0 });
  const outDir = values.out ?? 'bench-results/serve';
  const log = (s: string) => process.stderr.write(s + '\n');

  const coding = await timeCoding(family, k, r, 1000);
  log(`encode + decode of one ${coding.code} group of 1000-value outputs: ${fmt(coding.encodeUs)} + ${fmt(coding.decodeUs)} us`);

  // the instances' input shape, from one started for the purpose is overkill: ask the model spec
  const info = await modelShape(model, device);
  const per = info.reduce((a, b) => a * b, 1);
  const rng = new Rng(seed + 7);
  const inputs = Array.from({ length: 64 }, () => Float32Array.from({ length: per }, () => rng.float()));
  const spec: ExperimentSpec = {
    baseArgs: ['--model', model, '--device', device, '--name', 'model'], baseModel: 'model',
    parityArgs: () => ['--model', model, '--device', device, '--name', 'model'], parityModel: () => 'model', parityIsBase: true,
    code: { family, k, r }, parityPools: r, base: B, parity: P, modes, stragglers,
    sloMs: numberOption(values.slo, 'slo', 1000), decodeDeadlineMs: deadline, hedgeMs: numberOption(values.hedge, 'hedge', deadline),
    fallback: onOff(values.fallback, 'fallback', true), parityDelayMs: parityDelay, maxWaitMs: numberOption(values['max-wait'], 'max-wait', 5),
    concurrency: intOption(values.concurrency, 'concurrency', 1), rate, queries: intOption(values.queries, 'queries', 10000),
    warmup: intOption(values.warmup, 'warmup', 500, { min: 0 }), rounds: intOption(values.rounds, 'rounds', 5), seed,
    input: (i) => inputs[i % inputs.length], shape: info, probe: intOption(values.probe, 'probe', 500, { min: 0 }), log,
    frontends: intOption(values.frontends, 'frontends', 1, { min: 1 }),
    ...(values.singleton !== undefined ? { singletonGroups: singletonOption(values.singleton) } : {}),
    copyBudget: values['copy-budget'] === 'none' ? null : numberOption(values['copy-budget'], 'copy-budget', DEFAULT_COPY_BUDGET),
  };
  let result;
  try {
    result = await runServingExperiment(spec);
  } catch (e) {
    if (/must be|bad slow periods|latency trace/.test((e as Error).message)) throw new UsageError((e as Error).message);
    throw e;
  }
  const predicted = predictExperiment(spec, result.serviceTimesUnderLoadMs, result.frontendOverheadMs);
  const warning = busyWarning(result.otherCpuShare);
  if (warning !== null) log(warning);
  const rows = result.modes.map((m) => ({ ...m, predictedMs: predicted?.get(m.mode)?.latencyMs ?? null, predictedRequestsPerQuery: predicted?.get(m.mode)?.requestsPerQuery ?? null }));
  const comparisons = ratios(result.modes);
  const report = {
    benchmark: 'serve',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?' },
    settings: { model, device, base: B, parity: P, code: family, k, r, rate, queries: spec.queries, warmup: spec.warmup, rounds: spec.rounds, stragglers, sloMs: spec.sloMs, decodeDeadlineMs: deadline, hedgeMs: spec.hedgeMs, fallback: spec.fallback, parityDelayMs: parityDelay, maxWaitMs: spec.maxWaitMs, instanceConcurrency: spec.concurrency, frontends: spec.frontends, copyBudget: spec.copyBudget, singletonGroups: spec.singletonGroups ?? 'pad', seed },
    stragglers: result.stragglers,
    otherCpuShare: result.otherCpuShare,
    warning,
    coding,
    transfers: result.transfers,
    frontendOverheadMs: result.frontendOverheadMs,
    serviceTimesMs: result.serviceTimesMs,
    serviceTimesUnderLoadMs: result.serviceTimesUnderLoadMs,
    modes: rows,
    comparisons,
    seconds: result.seconds,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'serve.json'), JSON.stringify(report, null, 2));
  const md = serveMarkdown(report);
  writeFileSync(join(outDir, 'serve.md'), md);
  await plots(result.modes, outDir);
  log(`wrote ${join(outDir, 'serve.json')}, serve.md, latency-cdf.svg/png, latency-percentiles.svg/png`);
  if (values.json) console.log(JSON.stringify(report));
  else console.log(md);
}

export interface ServeReport {
  settings: { model: string; device: string; rate: number; queries: number; warmup: number; sloMs: number; decodeDeadlineMs: number; parityDelayMs: number; stragglers: Stragglers };
  stragglers: string;
  warning: string | null;
  coding: { code: string; encodeUs: number; decodeUs: number; totalUs: number };
  frontendOverheadMs: number;
  modes: (Parameters<typeof markdownTable>[0][number] & { lateNotDefault?: number; sendLagMs?: { p99: number; max: number } })[];
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
    `Ratios coded / X (< 1: coded is faster): ${Object.entries(r.comparisons).map(([m, c]) => `${m} p50 ${c.p50.toFixed(2)}, p99 ${c.p99.toFixed(2)}, p99.9 ${c.p999.toFixed(2)}`).join('; ')}.`,
    `Encode + decode of one ${r.coding.code} group of 1000-value outputs: ${fmt(r.coding.encodeUs)} + ${fmt(r.coding.decodeUs)} = ${fmt(r.coding.totalUs)} us.`,
    ...(predicted ? [`Predicted: the planner's simulation of each mode (same policy code, service times measured during the rounds plus the measured frontend hop of ${fmt(r.frontendOverheadMs)} ms${st.stragglers.backgroundCpu ? '; background CPU load is not modelled' : ''}${st.stragglers.network ? '; network interference is not modelled' : ''}).`] : []),
    // why a latency above the SLO need not be a default: the SLO starts when the frontend reads the query
    ...(late.length > 0
      ? [`Latency is measured from each query's intended send time; the frontend counts its SLO from when it reads the query. ${late.map((m) => `${m.mode}: ${m.lateNotDefault} answers came more than ${st.sloMs} ms after their intended send time without being defaults (the load generator sent p99 ${fmt(m.sendLagMs?.p99 ?? 0)} ms, at most ${fmt(m.sendLagMs?.max ?? 0)} ms late)`).join('; ')}: the rest of that time the queries waited before the frontend read them or after it answered (its event loop or the machine saturated), which no SLO timer inside it can see.`]
      : []),
    '',
  ].join('\n');
}

export function markdownTable(rows: { mode: string; config: string; queries: number; latencyMs: { p50: number; p99: number; p999: number; max: number }; predictedMs: { p50: number; p99: number; p999: number } | null; requestsPerQuery: number; reconstructed: number; answeredByCopy: number; defaults: number; lost: number; duplicates: number; rejected: number }[]): string {
  const pct = (n: number, d: number) => `${(100 * n / Math.max(1, d)).toFixed(2)}%`;
  const pred = (r: (typeof rows)[number]) => (r.predictedMs === null ? '-' : `${fmt(r.predictedMs.p50)} / ${fmt(r.predictedMs.p99)} / ${fmt(r.predictedMs.p999)}`);
  return [
    '| mode | instances | p50 ms | p99 ms | p99.9 ms | predicted p50 / p99 / p99.9 | requests per query | reconstructed | answered by a copy | default | lost | duplicated | rejected |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.mode} | ${r.config} | ${fmt(r.latencyMs.p50)} | ${fmt(r.latencyMs.p99)} | ${fmt(r.latencyMs.p999)} | ${pred(r)} | ${r.requestsPerQuery.toFixed(2)} | ${pct(r.reconstructed, r.queries)} | ${pct(r.answeredByCopy, r.queries)} | ${pct(r.defaults, r.queries)} | ${r.lost} | ${r.duplicates} | ${r.rejected} |`),
  ].join('\n');
}

/** The per-sample input shape of an instance model spec, from a short-lived instance. */
async function modelShape(model: string, device: string): Promise<number[]> {
  const { startInstanceProcess } = await import('../serve/processes.js');
  const inst = await startInstanceProcess(['--model', model, '--device', device, '--name', 'model'], { timeoutMs: 120000 });
  const c = new V2GrpcClient(inst.address);
  try {
    const meta = await c.modelMetadata('model', 10000);
    return meta.inputs[0].shape.slice(1).map(Number);
  } finally {
    c.close();
    await inst.stop('SIGTERM');
  }
}

async function plots(results: { mode: string; latencyMs: { p50: number; p99: number; p999: number }; cdf: { latencyMs: number; percentile: number }[] }[], outDir: string): Promise<void> {
  const cdfRows = results.flatMap((r) => r.cdf.map((c) => ({ mode: r.mode, latencyMs: Math.max(0.01, c.latencyMs), tail: Math.max(1e-4, (100 - c.percentile) / 100) })));
  await render(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title: 'Latency tail (1 - CDF)', width: 420, height: 280, data: { values: cdfRows },
      mark: { type: 'line', point: true },
      encoding: { x: { field: 'latencyMs', type: 'quantitative', scale: { type: 'log' }, title: 'latency (ms)' }, y: { field: 'tail', type: 'quantitative', scale: { type: 'log' }, title: 'fraction of queries slower' }, color: { field: 'mode', type: 'nominal' } },
    },
    join(outDir, 'latency-cdf.svg'), join(outDir, 'latency-cdf.png'),
  );
  const barRows = results.flatMap((r) => (['p50', 'p99', 'p999'] as const).map((q) => ({ mode: r.mode, percentile: q === 'p999' ? 'p99.9' : q, latencyMs: r.latencyMs[q] })));
  await render(
    {
      $schema: 'https://vega.github.io/schema/vega-lite/v5.json', title: 'Latency percentiles by mode', width: 120, height: 240, data: { values: barRows },
      mark: 'bar',
      encoding: { column: { field: 'percentile', type: 'nominal' }, x: { field: 'mode', type: 'nominal' }, y: { field: 'latencyMs', type: 'quantitative', title: 'latency (ms)' }, color: { field: 'mode', type: 'nominal' } },
      resolve: { scale: { y: 'independent' } },
    },
    join(outDir, 'latency-percentiles.svg'), join(outDir, 'latency-percentiles.png'),
  );
}

/** Time the frontend's encode + decode path for one coding group of 1000-value outputs. */
async function timeCoding(family: string, k: number, r: number, size: number): Promise<{ code: string; encodeUs: number; decodeUs: number; totalUs: number }> {
  await import('../codes/index.js');
  const { codeFromConfig } = await import('../codes/registry.js');
  const { tensor } = await import('../engine/tensor.js');
  const { tidy } = await import('../engine/scope.js');
  const { setNumThreads } = await import('../engine/runtime.js');
  setNumThreads(1);
  const code = codeFromConfig({ family, k, r });
  const x = Float32Array.from({ length: k * size }, (_, i) => Math.sin(i));
  const outs: (Float32Array | null)[] = Array.from({ length: code.n }, (_, i) => Float32Array.from({ length: size }, (_, j) => Math.cos(i + j)));
  outs[0] = null;
  const iters = 3000;
  const enc = () => tidy(() => code.encode(tensor(x, [1, k, size])).map((q) => q.inputs[0].contiguous().dataFloat32()));
  const dec = () => tidy(() => code.decode(outs.map((o) => (o === null ? null : tensor(o, [1, size])))).outputs.map((t) => t.contiguous().dataFloat32()));
  for (let i = 0; i < 300; i++) {
    enc();
    dec();
  }
  let t0 = performance.now();
  for (let i = 0; i < iters; i++) enc();
  const encodeUs = ((performance.now() - t0) * 1000) / iters;
  t0 = performance.now();
  for (let i = 0; i < iters; i++) dec();
  const decodeUs = ((performance.now() - t0) * 1000) / iters;
  return { code: code.name, encodeUs, decodeUs, totalUs: encodeUs + decodeUs };
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

