// A discrete-event simulation of coded serving: the frontend's own serving policy
// (src/serve/policy.ts) and pools (src/serve/pool.ts) on a VirtualClock, with simulated
// instances whose service times and stragglers come from the same fault injector the real
// instances use. Nothing here re-implements a policy decision, so the simulator cannot drift
// from the server.
import { pino } from 'pino';
import * as hdr from 'hdr-histogram-js';
import '../codes/index.js';
import { codeFromConfig } from '../codes/registry.js';
import { VirtualClock } from '../serve/clock.js';
import { FaultInjector, type FaultSpec } from '../serve/faults.js';
import { timingCodec } from '../serve/group-codec.js';
import { Pool, type DispatchPolicy } from '../serve/pool.js';
import { ServingPolicy, type ServingMode, type PolicyCounts, type QueryResult } from '../serve/policy.js';
import { Rng, deriveSeed } from '../data/rng.js';
import { poissonSchedule } from '../serve/load-generator.js';
import { SimulatedInstance } from './simulated-instance.js';
import { sampleServiceTime, type ServiceTime } from './service-time.js';

export type StragglerModel = Pick<FaultSpec, 'latency' | 'slowProb' | 'slowMs' | 'failProb'> &
  Partial<Pick<FaultSpec, 'slowPeriods' | 'trace'>>;

export interface Scenario {
  mode: ServingMode;
  /** coded mode: the code (family, k, r and family options) */
  code?: { family: string; k: number; r: number } & Record<string, unknown>;
  /** base instances; coded: plus `parity` instances split over the r parity pools; equal-resources
   * and replication: the base pool has base + parity instances (the same total) */
  base: number;
  parity: number;
  /** queries per second, Poisson */
  rate: number;
  queries: number;
  warmup: number;
  seed: number;
  service: ServiceTime;
  stragglers: StragglerModel;
  sloMs: number;
  decodeDeadlineMs: number;
  maxWaitMs: number;
  parityDelayMs: number;
  /** uncoded modes: hedged requests after this long (null: none) */
  hedgeMs: number | null;
  fallback: boolean;
  /** hedged / fallback copies per query at most (the frontend's copyBudget; default as the frontend's, null: no limit) */
  copyBudget?: number | null;
  /** coded: a group that closes with one query is padded ('pad', default) or protected by a fallback copy ('copy') */
  singletonGroups?: 'pad' | 'copy';
  /** coded: a partial group is padded with answered queries ('answered', default) or its own queries repeated ('repeat') */
  padding?: 'answered' | 'repeat';
  /** requests in flight per instance (1: pull when idle) */
  concurrency: number;
  /** how queued tasks reach instances (the frontend's dispatch; default single-queue) */
  dispatch?: DispatchPolicy;
  /** per-query input shape (only used to route a code's queries) */
  inputShape?: number[];
  /** a constant added to every latency: the client-to-frontend hop and the frontend's own work, which the simulated instances' service times do not include (default 0) */
  overheadMs?: number;
}

export interface Percentiles {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface SimResult {
  label: string;
  instances: number;
  latencyMs: Percentiles;
  counts: PolicyCounts;
  measured: number;
  /** instance requests per query (1 = no redundancy) */
  requestsPerQuery: number;
  /** busy time / (instances x simulated time) */
  utilisation: number;
}

export function scenarioLabel(s: Scenario): string {
  if (s.mode === 'coded') return `coded ${s.code?.family ?? '?'}(k=${s.code?.k}, r=${s.code?.r})${s.fallback ? ' + fallback' : ''}`;
  if (s.mode === 'equal-resources') return s.hedgeMs === null ? 'equal-resources' : `equal-resources + hedging`;
  if (s.mode === 'none') return s.hedgeMs === null ? 'none' : 'none + hedging';
  return 'replication';
}

export function instancesOf(s: Scenario): number {
  return s.mode === 'none' ? s.base : s.base + s.parity;
}

/** Run one scenario to completion; deterministic for a given seed. */
export function simulate(
  s: Scenario,
  opts: { onAnswer?: (i: number, arrivalMs: number, latencyMs: number, r: QueryResult | Error) => void } = {},
): SimResult {
  const clock = new VirtualClock();
  const log = pino({ level: 'silent' });
  const inputShape = s.inputShape ?? [1, 28, 28];
  const code =
    s.mode === 'coded'
      ? codeFromConfig(s.code as never)
      : s.mode === 'replication'
        ? codeFromConfig({ family: 'replication', k: 1, r: 1 })
        : null;
  if (s.mode === 'coded' && s.code === undefined) throw new Error('a coded scenario needs a code');
  const codec = code === null ? null : timingCodec(code, inputShape);
  const sims: SimulatedInstance[] = [];
  let instanceNo = 0;
  const makePool = (name: string, count: number): Pool => {
    if (count < 1) throw new Error(`pool ${name} needs at least one instance (got ${count})`);
    const addrs = Array.from({ length: count }, () => `sim-${instanceNo++}`);
    const pool = new Pool({
      name,
      model: 'm',
      addresses: addrs,
      inputName: 'input',
      policy: s.dispatch ?? 'single-queue',
      concurrency: s.concurrency,
      maxQueue: 1 << 30,
      healthIntervalMs: 1e9,
      healthTimeoutMs: 1e9,
      healthFailures: 1 << 30,
      log,
      clock,
      connect: (addr) => {
        const i = Number(addr.slice(4));
        const rng = new Rng(deriveSeed(s.seed, 'service', i));
        const sim = new SimulatedInstance({
          clock,
          serviceMs: () => sampleServiceTime(s.service, () => rng.float()),
          faults: new FaultInjector({ crashAfter: 0, ...s.stragglers, seed: s.seed * 100 + i }),
        });
        sims.push(sim);
        return sim;
      },
    });
    pool.assumeHealthy();
    return pool;
  };
  const pools = new Map<string, Pool>();
  if (s.mode === 'coded') {
    pools.set('base', makePool('base', s.base));
    const parityPools = [...new Set(codec!.pools.filter((p) => p !== 'base'))];
    parityPools.forEach((key, j) => {
      const share = Math.floor(s.parity / parityPools.length) + (j < s.parity % parityPools.length ? 1 : 0);
      pools.set(key, makePool(key, share));
    });
  } else pools.set('base', makePool('base', instancesOf(s)));
  const policy = new ServingPolicy({
    mode: s.mode,
    codec,
    pools,
    clock,
    log,
    inputShape,
    defaultOutput: new Float32Array(0),
    sloMs: s.sloMs,
    decodeDeadlineMs: s.decodeDeadlineMs,
    maxWaitMs: s.maxWaitMs,
    parityDelayMs: s.parityDelayMs,
    onMiss: 'default',
    maxPendingQueries: Number.MAX_SAFE_INTEGER,
    maxAttempts: 2,
    hedgeMs: s.mode === 'none' || s.mode === 'equal-resources' ? s.hedgeMs : null,
    fallback: s.mode === 'coded' && s.fallback,
    copyBudget: s.copyBudget,
    singletonGroups: s.singletonGroups ?? 'pad',
    padding: s.padding ?? 'answered',
  });
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  const total = s.warmup + s.queries;
  const schedule = poissonSchedule(total, s.rate, s.seed);
  const input = new Float32Array(0);
  let measured = 0;
  let tasksAtWarmupEnd = 0;
  // requests that reached an instance (a task cancelled while queued costs nothing)
  const requestsSent = () => [...pools.values()].reduce((a, p) => a + p.requests, 0);
  for (let i = 0; i < total; i++) {
    clock.after(schedule[i], () => {
      if (i === s.warmup) tasksAtWarmupEnd = requestsSent();
      const arrival = clock.now();
      policy.submit([input], (_, r) => {
        opts.onAnswer?.(i, arrival, clock.now() - arrival, r);
        if (i < s.warmup) return;
        measured++;
        h.recordValue(Math.max(1, Math.round((clock.now() - arrival + (s.overheadMs ?? 0)) * 1000)));
      });
    });
  }
  clock.run();
  const p = (q: number) => h.getValueAtPercentile(q) / 1000;
  const latencyMs = { p50: p(50), p90: p(90), p99: p(99), p999: p(99.9), max: h.maxValue / 1000, mean: h.mean / 1000 };
  h.destroy();
  const span = clock.now();
  const busy = sims.reduce((a, x) => a + x.busyMs, 0);
  return {
    label: scenarioLabel(s),
    instances: instancesOf(s),
    latencyMs,
    counts: { ...policy.counts },
    measured,
    requestsPerQuery: (requestsSent() - tasksAtWarmupEnd) / Math.max(1, s.queries),
    utilisation: busy / (sims.length * Math.max(1, span)),
  };
}
