// `coded demo serve`: the coded-serving demo. On the embedded default (Fashion-MNIST, the
// shipped Base-MLP and its concat k = 2 parity model) it starts model instances as local
// processes on free loopback ports — 4 base + 2 parity for the coded frontend; the same 4 base
// + 2 more base instances for the equal-resources frontends, so every mode uses 6 — every
// instance with the same stragglers, and replays test images under Poisson load through a
// coded frontend, an equal-resources one and an equal-resources one with hedged requests, in
// interleaved rounds (src/bench/serving-experiment.ts, shared with `coded bench serve`). It
// reports accuracy measured live against the true labels (originals, reconstructions,
// overall), p50/p99/p99.9 of each mode with the planner's prediction beside them, the cost
// (instance requests per query) and the coded / X ratios.
//
// Why 4 + 2 and not 2 + 1: with only two base instances, one stall halves the base pool and a
// second one during it blocks every original (the planner shows p99.9 near the stall length
// for 2 + 1 at any rate); ParM's deployments have 12 base instances. 4 + 2 is the smallest
// split where a stalled instance leaves the pool enough capacity, and it still fits 2 cores
// (the instances are idle most of the time at 100 queries/s).
import { cpus } from 'node:os';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { parse, intOption, numberOption, UsageError } from '../args.js';
import { packageRoot } from '../../util/package-root.js';
import type { ClientResult } from '../../serve/client.js';
import { runServingExperiment, checkStragglers, type ExperimentSpec, type ServingModeName } from '../../bench/serving-experiment.js';
import { ratios, busyWarning, markdownTable, tailLines, slowQueryLines, roundLines, frontendLines } from '../../bench/serve.js';
import { parseModes, onOff, paddingOption, stragglersFrom, transportOption } from '../serving-options.js';
import { predictExperiment } from '../../bench/predict.js';

export const usage = `coded demo serve [options]

Coded serving end to end on Fashion-MNIST with the shipped models: 4 base instances
(models/fashion-mnist-base-mlp.safetensors) + 2 parity instances (parity model 0 of
models/fashion-mnist-base-mlp-concat-k2.safetensors) behind a coded frontend (the
checkpoint's code, with the fallback), against equal resources: 6 base instances behind a
plain frontend and behind one that hedges late requests. Every instance has the same
stragglers. Test images are replayed under open-loop Poisson load through every frontend
(interleaved rounds); prints live accuracy against the true labels, p50/p99/p99.9 of each
mode with the planner's prediction, instance requests per query, and coded / X ratios
(< 1: coded is faster). All processes run on loopback and are stopped on exit, error or Ctrl-C.

Options:
  --queries N      measured queries per frontend (default 4000)
  --rate QPS       mean Poisson arrival rate (default 100)
  --base B         base instances (default 4); --parity P parity instances (default 2)
  --modes LIST     coded,equal-resources,equal-resources-hedged (default), also replication, none
  --slow-prob P    independent stalls: per-request probability on every instance (default 0.02)
  --slow-ms MS     stall length (default 100)
  --slow-periods S time-correlated slow periods ON_MS:OFF_MS:FACTOR[:ADD_MS] (e.g. 300:15000:1:60;
                   combine with --slow-prob 0 for correlated slowdowns only)
  --latency-trace F  replay a latency trace (ms per request) on every instance
  --background-cpu N[:DUTY]  N co-located processes burning CPU DUTY of every 10 ms
  --network RATE_MBIT[:PAIRS[:MIN_MB:MAX_MB[:UPLINK_MBIT]]][,gso]  each instance behind a rate-limited
                   link in its own network namespace, with background bulk transfers between
                   instances (root); see coded bench serve --help
  --deadline MS    decode deadline: an original later than this may be reconstructed (default 10)
  --slo MS         latency objective: a query still unanswered after MS gets the default answer
                   (default 1000)
  --hedge MS       equal-resources-hedged re-issues a query running longer than MS (default: --deadline)
  --fallback on|off  coded: re-issue late originals whose group cannot decode (default on)
  --parity-delay MS  hedged parity: a group's parity query goes out MS ms after the group
                   closed, and only if an original is still missing (default 5; 0: at once, as
                   ParM). With 5 ms only the few groups with an original still out get parity
                   work (about 14% extra requests instead of 75%), which keeps the coded
                   frontend's median with equal resources' on 2 shared cores, and 5 ms plus the
                   parity model's ~3 ms still lands before the 10 ms decode deadline
  --padding answered|repeat  coded: a partial coding group is padded with queries already
                   answered, whose outputs are known (answered, default: no padding request),
                   or with copies of its own queries, computed like any query (repeat)
  --rounds R       interleaved rounds of all frontends (default 4)
  --slow-log MS    keep the frontends' story of every query answered MS ms or more after
                   arrival (its requests: instance, created / started / finished times) in the
                   --json report's modes[].slowQueries (the 50 slowest) and print the slowest
  --warmup W       unmeasured queries per frontend first (default 200)
  --transport T    how the load generator reaches the frontends and they reach the instances:
                   rest (default: V2 REST, binary tensors over HTTP/1.1 keep-alive; about a
                   third of a gRPC call's CPU per request in Node) or grpc (V2 gRPC)
  --seed S         schedule and fault seeds (default 1)
  --data-dir DIR   where datasets live (default $CODED_DATA or ~/.cache/coded)
  --json           print one JSON object instead of text
  -h, --help`;

interface Tally {
  queries: number;
  correct: number;
  originals: number;
  originalsCorrect: number;
  reconstructed: number;
  reconstructedCorrect: number;
  defaults: number;
  defaultsCorrect: number;
}

const newTally = (): Tally => ({
  queries: 0,
  correct: 0,
  originals: 0,
  originalsCorrect: 0,
  reconstructed: 0,
  reconstructedCorrect: 0,
  defaults: 0,
  defaultsCorrect: 0,
});

function argmax(a: Float32Array): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

export async function demoServe(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      queries: { type: 'string' },
      rate: { type: 'string' },
      base: { type: 'string' },
      parity: { type: 'string' },
      modes: { type: 'string' },
      'slow-prob': { type: 'string' },
      'slow-ms': { type: 'string' },
      'slow-periods': { type: 'string' },
      'latency-trace': { type: 'string' },
      'background-cpu': { type: 'string' },
      network: { type: 'string' },
      deadline: { type: 'string' },
      slo: { type: 'string' },
      hedge: { type: 'string' },
      fallback: { type: 'string' },
      'parity-delay': { type: 'string' },
      padding: { type: 'string' },
      'slow-log': { type: 'string' },
      rounds: { type: 'string' },
      warmup: { type: 'string' },
      seed: { type: 'string' },
      transport: { type: 'string' },
      'data-dir': { type: 'string' },
      json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const N = intOption(values.queries, 'queries', 4000);
  const rate = numberOption(values.rate, 'rate', 100);
  if (!(rate > 0)) throw new UsageError('--rate must be > 0');
  const deadline = numberOption(values.deadline, 'deadline', 10);
  if (!(deadline >= 0)) throw new UsageError('--deadline must be >= 0');
  const sloMs = numberOption(values.slo, 'slo', 1000);
  if (!(sloMs > 0)) throw new UsageError('--slo must be > 0 (milliseconds)');
  const parityDelay = numberOption(values['parity-delay'], 'parity-delay', 5);
  if (!(parityDelay >= 0)) throw new UsageError('--parity-delay must be >= 0 (milliseconds)');
  const stragglers = stragglersFrom(values, 0.02);
  try {
    checkStragglers(stragglers);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const json = values.json ?? false;
  const log = (s: string) => process.stderr.write(s + '\n');

  const root = packageRoot();
  const basePath = join(root, 'models', 'fashion-mnist-base-mlp.safetensors');
  const parityPath = join(root, 'models', 'fashion-mnist-base-mlp-concat-k2.safetensors');
  for (const p of [basePath, parityPath]) if (!existsSync(p)) throw new Error(`${p} is missing (shipped with the package)`);

  // the code config of the parity checkpoint (the coded frontend uses exactly this code)
  const { loadCodeCheckpoint } = await import('../../codes/checkpoint.js');
  const pc = loadCodeCheckpoint(parityPath, { base: false, parity: 'required' });
  const codeConfig = pc.code.config() as NonNullable<ExperimentSpec['code']>;
  const codeName = pc.code.name;
  pc.dispose();

  // test images and labels, as plain arrays
  const { loadTestSet, disposeTestSet } = await import('../../data/registry.js');
  const ds = await loadTestSet('fashion-mnist', { dataDir: values['data-dir'] });
  const per = 28 * 28;
  const all = ds.test.images.contiguous().dataFloat32();
  const labels = Array.from(ds.test.labels.data() as BigInt64Array, Number);
  const nTest = ds.test.size;
  disposeTestSet(ds);
  const image = (i: number) => all.subarray((i % nTest) * per, ((i % nTest) + 1) * per);

  const modes = parseModes(values.modes, ['coded', 'equal-resources', 'equal-resources-hedged']);
  const tallies = new Map<ServingModeName, Tally>(modes.map((m) => [m, newTally()]));
  const spec: ExperimentSpec = {
    baseArgs: ['--model', basePath, '--name', 'base'],
    baseModel: 'base',
    parityArgs: () => ['--model', parityPath, '--parity-index', '0', '--name', 'parity'],
    parityModel: () => 'parity',
    parityIsBase: false,
    code: codeConfig,
    parityPools: 1,
    base: intOption(values.base, 'base', 4),
    parity: intOption(values.parity, 'parity', 2),
    modes,
    stragglers,
    sloMs,
    decodeDeadlineMs: deadline,
    hedgeMs: numberOption(values.hedge, 'hedge', deadline),
    fallback: onOff(values.fallback, 'fallback', true),
    parityDelayMs: parityDelay,
    ...(values.padding !== undefined ? { padding: paddingOption(values.padding) } : {}),
    ...(values['slow-log'] !== undefined ? { slowQueryLogMs: numberOption(values['slow-log'], 'slow-log', 0) } : {}),
    maxWaitMs: 5,
    concurrency: 1,
    rate,
    queries: N,
    warmup: intOption(values.warmup, 'warmup', 200, { min: 0 }),
    rounds: intOption(values.rounds, 'rounds', 4),
    seed: intOption(values.seed, 'seed', 1, { min: 0 }),
    transport: transportOption(values.transport, 'rest'),
    input: image,
    shape: [1, 28, 28],
    probe: 500,
    log,
    onResult: (mode, i, res: ClientResult) => {
      const t = tallies.get(mode)!;
      const ok = argmax(res.data) === labels[i % nTest];
      t.queries++;
      if (ok) t.correct++;
      if (res.parameters.default === true) {
        t.defaults++;
        if (ok) t.defaultsCorrect++;
      } else if (res.parameters.reconstructed === true) {
        t.reconstructed++;
        if (ok) t.reconstructedCorrect++;
      } else {
        t.originals++;
        if (ok) t.originalsCorrect++;
      }
    },
  };
  let result;
  try {
    result = await runServingExperiment(spec);
  } catch (e) {
    if (/must be|bad slow periods|latency trace/.test((e as Error).message)) throw new UsageError((e as Error).message);
    throw e;
  }
  const predicted = predictExperiment(spec, result.serviceTimesUnderLoadMs, result.frontendOverheadMs);
  const ratio = (a: number, b: number) => (b > 0 ? a / b : null);
  const rows = result.modes.map((m) => {
    const t = tallies.get(m.mode)!;
    return {
      ...m,
      predictedMs: predicted?.get(m.mode)?.latencyMs ?? null,
      accuracy: {
        overall: ratio(t.correct, t.queries),
        originals: { count: t.originals, accuracy: ratio(t.originalsCorrect, t.originals) },
        reconstructed: { count: t.reconstructed, accuracy: ratio(t.reconstructedCorrect, t.reconstructed) },
        defaults: { count: t.defaults, accuracy: ratio(t.defaultsCorrect, t.defaults) },
      },
    };
  });
  const comparison = ratios(result.modes);
  const warning = busyWarning(result.otherCpuShare);
  const report = {
    demo: 'serve',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?' },
    settings: {
      dataset: 'fashion-mnist',
      base: 'models/fashion-mnist-base-mlp.safetensors',
      parity: 'models/fashion-mnist-base-mlp-concat-k2.safetensors',
      code: codeConfig,
      baseInstances: spec.base,
      parityInstances: spec.parity,
      queries: N,
      rate,
      stragglers,
      sloMs: spec.sloMs,
      decodeDeadlineMs: deadline,
      hedgeMs: spec.hedgeMs,
      fallback: spec.fallback,
      parityDelayMs: parityDelay,
      padding: spec.padding ?? 'answered',
      rounds: spec.rounds,
      warmup: spec.warmup,
      seed: spec.seed,
      transport: spec.transport,
    },
    stragglers: result.stragglers,
    otherCpuShare: result.otherCpuShare,
    warning,
    frontendOverheadMs: result.frontendOverheadMs,
    serviceTimesMs: {
      p50: result.serviceTimesMs[Math.floor(result.serviceTimesMs.length / 2)] ?? null,
      p99: result.serviceTimesMs[Math.floor(result.serviceTimesMs.length * 0.99)] ?? null,
    },
    serviceTimesUnderLoadMs: {
      p50: result.serviceTimesUnderLoadMs[Math.floor(result.serviceTimesUnderLoadMs.length / 2)] ?? null,
      p99: result.serviceTimesUnderLoadMs[Math.floor(result.serviceTimesUnderLoadMs.length * 0.99)] ?? null,
    },
    modes: rows.map(({ cdf: _cdf, ...r }) => r),
    comparison,
    seconds: result.seconds,
  };
  if (json) console.log(JSON.stringify(report));
  else {
    const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(2)}%`);
    const lines = [
      `coded serving demo: Fashion-MNIST test images, ${N} queries per frontend, Poisson ${rate}/s; stragglers: ${result.stragglers}; code ${codeName}; decode deadline ${deadline} ms, ${parityDelay === 0 ? 'parity sent at once' : `parity hedged after ${parityDelay} ms`}, SLO ${spec.sloMs} ms`,
      '',
      '| frontend | overall acc | originals (acc) | reconstructed (acc) |',
      '|---|---|---|---|',
      ...rows.map(
        (r) =>
          `| ${r.mode} | ${pct(r.accuracy.overall)} | ${r.accuracy.originals.count} (${pct(r.accuracy.originals.accuracy)}) | ${r.accuracy.reconstructed.count} (${pct(r.accuracy.reconstructed.accuracy)}) |`,
      ),
      '',
      markdownTable(rows),
      '',
      ...tailLines(rows),
      ...roundLines(rows),
      ...frontendLines(rows),
      ...slowQueryLines(rows),
      `coded / X latency ratios (< 1: coded is faster): ${Object.entries(comparison)
        .map(([m, c]) => `vs ${m}: p50 ${c.p50.toFixed(2)}x, p99 ${c.p99.toFixed(2)}x, p99.9 ${c.p999.toFixed(2)}x`)
        .join('; ')}  (${result.seconds.toFixed(0)} s)`,
      ...(warning !== null ? ['', warning] : []),
    ];
    console.log(lines.join('\n'));
  }
  if (warning !== null) log(warning);
}
