// `coded bench serve`: the serving latency experiment (see src/bench/serving-experiment.ts for how it
// runs: instance processes with stragglers, one frontend process per mode at equal
// resources, one open-loop Poisson schedule replayed through each in interleaved rounds).
// Writes JSON, a markdown table and SVG/PNG plots (latency CDF tail, percentile bars), with
// the planner's prediction of every mode next to the measurement. Also times the frontend's
// encode + decode of one coding group.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { parse, intOption, numberOption, UsageError } from '../args.js';
import { dispatchOption, paddingOption, singletonOption, stragglersFrom, parseModes, onOff, transportOption } from '../serving-options.js';
import { Rng } from '../../data/rng.js';
import { runServingExperiment, checkStragglers, SERVING_MODES, type ExperimentSpec } from '../../bench/serving-experiment.js';
import { predictExperiment } from '../../bench/predict.js';
import { ratios, busyWarning, serveMarkdown, modelShapes, plots, timeCoding, describeCoding } from '../../bench/serve.js';
import { DEFAULT_COPY_BUDGET } from '../../serve/policy.js';

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
  --network RATE_MBIT[:PAIRS[:MIN_MB:MAX_MB[:UPLINK_MBIT]]][,gso]
                     each instance in its own network namespace behind a RATE_MBIT link (veth +
                     tc), with PAIRS background bulk transfers (default 4, of 16-64 MB; 0: none)
                     between random pairs of instances, as in ParM (needs root and iproute2); an
                     UPLINK_MBIT above RATE_MBIT makes the transfers congest the receivers'
                     downlinks (a full queue of 1000 packets, or their bytes with ,gso) instead
                     of the senders' own queues;
                     ,gso lets GSO super-packets through (queues of the same byte size), for
                     Gbit links a machine cannot shape packet by packet (the log line on
                     background transfers says what rate they reached)
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
  --padding answered|repeat  coded: a partial group is padded with queries already answered,
                     whose outputs are known, so no padding request goes out (answered,
                     default), or with copies of its own queries, computed like any query (repeat)
  --copy-budget X    hedged / fallback copies per query at most (default 0.1; 'none': no limit)
  --dispatch D       every mode's frontends: single-queue (the first free instance takes the
                     next task; default), round-robin, or fastest-free (the free instance that
                     has been fastest lately)
  --slow-log MS      keep the frontends' story of every measured query answered MS ms or more
                     after arrival (its requests: instance, created / started / finished times):
                     serve.json's modes[].slowQueries (the 50 slowest), the slowest in serve.md
  --probe N          service-time probe requests to a fault-free instance (default 500; 0: no
                     probe and no prediction)
  --transport T      how the load generator reaches the frontends and they reach the
                     instances: rest (default: V2 REST with binary tensors over HTTP/1.1
                     keep-alive, the cheaper in CPU per request) or grpc (V2 gRPC)
  --seed S           schedule and fault seeds (default 1)
  --out DIR          output directory (default bench-results/serve)
  --json             print the JSON report on stdout`;

export async function serveBenchMain(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      model: { type: 'string' },
      device: { type: 'string' },
      modes: { type: 'string' },
      base: { type: 'string' },
      parity: { type: 'string' },
      code: { type: 'string' },
      k: { type: 'string' },
      r: { type: 'string' },
      rate: { type: 'string' },
      queries: { type: 'string' },
      warmup: { type: 'string' },
      'slow-prob': { type: 'string' },
      'slow-ms': { type: 'string' },
      'slow-periods': { type: 'string' },
      'latency-trace': { type: 'string' },
      slo: { type: 'string' },
      rounds: { type: 'string' },
      deadline: { type: 'string' },
      hedge: { type: 'string' },
      fallback: { type: 'string' },
      'parity-delay': { type: 'string' },
      'slow-log': { type: 'string' },
      'max-wait': { type: 'string' },
      'background-cpu': { type: 'string' },
      network: { type: 'string' },
      concurrency: { type: 'string' },
      probe: { type: 'string' },
      frontends: { type: 'string' },
      'copy-budget': { type: 'string' },
      singleton: { type: 'string' },
      padding: { type: 'string' },
      dispatch: { type: 'string' },
      seed: { type: 'string' },
      transport: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
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

  // the instances' input and output shapes, from one started for the purpose
  const shapes = await modelShapes(model, device);
  const info = shapes.input;
  const per = info.reduce((a, b) => a * b, 1);
  const coding = await timeCoding(family, k, r, shapes.input, shapes.output);
  log(describeCoding(coding));
  const rng = new Rng(seed + 7);
  const inputs = Array.from({ length: 64 }, () => Float32Array.from({ length: per }, () => rng.float()));
  const spec: ExperimentSpec = {
    baseArgs: ['--model', model, '--device', device, '--name', 'model'],
    baseModel: 'model',
    parityArgs: () => ['--model', model, '--device', device, '--name', 'model'],
    parityModel: () => 'model',
    parityIsBase: true,
    code: { family, k, r },
    parityPools: r,
    base: B,
    parity: P,
    modes,
    stragglers,
    sloMs: numberOption(values.slo, 'slo', 1000),
    decodeDeadlineMs: deadline,
    hedgeMs: numberOption(values.hedge, 'hedge', deadline),
    fallback: onOff(values.fallback, 'fallback', true),
    parityDelayMs: parityDelay,
    ...(values['slow-log'] !== undefined ? { slowQueryLogMs: numberOption(values['slow-log'], 'slow-log', 0) } : {}),
    maxWaitMs: numberOption(values['max-wait'], 'max-wait', 5),
    concurrency: intOption(values.concurrency, 'concurrency', 1),
    rate,
    queries: intOption(values.queries, 'queries', 10000),
    warmup: intOption(values.warmup, 'warmup', 500, { min: 0 }),
    rounds: intOption(values.rounds, 'rounds', 5),
    seed,
    transport: transportOption(values.transport, 'rest'),
    input: (i) => inputs[i % inputs.length],
    shape: info,
    probe: intOption(values.probe, 'probe', 500, { min: 0 }),
    log,
    frontends: intOption(values.frontends, 'frontends', 1, { min: 1 }),
    ...(values.singleton !== undefined ? { singletonGroups: singletonOption(values.singleton) } : {}),
    ...(values.padding !== undefined ? { padding: paddingOption(values.padding) } : {}),
    ...(values.dispatch !== undefined ? { dispatch: dispatchOption(values.dispatch) } : {}),
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
  const rows = result.modes.map((m) => ({
    ...m,
    predictedMs: predicted?.get(m.mode)?.latencyMs ?? null,
    predictedRequestsPerQuery: predicted?.get(m.mode)?.requestsPerQuery ?? null,
  }));
  const comparisons = ratios(result.modes);
  const report = {
    benchmark: 'serve',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?' },
    settings: {
      model,
      device,
      base: B,
      parity: P,
      code: family,
      k,
      r,
      rate,
      queries: spec.queries,
      warmup: spec.warmup,
      rounds: spec.rounds,
      stragglers,
      sloMs: spec.sloMs,
      decodeDeadlineMs: deadline,
      hedgeMs: spec.hedgeMs,
      fallback: spec.fallback,
      parityDelayMs: parityDelay,
      maxWaitMs: spec.maxWaitMs,
      instanceConcurrency: spec.concurrency,
      frontends: spec.frontends,
      copyBudget: spec.copyBudget,
      singletonGroups: spec.singletonGroups ?? 'pad',
      padding: spec.padding ?? 'answered',
      dispatch: spec.dispatch ?? 'single-queue',
      seed,
      transport: spec.transport,
    },
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
