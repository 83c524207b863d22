// One serving experiment, as `coded bench serve` and `coded demo serve` run it: model instances
// as local processes (every one with the same straggler model), one frontend process per
// serving mode over them at equal resources, and one open-loop Poisson schedule replayed
// through every frontend in interleaved rounds (a noisy shared CPU affects every mode alike).
// Latency is measured from each query's *intended* send time (no coordinated omission). It
// also measures the instances' service time (a fault-free probe instance, at rest and while
// the measured rounds load the machine), reads each
// frontend's counters (copies, instance requests) from its /metrics, watches how much CPU
// other processes took, and predicts every mode with the planner's simulator (the frontend's
// own policy on a virtual clock) from the measured service times, for a side-by-side check.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { spawn, type ChildProcess } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { startInstanceProcess, startFrontendProcess, killOnExit, type ChildInstance } from '../serve/processes.js';

export { startFrontendProcess };
import { V2GrpcClient, type ClientResult } from '../serve/client.js';
import { V2RestClient } from '../serve/rest-client.js';
import type { InferClient } from '../serve/load-generator.js';
import type { FrontendConfig } from '../serve/config.js';
import type { SlowQueryStory } from '../serve/policy.js';
import { parseSlowPeriods, readLatencyTrace, type SlowPeriods } from '../serve/faults.js';
import {
  poissonSchedule,
  replay,
  summarize,
  newStats,
  frontendCounters,
  tailComposition,
  describeTail,
  fmt,
  type Stats,
  type FrontendCounters,
  type TailComposition,
} from '../serve/load-generator.js';
export { fmt };
import { CpuShareWatch } from './cpu-load.js';
import { NetworkLab, type BulkTransfers } from './network-lab.js';

export const SERVING_MODES = ['coded', 'equal-resources', 'equal-resources-hedged', 'replication', 'none'] as const;
export type ServingModeName = (typeof SERVING_MODES)[number];

export interface Stragglers {
  /** independent per-request stalls */
  slowProb: number;
  slowMs: number;
  /** time-correlated slow periods (ON_MS:OFF_MS:FACTOR[:ADD_MS]) */
  slowPeriods?: string;
  /** a latency trace file replayed by every instance */
  latencyTrace?: string;
  /** co-located CPU-burning processes: count and busy share of every 10 ms */
  backgroundCpu?: { processes: number; duty: number };
  /** every instance in its own network namespace behind a rate-limited link, with background bulk transfers between random pairs */
  network?: NetworkInterference;
}

export interface NetworkInterference {
  rateMbit: number;
  /** transfers running at once (0: the links only, no transfers) */
  pairs: number;
  minMB: number;
  maxMB: number;
  /** the hosts' uplink rate (default rateMbit: both ends alike); faster: the receivers' downlinks congest */
  uplinkMbit?: number;
  /** GSO super-packets through the links, byte-sized queues (NetworkLabOptions.gso) */
  gso?: boolean;
}

const NETWORK_FORM = 'RATE_MBIT[:PAIRS[:MIN_MB:MAX_MB[:UPLINK_MBIT]]][,gso]';

/** Parse RATE_MBIT[:PAIRS[:MIN_MB:MAX_MB[:UPLINK_MBIT]]][,gso] (default 4 pairs of 16-64 MB, uplink = RATE_MBIT). */
export function parseNetwork(v: string): NetworkInterference {
  const [spec, ...flags] = v.split(',');
  const n = spec.split(':').map((t) => (t.trim() === '' ? Number.NaN : Number(t)));
  const ok =
    (n.length === 1 || n.length === 2 || n.length === 4 || n.length === 5) &&
    n.every((x) => Number.isFinite(x)) &&
    n.every((x, i) => (i === 1 ? x >= 0 : x > 0)) &&
    (n.length < 2 || Number.isInteger(n[1])) &&
    (n.length < 4 || n[2] <= n[3]) &&
    flags.every((f) => f === 'gso') &&
    flags.length <= 1;
  if (!ok)
    throw new Error(
      `bad --network '${v}': use ${NETWORK_FORM}, e.g. 100:4:16:64 (each instance behind a 100 Mbit link, 4 bulk transfers of 16-64 MB at a time), 100:1:8:32:1000 (100 Mbit downlinks, 1000 Mbit uplinks: transfers congest the receiver's downlink), 1000:0 (the links only, no transfers) or 10000:4:128:256,gso (GSO super-packets and byte-sized queues, for Gbit links a machine cannot shape packet by packet)`,
    );
  return {
    rateMbit: n[0],
    pairs: n[1] ?? 4,
    minMB: n[2] ?? 16,
    maxMB: n[3] ?? 64,
    ...(n.length === 5 ? { uplinkMbit: n[4] } : {}),
    ...(flags.length === 1 ? { gso: true } : {}),
  };
}

export function describeStragglers(s: Stragglers): string {
  const parts: string[] = [];
  if (s.slowProb > 0) parts.push(`independent stalls: ${+(100 * s.slowProb).toFixed(3)}% of requests +${s.slowMs} ms`);
  if (s.slowPeriods !== undefined) {
    const p = parseSlowPeriods(s.slowPeriods);
    parts.push(
      `correlated slow periods: mean ${p.meanOnMs} ms slow every ~${p.meanOffMs + p.meanOnMs} ms, compute x${p.factor}${p.addMs > 0 ? ` +${p.addMs} ms per request` : ''}`,
    );
  }
  if (s.latencyTrace !== undefined) parts.push(`latency trace ${s.latencyTrace}`);
  if (s.network !== undefined)
    parts.push(
      `network: each instance behind a ${s.network.rateMbit} Mbit link${s.network.uplinkMbit !== undefined && s.network.uplinkMbit !== s.network.rateMbit ? ` (uplink ${s.network.uplinkMbit} Mbit)` : ''} (its own namespace${s.network.gso === true ? ', GSO super-packets, byte-sized queues' : ''}), ${s.network.pairs === 0 ? 'no background transfers' : `${s.network.pairs} background bulk transfers of ${s.network.minMB}-${s.network.maxMB} MB between random pairs of instances`}`,
    );
  if (s.backgroundCpu !== undefined && s.backgroundCpu.processes > 0)
    parts.push(`background CPU: ${s.backgroundCpu.processes} process(es) busy ${Math.round(100 * s.backgroundCpu.duty)}% of every 10 ms`);
  return parts.length === 0 ? 'no stragglers injected' : parts.join('; ');
}

function stragglerArgs(s: Stragglers): string[] {
  return [
    '--slow-prob',
    String(s.slowProb),
    '--slow-ms',
    String(s.slowMs),
    ...(s.slowPeriods !== undefined ? ['--slow-periods', s.slowPeriods] : []),
    ...(s.latencyTrace !== undefined ? ['--latency-trace', s.latencyTrace] : []),
  ];
}

export interface ExperimentSpec {
  /**
   * how the load generator reaches the frontends and the frontends reach the instances: V2 gRPC, or V2 REST
   * with binary tensors over HTTP/1.1 keep-alive (default "grpc")
   */
  transport?: 'grpc' | 'rest';
  /** the frontends log queries answered this many ms or more after arrival; the measured rounds' ones are kept in ModeResult.slowQueries */
  slowQueryLogMs?: number;
  /** instance arguments for the base model F (model, name, device ...) */
  baseArgs: string[];
  baseModel: string;
  /** instance arguments for parity pool j's model, and its V2 name */
  parityArgs: (j: number) => string[];
  parityModel: (j: number) => string;
  /** the parity instances compute F itself (noop / linear models): the uncoded modes reuse them as base replicas */
  parityIsBase: boolean;
  /** coded mode's code (a frontend code config) and its parity pools */
  code: NonNullable<FrontendConfig['code']>;
  parityPools: number;
  base: number;
  parity: number;
  modes: ServingModeName[];
  stragglers: Stragglers;
  sloMs: number;
  decodeDeadlineMs: number;
  /** hedged requests' delay for equal-resources-hedged */
  hedgeMs: number;
  fallback: boolean;
  parityDelayMs: number;
  maxWaitMs: number;
  concurrency: number;
  rate: number;
  queries: number;
  warmup: number;
  rounds: number;
  seed: number;
  /** the i-th measured query's input (and the warm-up's), its per-sample shape */
  input: (i: number) => Float32Array;
  shape: number[];
  /** service-time probe requests (0: none, and no prediction) */
  probe: number;
  /**
   * frontend processes per mode (default 1): each owns an equal share of the mode's instances
   * (every base, parity and replica list dealt out in turn) and the load is spread over them
   * in turn, as a load balancer in front of several frontend replicas would
   */
  frontends?: number;
  /** the frontends' copyBudget (undefined: the frontend's default; null: no limit) */
  copyBudget?: number | null;
  /** coded: what a group closing with one query does (the frontend's singletonGroups) */
  singletonGroups?: 'pad' | 'copy';
  /** coded: what pads a partial group (the frontend's padding) */
  padding?: 'answered' | 'repeat';
  /** how every mode's frontends hand tasks to instances (the frontend's dispatch; undefined: its default, single-queue) */
  dispatch?: 'single-queue' | 'round-robin' | 'fastest-free';
  log: (s: string) => void;
  onResult?: (mode: ServingModeName, i: number, r: ClientResult) => void;
}

export interface ModeResult {
  mode: ServingModeName;
  config: string;
  instances: number;
  queries: number;
  errors: number;
  /** what the errors said: message -> count (empty without errors) */
  errorMessages: Record<string, number>;
  rejected: number;
  reconstructed: number;
  defaults: number;
  /** answers that came from a hedged or fallback copy */
  answeredByCopy: number;
  /** queries the client got no answer for (errors other than a refusal) */
  lost: number;
  /** answers the frontend counted beyond one per accepted query (must be 0) */
  duplicates: number;
  copies: number;
  /** requests handed to instances per query (1: no redundancy) */
  requestsPerQuery: number;
  /** queries answered per second (refusals and errors excluded), from the first intended send to the last answer of each round */
  achievedRate: number;
  /** queries sent per second (the schedule's rate) */
  offeredRate: number;
  /** answers later than the SLO from their intended send time that were not defaults (the frontend counts the SLO from when it reads a query) */
  lateNotDefault: number;
  /** how late the load generator sent queries: p99 and max (ms) */
  sendLagMs: { p99: number; max: number };
  latencyMs: { p50: number; p90: number; p99: number; p999: number; max: number; mean: number };
  cdf: { latencyMs: number; percentile: number }[];
  /** how the answers at or above the p99 and the p99.9 were made (see tailComposition) */
  tail?: { p99: TailComposition & { fromMs: number }; p999: TailComposition & { fromMs: number } };
  /** with slowQueryLogMs: the frontends' stories of the measured rounds' slow queries (slowest first, at most SLOW_QUERIES_KEPT) and how many there were */
  slowQueries?: { count: number; slowest: SlowQueryStory[] };
  /** each measured round on its own (a tail made by one round's episode shows here) */
  rounds?: RoundLatency[];
  /** the mode's frontend processes over the measured rounds: their worst event-loop delay, garbage collection, copies the budget refused */
  frontend?: FrontendHealth;
}

export interface RoundLatency {
  answers: number;
  p50: number;
  p99: number;
  p999: number;
  max: number;
}

export interface FrontendHealth {
  /** the worst event-loop delay of any of the mode's frontends (ms) */
  eventLoopLagMaxMs: number;
  gcs: number;
  /** garbage collections that took more than 100 ms */
  gcsOver100ms: number;
  gcSeconds: number;
  /** second copies (hedged or fallback) due but refused by the copy budget */
  copiesDenied: number;
}

/** "frontends: worst event-loop delay 12.0 ms; 340 garbage collections (0 over 100 ms, 0.41 s in all); 0 copies refused by the copy budget" */
export function describeFrontendHealth(h: FrontendHealth): string {
  return `frontends: worst event-loop delay ${fmt(h.eventLoopLagMaxMs)} ms; ${h.gcs} garbage collections (${h.gcsOver100ms} over 100 ms, ${h.gcSeconds.toFixed(2)} s in all); ${h.copiesDenied} copies refused by the copy budget`;
}

/** p50 / p99 / p99.9 / max of some answers' latencies (ms), nearest rank */
export function roundLatency(ms: ArrayLike<number>): RoundLatency {
  const sorted = Float64Array.from(ms).sort();
  const n = sorted.length;
  // nearest rank, as the summary's percentiles (HDR): the p99.9 of 1000 answers is the 999th (1e-9: 0.999 * 1000 > 999 in floating point)
  const at = (p: number) => (n === 0 ? Number.NaN : sorted[Math.min(n - 1, Math.max(0, Math.ceil((p / 100) * n - 1e-9) - 1))]);
  return { answers: n, p50: at(50), p99: at(99), p999: at(99.9), max: n === 0 ? Number.NaN : sorted[n - 1] };
}

/** slow-query stories kept per mode (the slowest) */
export const SLOW_QUERIES_KEPT = 50;

export interface ExperimentResult {
  modes: ModeResult[];
  /** sorted round-trip times (ms) of a fault-free instance at rest */
  serviceTimesMs: number[];
  /** the same instance's round trips during the measured rounds (the machine loaded as the modes load it; what the prediction uses) */
  serviceTimesUnderLoadMs: number[];
  /** median round trip through a frontend at rest minus the instances' median service time: the frontend hop */
  frontendOverheadMs: number;
  /** background transfers completed during the measured rounds (network interference) */
  transfers: { count: number; megabytes: number; failures: number } | null;
  /** share of all CPUs used by other processes during the measured rounds (null: unknown) */
  otherCpuShare: number | null;
  stragglers: string;
  seconds: number;
}

/**
 * Connections the load generator may hold open to one REST frontend: as many as queries can be
 * in flight. An open-loop generator must never hold a query back; with the REST client's usual
 * 256, queries queued inside the generator once 256 were unanswered, where neither the
 * frontend's SLO timers nor its admission control could see them (the H200 pilot of 2026-12-03:
 * 142 queries "lost" to the generator's 4 s timeout behind a 1 s SLO).
 */
export const LOAD_GENERATOR_CONNECTIONS = 8192;

/** The load generator's client for a frontend or instance address on the transport in use. */
export function loadGeneratorClient(address: string, transport: 'grpc' | 'rest' | undefined): V2RestClient | V2GrpcClient {
  return transport === 'rest' ? new V2RestClient(address, { maxSockets: LOAD_GENERATOR_CONNECTIONS }) : new V2GrpcClient(address);
}

/** Shard s of F: every F-th element of xs, starting at s. */
export function shardOf<T>(xs: readonly T[], s: number, F: number): T[] {
  return xs.filter((_, i) => i % F === s);
}

/** What each frontend owns, e.g. "3 base + 2 parity, 3 + 2, 3 + 1, 3 + 1" or "5 base, 5, 4, 4". */
export function shareSizes(
  shards: readonly { pools: { base: { instances: readonly string[] }; parity?: readonly { instances: readonly string[] }[] } }[],
): string {
  const parts = shards.map((c) => {
    const parity = c.pools.parity?.reduce((a, p) => a + p.instances.length, 0);
    return [c.pools.base.instances.length, parity] as const;
  });
  return parts
    .map(([b, p], i) => (i === 0 ? `${b} base${p !== undefined ? ` + ${p} parity` : ''}` : `${b}${p !== undefined ? ` + ${p}` : ''}`))
    .join(', ');
}

/** Child processes that keep a CPU busy `duty` of every 10 ms (killed by the caller). */
export function startBackgroundLoad(processes: number, duty: number): ChildProcess[] {
  const busy = Math.round(10 * duty * 1000) / 1000;
  const script = `const busy=${busy},idle=${10 - busy};function burst(){const t=performance.now();while(performance.now()-t<busy){}setTimeout(burst,idle)}burst()`;
  return Array.from({ length: processes }, () => spawn(process.execPath, ['-e', script], { stdio: 'ignore' }));
}

/** Sequential round trips to a fault-free instance: the service time the planner starts from. */
async function probeServiceTimes(
  c: InferClient & { close(): void },
  model: string,
  input: Float32Array,
  shape: number[],
  n: number,
): Promise<number[]> {
  try {
    for (let i = 0; i < Math.min(50, n); i++) await c.infer(model, 'input', input, [1, ...shape], 10000);
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const t0 = performance.now();
      await c.infer(model, 'input', input, [1, ...shape], 10000);
      out.push(performance.now() - t0);
    }
    return out.sort((a, b) => a - b);
  } finally {
    c.close();
  }
}

/** Validate the straggler options early, with the option's name in the message. */
export function checkStragglers(s: Stragglers): void {
  if (!(s.slowProb >= 0 && s.slowProb <= 1)) throw new Error(`--slow-prob must be in [0, 1], got ${s.slowProb}`);
  if (!(s.slowMs >= 0)) throw new Error(`--slow-ms must be >= 0, got ${s.slowMs}`);
  if (s.slowPeriods !== undefined) parseSlowPeriods(s.slowPeriods);
  if (s.latencyTrace !== undefined) readLatencyTrace(s.latencyTrace);
}

export function slowPeriodsOf(s: Stragglers): SlowPeriods | undefined {
  return s.slowPeriods === undefined ? undefined : parseSlowPeriods(s.slowPeriods);
}

export async function runServingExperiment(x: ExperimentSpec): Promise<ExperimentResult> {
  checkStragglers(x.stragglers);
  const log = x.log;
  const started = performance.now();
  const tmp = mkdtempSync(join(tmpdir(), 'coded-serving-'));
  const insts: ChildInstance[] = [];
  const bg: ChildProcess[] = [];
  const fes: {
    mode: ServingModeName;
    desc: string;
    instances: number;
    fe: Awaited<ReturnType<typeof startFrontendProcess>>[];
    client: (InferClient & { close(): void })[];
    st: Stats;
    before?: FrontendCounters;
    slow: SlowQueryStory[];
    rounds: RoundLatency[];
  }[] = [];
  // slow-query stories count only during the measured rounds
  let measuring = false;
  let lab: NetworkLab | null = null;
  let transfers: BulkTransfers | null = null;
  let transfersSince = 0;
  let transfersFullMbit = 0;
  const { killAll, release } = killOnExit(() => [...insts.map((i) => i.proc), ...fes.flatMap((f) => f.fe.map((e) => e.proc)), ...bg]);
  // Ctrl-C / SIGTERM: every child goes too (the 'exit' hook SIGKILLs what is left)
  const onSignal = (sig: NodeJS.Signals) => {
    log(`\n${sig}: stopping the experiment's processes ...`);
    killAll();
    void lab?.stop().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
    if (lab === null) process.exit(sig === 'SIGINT' ? 130 : 143);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  let probing = false;
  const rest = x.transport === 'rest';
  // an instance's address on the transport in use (its HTTP port for REST), and a client for it
  const addressOf = (i: ChildInstance) => (rest ? i.httpAddress : i.address);
  const clientFor = (address: string) => loadGeneratorClient(address, x.transport);
  try {
    // a busy machine makes every comparison meaningless: say so before spending minutes on it
    const pre = new CpuShareWatch(() => []);
    await new Promise((r) => setTimeout(r, 1000));
    const before = pre.otherShare();
    if (before !== null && before >= 0.25)
      log(
        `WARNING: other processes are using ${Math.round(100 * before)}% of the CPUs right now; latencies measured on a busy machine are not comparable (the report will say how busy it was)`,
      );
    const faults = stragglerArgs(x.stragglers);
    const needExtraBase = !x.parityIsBase && x.modes.some((m) => m !== 'coded' && m !== 'none');
    const specs: { role: 'base' | 'parity' | 'extra' | 'probe'; pool: number; args: string[] }[] = [
      ...Array.from({ length: x.base }, () => ({ role: 'base' as const, pool: 0, args: x.baseArgs })),
      ...Array.from({ length: x.parity }, (_, i) => ({
        role: 'parity' as const,
        pool: i % x.parityPools,
        args: x.parityArgs(i % x.parityPools),
      })),
      ...(needExtraBase ? Array.from({ length: x.parity }, () => ({ role: 'extra' as const, pool: 0, args: x.baseArgs })) : []),
    ];
    const net = x.stragglers.network;
    if (net !== undefined) {
      // one namespace per instance (and one for the probe), TCP cubic like a stock Linux sender
      lab = await NetworkLab.start({
        hosts: specs.length + 1,
        rateMbit: net.rateMbit,
        ...(net.uplinkMbit !== undefined ? { uplinkMbit: net.uplinkMbit } : {}),
        ...(net.gso === true ? { gso: true } : {}),
        congestionControl: 'cubic',
      });
      log(`network lab: ${specs.length + 1} hosts on ${lab.subnet}, links shaped to ${net.rateMbit} Mbit`);
    }
    const where = (i: number) => (lab === null ? {} : { wrap: lab.wrap(i), host: lab.address(i) });
    // all settled first, so a failure still stops the ones that did start
    const settled = await Promise.allSettled([
      ...specs.map((s, i) =>
        startInstanceProcess([...s.args, '--seed', String(x.seed * 100 + i), ...faults], { timeoutMs: 120000, http: rest, ...where(i) }),
      ),
      ...(x.probe > 0
        ? [startInstanceProcess([...x.baseArgs, '--seed', '1'], { timeoutMs: 120000, http: rest, ...where(specs.length) })]
        : []),
    ]);
    for (const s of settled) if (s.status === 'fulfilled') insts.push(s.value);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    const role = (r: string) => insts.slice(0, specs.length).filter((_, i) => specs[i].role === r);
    const bases = role('base').map(addressOf);
    const parities = Array.from({ length: x.parityPools }, (_, j) =>
      insts
        .slice(0, specs.length)
        .filter((_, i) => specs[i].role === 'parity' && specs[i].pool === j)
        .map(addressOf),
    );
    const replicas = [...bases, ...(x.parityIsBase ? parities.flat() : role('extra').map(addressOf))];
    log(
      `started ${x.base} base + ${x.parity} parity${needExtraBase ? ` + ${x.parity} extra base (for the uncoded modes)` : ''} instances; stragglers: ${describeStragglers(x.stragglers)}`,
    );

    let serviceTimesMs: number[] = [];
    const probe = x.probe > 0 ? insts[insts.length - 1] : null;
    if (probe !== null) {
      const pc = clientFor(addressOf(probe));
      try {
        serviceTimesMs = await probeServiceTimes(pc, x.baseModel, x.input(0), x.shape, x.probe);
      } finally {
        pc.close();
      }
      log(
        `service time of a fault-free instance (${x.probe} sequential requests): p50 ${fmt(serviceTimesMs[Math.floor(serviceTimesMs.length / 2)])} ms, p99 ${fmt(serviceTimesMs[Math.floor(serviceTimesMs.length * 0.99)])} ms`,
      );
    }

    const F = x.frontends ?? 1;
    if (!Number.isInteger(F) || F < 1) throw new Error(`frontends must be a whole number >= 1, not ${F}`);
    const tooFew = [['base', x.base], ...parities.map((p, j) => [`parity pool ${j}`, p.length] as const)].filter(
      ([, n]) => (n as number) < F,
    );
    if (tooFew.length > 0)
      throw new Error(
        `${F} frontends need at least ${F} instances in every pool (each frontend owns its share): ${tooFew.map(([w, n]) => `${w} has ${n}`).join(', ')}`,
      );
    const common = {
      ...(x.copyBudget !== undefined ? { copyBudget: x.copyBudget } : {}),
      ...(x.slowQueryLogMs !== undefined ? { slowQueryLogMs: x.slowQueryLogMs } : {}),
      ...(x.dispatch !== undefined ? { dispatch: x.dispatch } : {}),
      name: 'bench',
      grpcPort: 0,
      httpPort: 0,
      sloMs: x.sloMs,
      decodeDeadlineMs: x.decodeDeadlineMs,
      maxWaitMs: x.maxWaitMs,
      instanceConcurrency: x.concurrency,
      logLevel: 'warn' as const,
      maxPendingQueries: 100000,
      maxPoolQueue: 100000,
      health: { intervalMs: 1000 },
    };
    const protocol = rest ? { protocol: 'rest' as const } : {};
    for (const mode of x.modes) {
      let cfg: FrontendConfig;
      let desc: string;
      let instances: number;
      if (mode === 'coded') {
        cfg = {
          ...common,
          mode,
          code: x.code,
          fallback: x.fallback,
          ...(x.singletonGroups !== undefined ? { singletonGroups: x.singletonGroups } : {}),
          ...(x.padding !== undefined ? { padding: x.padding } : {}),
          parityDelayMs: x.parityDelayMs,
          pools: {
            base: { model: x.baseModel, instances: bases, ...protocol },
            parity: parities.map((p, j) => ({ model: x.parityModel(j), instances: p, ...protocol })),
          },
        };
        desc = `${x.base} base + ${x.parity} parity, ${x.code.family} k=${x.code.k} r=${x.code.r}${x.fallback ? ', fallback' : ''}${x.parityDelayMs > 0 ? `, parity after ${x.parityDelayMs} ms` : ''}${x.singletonGroups === 'copy' ? ', lone queries copied' : ''}${x.padding === 'repeat' ? ', padding repeats queries' : ''}`;
        instances = x.base + x.parity;
      } else if (mode === 'none') {
        cfg = { ...common, mode, pools: { base: { model: x.baseModel, instances: bases, ...protocol } } };
        desc = `${x.base} base`;
        instances = x.base;
      } else {
        const hedged = mode === 'equal-resources-hedged';
        cfg = {
          ...common,
          mode: hedged ? 'equal-resources' : mode,
          ...(hedged ? { hedgeMs: x.hedgeMs } : {}),
          pools: { base: { model: x.baseModel, instances: replicas, ...protocol } },
        };
        desc = `${replicas.length} base replicas${mode === 'replication' ? ', 2 copies per query' : hedged ? `, hedged after ${x.hedgeMs} ms` : ''}`;
        instances = replicas.length;
      }
      // F frontends: each gets every F-th instance of every pool
      const shards = Array.from({ length: F }, (_, s): FrontendConfig => {
        const p = cfg.pools;
        return {
          ...cfg,
          pools: {
            ...p,
            base: { ...p.base, instances: shardOf(p.base.instances, s, F) },
            ...(p.parity !== undefined ? { parity: p.parity.map((q) => ({ ...q, instances: shardOf(q.instances, s, F) })) } : {}),
          },
        };
      });
      if (F > 1) desc += `; ${F} frontends, each over 1/${F} of the instances (${shareSizes(shards)})`;
      if (x.dispatch !== undefined && x.dispatch !== 'single-queue') desc += `; dispatch ${x.dispatch}`;
      const slow: SlowQueryStory[] = [];
      const started = await Promise.all(
        shards.map((c, s) => {
          const path = join(tmp, `${mode}-${s}.json`);
          writeFileSync(path, JSON.stringify(c));
          return startFrontendProcess(path, undefined, (e) => {
            if (measuring && e.msg === 'slow query' && e.slowQuery !== undefined) slow.push(e.slowQuery as SlowQueryStory);
          });
        }),
      );
      fes.push({
        mode,
        desc,
        instances,
        fe: started,
        client: started.map((e) => clientFor(`127.0.0.1:${rest ? e.http : e.grpc}`)),
        st: newStats(x.sloMs),
        slow,
        rounds: [],
      });
    }
    const timeout = x.sloMs * 4;
    const warmInput = (i: number) => x.input(x.queries + i);
    for (const f of fes)
      if (x.warmup > 0)
        await replay(f.client, 'bench', poissonSchedule(x.warmup, x.rate, x.seed + 1000), null, warmInput, x.shape, timeout);
    // the frontend hop: sequential queries through an uncoded frontend (or the first) at rest
    let frontendOverheadMs = 0;
    if (serviceTimesMs.length > 0) {
      const f = fes.find((g) => g.mode === 'equal-resources' || g.mode === 'none') ?? fes[0];
      const rtt: number[] = [];
      for (let i = 0; i < 200; i++) {
        const t0 = performance.now();
        await f.client[0].infer('bench', 'input', x.input(i), [1, ...x.shape], timeout).catch(() => undefined);
        rtt.push(performance.now() - t0);
      }
      rtt.sort((a, b) => a - b);
      frontendOverheadMs = Math.max(0, rtt[100] - serviceTimesMs[Math.floor(serviceTimesMs.length / 2)]);
      log(
        `frontend hop: median ${fmt(rtt[100])} ms through ${f.mode}'s frontend at rest, ${fmt(frontendOverheadMs)} ms over the instances' service time`,
      );
    }
    for (const f of fes) f.before = await frontendCounters(f.fe.map((e) => e.http));
    const bgc = x.stragglers.backgroundCpu;
    if (bgc !== undefined && bgc.processes > 0) bg.push(...startBackgroundLoad(bgc.processes, bgc.duty));
    if (lab !== null && net !== undefined && net.pairs > 0) {
      transfersSince = performance.now();
      transfersFullMbit = net.pairs * Math.min(net.rateMbit, net.uplinkMbit ?? net.rateMbit);
      transfers = await lab.startBulkTransfers({
        pairs: net.pairs,
        minBytes: net.minMB * 1e6,
        maxBytes: net.maxMB * 1e6,
        seed: x.seed,
        among: specs.map((_, i) => i),
      });
    }
    // the probe instance keeps answering sequential requests (about 20/s) while the rounds run
    const underLoad: number[] = [];
    probing = probe !== null;
    const probeLoop = (async () => {
      if (probe === null) return;
      const c = clientFor(addressOf(probe));
      try {
        while (probing) {
          const t0 = performance.now();
          await c.infer(x.baseModel, 'input', x.input(0), [1, ...x.shape], 10000);
          underLoad.push(performance.now() - t0);
          await new Promise((r) => setTimeout(r, 50));
        }
      } catch (e) {
        log(`service-time probe under load stopped: ${(e as Error).message}`);
      } finally {
        c.close();
      }
    })();
    const watch = new CpuShareWatch(() => [
      ...insts.map((i) => i.proc.pid),
      ...fes.flatMap((f) => f.fe.map((e) => e.proc.pid)),
      ...bg.map((b) => b.pid),
    ]);
    const perRound = Math.ceil(x.queries / x.rounds);
    measuring = true;
    for (let r = 0; r < x.rounds; r++) {
      const n = Math.min(perRound, x.queries - r * perRound);
      if (n <= 0) break;
      const offset = r * perRound;
      const schedule = poissonSchedule(n, x.rate, x.seed + r);
      for (const f of fes) {
        log(`round ${r + 1}/${x.rounds}: ${f.mode} (${f.desc}), ${n} queries at ${x.rate}/s`);
        const answeredBefore = f.st.answers.ms.length;
        await replay(
          f.client,
          'bench',
          schedule,
          f.st,
          (i) => x.input(offset + i),
          x.shape,
          timeout,
          x.onResult === undefined ? undefined : (i, res) => x.onResult!(f.mode, offset + i, res),
        );
        const rl = roundLatency(f.st.answers.ms.slice(answeredBefore));
        f.rounds.push(rl);
        log(
          rl.answers === 0
            ? `round ${r + 1}/${x.rounds}: ${f.mode}: no answers`
            : `round ${r + 1}/${x.rounds}: ${f.mode}: p50 ${fmt(rl.p50)} ms, p99 ${fmt(rl.p99)} ms, p99.9 ${fmt(rl.p999)} ms, max ${fmt(rl.max)} ms`,
        );
      }
    }
    measuring = false;
    const otherCpuShare = watch.otherShare();
    probing = false;
    await probeLoop;
    underLoad.sort((a, b) => a - b);
    if (underLoad.length > 0)
      log(
        `service time of the fault-free instance during the rounds (${underLoad.length} requests): p50 ${fmt(underLoad[Math.floor(underLoad.length / 2)])} ms, p99 ${fmt(underLoad[Math.floor(underLoad.length * 0.99)])} ms, max ${fmt(underLoad[underLoad.length - 1])} ms (a machine-wide stall, e.g. of the GPU, shows here too)`,
      );
    for (const b of bg.splice(0)) b.kill('SIGKILL');
    let moved: ExperimentResult['transfers'] = null;
    if (transfers !== null) {
      const t = transfers.stats();
      const s = (performance.now() - transfersSince) / 1000;
      moved = { count: t.transfers, megabytes: t.bytes / 1e6, failures: t.failures };
      await transfers.stop();
      transfers = null;
      // completed transfers only: a lower bound on the rate the links carried, next to what PAIRS
      // links at full rate would carry (an upper bound: random pairs may share a receiver)
      log(
        `background transfers during the measured rounds: ${t.transfers} completed, ${(t.bytes / 1e6).toFixed(0)} MB in ${s.toFixed(0)} s (at least ${((t.bytes * 8) / 1e6 / s).toFixed(0)} Mbit/s; at most ${transfersFullMbit} Mbit/s, every pair's link at full rate), ${t.failures} failed`,
      );
    }
    const modes: ModeResult[] = [];
    for (const f of fes) {
      const after = await frontendCounters(f.fe.map((e) => e.http));
      const b = f.before!;
      const d = {
        requests: after.requests - b.requests,
        copies: after.copies - b.copies,
        byCopy: after.byCopy - b.byCopy,
        queries: after.queries - b.queries,
      };
      // the event-loop delay: prom-client's maximum since the previous scrape (the one before the rounds)
      const frontend: FrontendHealth = {
        eventLoopLagMaxMs: after.eventLoopLagMaxMs,
        gcs: after.gcs - b.gcs,
        gcsOver100ms: after.gcsOver100ms - b.gcsOver100ms,
        gcSeconds: after.gcSeconds - b.gcSeconds,
        copiesDenied: after.copiesDenied - b.copiesDenied,
      };
      const sm = summarize(f.st);
      const st = f.st;
      modes.push({
        mode: f.mode,
        config: f.desc,
        instances: f.instances,
        queries: st.measured,
        errors: st.errors,
        errorMessages: st.errorMessages,
        rejected: st.rejected,
        reconstructed: st.reconstructed,
        defaults: st.defaults,
        answeredByCopy: d.byCopy,
        lost: st.errors,
        duplicates: d.queries - (st.measured - st.rejected),
        copies: d.copies,
        requestsPerQuery: d.queries > 0 ? d.requests / d.queries : NaN,
        achievedRate: sm.achievedRate,
        offeredRate: sm.offeredRate,
        lateNotDefault: sm.lateNotDefault,
        sendLagMs: sm.sendLagMs,
        latencyMs: sm.latencyMs,
        cdf: sm.cdf,
        tail: { p99: tailComposition(st, 99), p999: tailComposition(st, 99.9) },
        rounds: f.rounds,
        frontend,
        ...(x.slowQueryLogMs !== undefined
          ? {
              slowQueries: {
                count: f.slow.length,
                slowest: [...f.slow].sort((a, b) => b.latencyMs - a.latencyMs).slice(0, SLOW_QUERIES_KEPT),
              },
            }
          : {}),
      });
      const l = sm.latencyMs;
      for (const [msg, count] of Object.entries(st.errorMessages)) log(`${f.mode}: error x${count}: ${msg}`);
      log(
        `${f.mode}: p50 ${fmt(l.p50)} ms, p99 ${fmt(l.p99)} ms, p99.9 ${fmt(l.p999)} ms; reconstructed ${st.reconstructed}, copies ${d.copies}, default ${st.defaults}, errors ${st.errors}, rejected ${st.rejected}; ${describeTail(modes[modes.length - 1].tail!.p999, 'p99.9')}`,
      );
      log(`${f.mode}: ${describeFrontendHealth(frontend)}`);
    }
    return {
      modes,
      serviceTimesMs,
      serviceTimesUnderLoadMs: underLoad.length >= 50 ? underLoad : serviceTimesMs,
      frontendOverheadMs,
      transfers: moved,
      otherCpuShare,
      stragglers: describeStragglers(x.stragglers),
      seconds: (performance.now() - started) / 1000,
    };
  } finally {
    probing = false;
    for (const b of bg) b.kill('SIGKILL');
    for (const f of fes) {
      for (const c of f.client) c.close();
      f.st.h.destroy();
    }
    await Promise.all([...fes.flatMap((f) => f.fe.map((e) => e.stop())), ...insts.map((i) => i.stop('SIGTERM'))]);
    await transfers?.stop();
    await lab?.stop();
    release();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    rmSync(tmp, { recursive: true, force: true });
  }
}
