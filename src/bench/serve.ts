// `coded bench serve`: the serving latency experiment. Starts model instances as processes
// (every one, base and parity alike, delays a fraction of its requests: stragglers), then for
// each mode starts a frontend process over the same instances at equal resources and replays
// one precomputed open-loop Poisson schedule through it. Latency is measured from each
// query's *intended* send time (no coordinated omission) into HDR histograms. Writes JSON,
// a markdown table and SVG/PNG plots (latency CDF tail, percentile bars). Also times the
// frontend's encode + decode of one coding group.
import { mkdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { tmpdir, cpus } from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { parse, intOption, numberOption, UsageError } from '../cli/args.js';
import { startInstanceProcess, type ChildInstance } from '../serve/processes.js';
import { V2GrpcClient, type ClientResult } from '../serve/client.js';
import { packageRoot } from '../serve/v2.js';
import { Rng } from '../data/rng.js';
import { poissonSchedule } from './arrivals.js';

export { poissonSchedule };
import type { FrontendConfig } from '../serve/config.js';

export const usage = `coded bench serve [options]

Open-loop Poisson load through the coded-serving frontend, modes compared at equal resources
in one run. Instances: B base + P parity processes (the parity pool runs the same model: with
the default noop model, F(P) is exact for the linear/addition code).
  --model M          instance model (default noop:1000; or linear:D:C, or a base checkpoint)
  --device D         where instances compute: cpu (default) or cuda
  --modes LIST       comma list of coded, equal-resources, replication, none
                     (default coded,equal-resources,replication,none)
  --base B           base instances for coded / none (default 4)
  --parity P         parity instances for coded (default 2); equal-resources and
                     replication use B + P base replicas
  --code FAMILY      code family for coded (default addition), --k K (default 2), r = 1
  --rate QPS         mean arrival rate (default 300)
  --queries N        measured queries per mode (default 10000), after --warmup W (default 500)
  --slow-prob P      per-request straggler probability on every instance (default 0.01)
  --slow-ms MS       straggler delay (default 100)
  --slo MS           frontend SLO (default 1000); --deadline MS decode deadline (default 10)
  --background-cpu N[:DUTY]
                     N background processes that burn CPU in bursts (busy DUTY of every 10 ms,
                     default 0.5) while the measured rounds run: interference from co-located
                     jobs, as on shared hosts (default none)
  --parity-delay MS  coded mode: send a group's parity queries MS after it closed, and none
                     if its originals are all back by then (a hedge; default 0: at once)
  --concurrency N    requests in flight per instance (default 1: pull when idle)
  --rounds R         the measured queries run in R interleaved rounds of all modes (default 5)
  --seed S           schedule and fault seeds (default 1)
  --out DIR          output directory (default bench-results/serve)
  --json             print the JSON report on stdout`;

interface ModeResult {
  mode: string;
  config: string;
  queries: number;
  errors: number;
  rejected: number;
  reconstructed: number;
  defaults: number;
  achievedRate: number;
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  cdf: { latencyMs: number; percentile: number }[];
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function startFrontendProcess(configPath: string): Promise<{ proc: ChildProcess; grpc: number; stop: () => Promise<void> }> {
  const main = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
  // one OpenMP thread: idle OpenMP workers spinning in the frontend starve everything else on a small CPU
  const proc = spawn(process.execPath, [main, 'serve', 'frontend', '--config', configPath], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1' } });
  let err = '';
  proc.stderr!.on('data', (d: Buffer) => {
    if (err.length < 8192) err += d.toString();
  });
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      try {
        const m = JSON.parse(line) as { event?: string; grpc?: number };
        if (m.event === 'listening') resolve({ proc, grpc: m.grpc!, stop });
        else if (process.env.CODED_DEBUG) process.stderr.write(line + '\n');
      } catch {
        // pino log lines are JSON too; ignore the rest
      }
    });
    proc.once('exit', (code) => reject(new Error(`frontend exited (${code}) before listening: ${err}`)));
  });
}

export interface Stats {
  h: ReturnType<typeof hdr.build>;
  errors: number;
  rejected: number;
  reconstructed: number;
  defaults: number;
  measured: number;
  spanMs: number;
}

/**
 * Replay a schedule against a frontend; latency from intended send time, in microseconds, into `st` (unless warm-up).
 * Query i sends inputs[i % inputs.length]; `onResult(i, r)` (measured queries only) sees each answer.
 */
export async function replay(client: V2GrpcClient, name: string, schedule: Float64Array, st: Stats | null, inputs: Float32Array[], shape: number[], timeoutMs: number, onResult?: (i: number, r: ClientResult) => void): Promise<void> {
  let done = 0;
  const n = schedule.length;
  let next = 0;
  const start = performance.now() + 20;
  let finish: () => void = () => {};
  const all = new Promise<void>((r) => (finish = r));
  const send = (i: number) => {
    const intended = start + schedule[i];
    client.infer(name, 'input', inputs[i % inputs.length], [1, ...shape], timeoutMs).then(
      (r) => {
        if (st === null) return;
        st.h.recordValue(Math.max(1, Math.round((performance.now() - intended) * 1000)));
        if (r.parameters.reconstructed === true) st.reconstructed++;
        if (r.parameters.default === true) st.defaults++;
        onResult?.(i, r);
      },
      (e: { code?: number }) => {
        if (st === null) return;
        if (e.code === 8) st.rejected++;
        else st.errors++;
      },
    ).finally(() => {
      if (++done === n) finish();
    });
  };
  const tick = () => {
    const now = performance.now();
    while (next < n && start + schedule[next] <= now) send(next++);
    if (next < n) {
      const wait = start + schedule[next] - performance.now();
      if (wait > 1) setTimeout(tick, Math.min(wait - 0.5, 50));
      else setImmediate(tick);
    }
  };
  setTimeout(tick, 20);
  await all;
  if (st !== null) {
    st.measured += n;
    st.spanMs += schedule[n - 1];
  }
}

export function summarize(st: Stats) {
  const h = st.h;
  const p = (q: number) => h.getValueAtPercentile(q) / 1000;
  const cdf: { latencyMs: number; percentile: number }[] = [];
  for (const q of [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97, 98, 99, 99.3, 99.5, 99.7, 99.8, 99.9, 99.95, 99.99, 100]) cdf.push({ percentile: q, latencyMs: p(q) });
  return { latencyMs: { p50: p(50), p90: p(90), p99: p(99), p999: p(99.9), max: h.maxValue / 1000, mean: h.mean / 1000 }, cdf, achievedRate: st.measured / (st.spanMs / 1000) };
}

/** Time the frontend's encode + decode path for one coding group of 1000-value outputs. */
async function timeCoding(family: string, k: number, size: number): Promise<{ code: string; encodeUs: number; decodeUs: number; totalUs: number }> {
  await import('../codes/index.js');
  const { codeFromConfig } = await import('../codes/registry.js');
  const { tensor } = await import('../engine/tensor.js');
  const { tidy } = await import('../engine/scope.js');
  const { setNumThreads } = await import('../engine/runtime.js');
  setNumThreads(1);
  const code = codeFromConfig({ family, k, r: 1 });
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

export function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

async function render(spec: Record<string, unknown>, svgPath: string, pngPath: string): Promise<void> {
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

interface Background {
  processes: number;
  duty: number;
}

function parseBackground(v: string | undefined): Background {
  if (v === undefined) return { processes: 0, duty: 0 };
  const m = /^(\d+)(?::([0-9.]+))?$/.exec(v);
  const processes = m === null ? NaN : Number(m[1]);
  const duty = m?.[2] === undefined ? 0.5 : Number(m[2]);
  if (!Number.isInteger(processes) || !(duty > 0 && duty <= 1)) throw new UsageError(`--background-cpu must be N or N:DUTY with DUTY in (0, 1], got '${v}'`);
  return { processes, duty };
}

/** Child processes that keep a CPU busy `duty` of every 10 ms (killed by the caller). */
function startBackgroundLoad(b: Background): ChildProcess[] {
  const busy = Math.round(10 * b.duty * 1000) / 1000;
  const script = `const busy=${busy},idle=${10 - busy};function burst(){const t=performance.now();while(performance.now()-t<busy){}setTimeout(burst,idle)}burst()`;
  return Array.from({ length: b.processes }, () => spawn(process.execPath, ['-e', script], { stdio: 'ignore' }));
}

export async function serveBenchMain(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      model: { type: 'string' }, device: { type: 'string' }, modes: { type: 'string' }, base: { type: 'string' }, parity: { type: 'string' }, code: { type: 'string' }, k: { type: 'string' },
      rate: { type: 'string' }, queries: { type: 'string' }, warmup: { type: 'string' }, 'slow-prob': { type: 'string' }, 'slow-ms': { type: 'string' },
      slo: { type: 'string' }, rounds: { type: 'string' }, deadline: { type: 'string' }, 'parity-delay': { type: 'string' }, 'background-cpu': { type: 'string' }, concurrency: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' }, json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const modes = (values.modes ?? 'coded,equal-resources,replication,none').split(',') as FrontendConfig['mode'][];
  for (const m of modes) if (!['coded', 'equal-resources', 'replication', 'none'].includes(m)) throw new UsageError(`unknown mode '${m}'\n\n${usage}`);
  const model = values.model ?? 'noop:1000';
  const device = values.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') throw new UsageError(`--device must be cpu or cuda, got '${device}'`);
  const B = intOption(values.base, 'base', 4);
  const P = intOption(values.parity, 'parity', 2);
  const k = intOption(values.k, 'k', 2);
  const family = values.code ?? 'addition';
  const rate = numberOption(values.rate, 'rate', 300);
  const N = intOption(values.queries, 'queries', 10000);
  const warmup = intOption(values.warmup, 'warmup', 500, { min: 0 });
  const slowProb = numberOption(values['slow-prob'], 'slow-prob', 0.01);
  const slowMs = numberOption(values['slow-ms'], 'slow-ms', 100);
  const slo = numberOption(values.slo, 'slo', 1000);
  const deadline = numberOption(values.deadline, 'deadline', 10);
  const parityDelay = numberOption(values['parity-delay'], 'parity-delay', 0);
  if (!(parityDelay >= 0)) throw new UsageError(`--parity-delay must be >= 0 ms, got ${values['parity-delay']}`);
  const conc = intOption(values.concurrency, 'concurrency', 1);
  const background = parseBackground(values['background-cpu']);
  const seed = intOption(values.seed, 'seed', 1, { min: 0 });
  const outDir = values.out ?? 'bench-results/serve';
  if (rate <= 0) throw new UsageError('--rate must be > 0');
  const log = (s: string) => process.stderr.write(s + '\n');

  const coding = await timeCoding(family, k, 1000);
  log(`encode + decode of one ${coding.code} group of 1000-value outputs: ${fmt(coding.encodeUs)} + ${fmt(coding.decodeUs)} us`);

  const tmp = mkdtempSync(join(tmpdir(), 'coded-bench-serve-'));
  const insts: ChildInstance[] = [];
  const results: ModeResult[] = [];
  const bg: ChildProcess[] = [];
  try {
    const faults = ['--slow-prob', String(slowProb), '--slow-ms', String(slowMs)];
    const started = await Promise.all(
      Array.from({ length: B + P }, (_, i) => startInstanceProcess(['--model', model, '--device', device, '--name', 'model', '--seed', String(seed * 100 + i), ...faults])),
    );
    insts.push(...started);
    log(`started ${B} base + ${P} parity instances (${model}; every instance delays ${100 * slowProb}% of requests by ${slowMs} ms)`);
    const baseAddrs = insts.slice(0, B).map((i) => i.address);
    const parityAddrs = insts.slice(B).map((i) => i.address);
    const info = new V2GrpcClient(baseAddrs[0]);
    const meta = await info.modelMetadata('model', 5000);
    info.close();
    const shape = meta.inputs[0].shape.slice(1).map(Number);
    const per = shape.reduce((a, b) => a * b, 1);
    const rng = new Rng(seed + 7);
    const rand = () => rng.float();
    const inputs = Array.from({ length: 64 }, () => Float32Array.from({ length: per }, () => rand()));
    const rounds = intOption(values.rounds, 'rounds', 5);
    const per_round = Math.ceil(N / rounds);
    const fes: { mode: string; desc: string; fe: Awaited<ReturnType<typeof startFrontendProcess>>; client: V2GrpcClient; st: Stats }[] = [];
    try {
      for (const mode of modes) {
        // every instance serves the model under one name: the parity instances can then act as
        // base replicas in the uncoded modes (valid for noop/linear models, whose parity model
        // for the linear/addition code is F itself)
        const common = { name: 'bench', grpcPort: 0, sloMs: slo, decodeDeadlineMs: deadline, maxWaitMs: 5, instanceConcurrency: conc, logLevel: 'warn' as const, maxPendingQueries: 100000, maxPoolQueue: 100000, health: { intervalMs: 1000 } };
        let cfg: FrontendConfig;
        let desc: string;
        if (mode === 'coded') {
          cfg = { ...common, mode, code: { family, k, r: 1 }, parityDelayMs: parityDelay, pools: { base: { model: 'model', instances: baseAddrs }, parity: [{ model: 'model', instances: parityAddrs }] } };
          desc = `${B} base + ${P} parity, ${family} k=${k}${parityDelay > 0 ? `, parity after ${parityDelay} ms` : ''}`;
        } else if (mode === 'none') {
          cfg = { ...common, mode, pools: { base: { model: 'model', instances: baseAddrs } } };
          desc = `${B} base`;
        } else {
          cfg = { ...common, mode, pools: { base: { model: 'model', instances: [...baseAddrs, ...parityAddrs] } } };
          desc = `${B + P} base replicas${mode === 'replication' ? ', 2 copies per query' : ''}`;
        }
        const path = join(tmp, `${mode}.json`);
        writeFileSync(path, JSON.stringify(cfg));
        const fe = await startFrontendProcess(path);
        const st: Stats = { h: hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 }), errors: 0, rejected: 0, reconstructed: 0, defaults: 0, measured: 0, spanMs: 0 };
        fes.push({ mode, desc, fe, client: new V2GrpcClient(`127.0.0.1:${fe.grpc}`), st });
      }
      // warm-up, then interleaved rounds: a noisy shared CPU affects every mode alike
      for (const f of fes) await replay(f.client, 'bench', poissonSchedule(warmup, rate, seed + 1000), null, inputs, shape, slo * 4);
      if (background.processes > 0) {
        bg.push(...startBackgroundLoad(background));
        log(`background load: ${background.processes} process(es) busy ${Math.round(100 * background.duty)}% of every 10 ms`);
      }
      for (let r = 0; r < rounds; r++) {
        const schedule = poissonSchedule(per_round, rate, seed + r);
        for (const f of fes) {
          log(`round ${r + 1}/${rounds}: mode ${f.mode} (${f.desc}), ${per_round} queries at ${rate}/s`);
          await replay(f.client, 'bench', schedule, f.st, inputs, shape, slo * 4);
        }
      }
      for (const f of fes) {
        const sm = summarize(f.st);
        results.push({ mode: f.mode, config: f.desc, queries: f.st.measured, errors: f.st.errors, rejected: f.st.rejected, reconstructed: f.st.reconstructed, defaults: f.st.defaults, achievedRate: sm.achievedRate, latencyMs: sm.latencyMs, cdf: sm.cdf });
        const l = sm.latencyMs;
        log(`${f.mode}: p50 ${fmt(l.p50)} ms, p99 ${fmt(l.p99)} ms, p99.9 ${fmt(l.p999)} ms, max ${fmt(l.max)} ms; reconstructed ${f.st.reconstructed}, default ${f.st.defaults}, errors ${f.st.errors}, rejected ${f.st.rejected}`);
      }
    } finally {
      for (const b of bg) b.kill('SIGKILL');
      for (const f of fes) {
        f.client.close();
        f.st.h.destroy();
        await f.fe.stop();
      }
    }
  } finally {
    await Promise.all(insts.map((i) => i.stop('SIGTERM')));
    rmSync(tmp, { recursive: true, force: true });
  }

  const by = (m: string) => results.find((r) => r.mode === m);
  const coded = by('coded');
  const eq = by('equal-resources');
  const none = by('none');
  const comparisons: Record<string, number> = {};
  if (coded && eq) {
    comparisons.codedOverEqualP999 = coded.latencyMs.p999 / eq.latencyMs.p999;
    comparisons.codedOverEqualP50 = coded.latencyMs.p50 / eq.latencyMs.p50;
  }
  if (coded && none) comparisons.codedMinusNoneP50Ms = coded.latencyMs.p50 - none.latencyMs.p50;
  const report = {
    benchmark: 'serve',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?' },
    settings: { rounds: intOption(values.rounds, 'rounds', 5), model, base: B, parity: P, code: family, k, rate, queries: N, warmup, slowProb, slowMs, sloMs: slo, decodeDeadlineMs: deadline, parityDelayMs: parityDelay, backgroundCpu: background, instanceConcurrency: conc, seed },
    coding,
    modes: results,
    comparisons,
  };
  mkdirSync(outDir, { recursive: true });
  writeFileSync(join(outDir, 'serve.json'), JSON.stringify(report, null, 2));
  const md = [
    `# coded bench serve`,
    '',
    `${N} queries per mode (after ${warmup} warm-up), Poisson ${rate}/s, every instance delays ${100 * slowProb}% of requests by ${slowMs} ms; model ${model}; SLO ${slo} ms, decode deadline ${deadline} ms${parityDelay > 0 ? `, parity delay ${parityDelay} ms` : ''}${background.processes > 0 ? `; background load: ${background.processes} process(es) busy ${Math.round(100 * background.duty)}% of the time` : ''}.`,
    '',
    '| mode | instances | p50 ms | p99 ms | p99.9 ms | max ms | reconstructed | default | errors | rejected |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...results.map((r) => `| ${r.mode} | ${r.config} | ${fmt(r.latencyMs.p50)} | ${fmt(r.latencyMs.p99)} | ${fmt(r.latencyMs.p999)} | ${fmt(r.latencyMs.max)} | ${(100 * r.reconstructed / r.queries).toFixed(2)}% | ${(100 * r.defaults / r.queries).toFixed(2)}% | ${r.errors} | ${r.rejected} |`),
    '',
    `Encode + decode of one ${coding.code} group of 1000-value outputs: ${fmt(coding.encodeUs)} + ${fmt(coding.decodeUs)} = ${fmt(coding.totalUs)} us.`,
    ...Object.entries(comparisons).map(([k2, v]) => `- ${k2}: ${v.toFixed(3)}`),
    '',
  ].join('\n');
  writeFileSync(join(outDir, 'serve.md'), md);
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
  log(`wrote ${join(outDir, 'serve.json')}, serve.md, latency-cdf.svg/png, latency-percentiles.svg/png`);
  if (values.json) console.log(JSON.stringify(report));
  else console.log(md);
}
