// `coded plan`: which serving configuration meets a latency target at the least cost. For a
// service-time distribution, a straggler model and an arrival rate it simulates (./simulator.ts:
// the frontend's own policy on a virtual clock) no redundancy, equal resources with and without
// hedged requests, replication and coded(k, r) with and without the fallback, at the instance
// counts each needs, and recommends the cheapest configuration (instances, then instance
// requests per query) whose target percentile is met. It also extrapolates to larger
// deployments at the same load per instance.
import type { Scenario, SimResult, StragglerModel } from './simulator.js';
import { canShare, simulateFrontends } from './frontend-shares.js';
import type { DispatchPolicy } from '../serve/pool.js';
import { meanServiceTime, type ServiceTime } from './service-time.js';

export interface PlanInput {
  service: ServiceTime;
  stragglers: StragglerModel;
  rate: number;
  /** base instances that carry the load without redundancy (default: the fewest at <= 50% busy) */
  base?: number;
  ks: number[];
  rs: number[];
  sloMs: number;
  decodeDeadlineMs: number;
  hedgeMs: number;
  maxWaitMs: number;
  /** coded: parity queries go out this long after their group closes, only if an original is still out (default 0) */
  parityDelayMs?: number;
  queries: number;
  seed: number;
  /** coded: what pads a partial group (the frontend's padding; default 'answered') */
  padding?: 'answered' | 'repeat';
  /** how each frontend's pools hand tasks to instances (default single-queue) */
  dispatch?: DispatchPolicy;
  /** frontend processes, each over its own share of every pool's instances and 1/F of the queries (default 1; ./frontend-shares.ts) */
  frontends?: number;
  /** the percentile to meet and its bound */
  target: { percentile: 'p50' | 'p99' | 'p999'; ms: number } | null;
}

export interface PlanRow {
  config: string;
  scenario: Scenario;
  result: SimResult;
  meetsTarget: boolean | null;
}

/** Base instances needed so that each is busy at most `maxBusy` of the time (stragglers included). */
export function baseInstancesFor(rate: number, service: ServiceTime, stragglers: StragglerModel, maxBusy = 0.5): number {
  const stall = stragglers.slowProb * stragglers.slowMs;
  const perQuery = meanServiceTime(service) + stall;
  return Math.max(1, Math.ceil((rate * perQuery) / 1000 / maxBusy));
}

export function candidates(p: PlanInput): Scenario[] {
  const B = p.base ?? baseInstancesFor(p.rate, p.service, p.stragglers);
  const common = {
    rate: p.rate,
    queries: p.queries,
    warmup: Math.min(1000, Math.floor(p.queries / 10)),
    seed: p.seed,
    service: p.service,
    stragglers: p.stragglers,
    sloMs: p.sloMs,
    decodeDeadlineMs: p.decodeDeadlineMs,
    maxWaitMs: p.maxWaitMs,
    parityDelayMs: p.parityDelayMs ?? 0,
    concurrency: 1,
    ...(p.padding !== undefined ? { padding: p.padding } : {}),
    ...(p.dispatch !== undefined ? { dispatch: p.dispatch } : {}),
  };
  const out: Scenario[] = [{ ...common, mode: 'none', base: B, parity: 0, hedgeMs: null, fallback: false }];
  out.push({ ...common, mode: 'none', base: B, parity: 0, hedgeMs: p.hedgeMs, fallback: false });
  out.push({ ...common, mode: 'replication', base: B, parity: B, hedgeMs: null, fallback: false });
  const extras = new Set<number>();
  for (const k of p.ks) {
    for (const r of p.rs) {
      const P = Math.max(r, Math.ceil(B / k) * r);
      extras.add(P);
      const code = { family: r === 1 ? 'addition' : 'linear', k, r };
      out.push({ ...common, mode: 'coded', code, base: B, parity: P, hedgeMs: null, fallback: false });
      out.push({ ...common, mode: 'coded', code, base: B, parity: P, hedgeMs: null, fallback: true });
      out.push({ ...common, mode: 'coded', code, base: B, parity: P, hedgeMs: null, fallback: true, singletonGroups: 'copy' });
    }
  }
  for (const P of [...extras].sort((a, b) => a - b)) {
    out.push({ ...common, mode: 'equal-resources', base: B, parity: P, hedgeMs: null, fallback: false });
    out.push({ ...common, mode: 'equal-resources', base: B, parity: P, hedgeMs: p.hedgeMs, fallback: false });
  }
  return out;
}

export function describe(s: Scenario): string {
  const n = s.mode === 'none' ? s.base : s.base + s.parity;
  if (s.mode === 'coded')
    return `coded ${s.code!.family}(k=${s.code!.k}, r=${s.code!.r})${s.fallback ? ' + fallback' : ''}${s.singletonGroups === 'copy' ? ', lone queries copied' : ''}${s.padding === 'repeat' ? ', padding repeats queries' : ''}, ${s.base} + ${s.parity}`;
  if (s.mode === 'replication') return `replication, ${n} (2 copies)`;
  const hedge = s.hedgeMs !== null ? ` + hedging after ${s.hedgeMs} ms` : '';
  return `${s.mode === 'none' ? 'no redundancy' : 'equal resources'}${hedge}, ${n}`;
}

/**
 * The configurations plan() simulates, and those it cannot deal out to p.frontends (a pool with
 * fewer instances than frontends), described: listed in the report, not simulated.
 */
export function plannedCandidates(p: PlanInput): { simulated: Scenario[]; unsplittable: string[] } {
  const F = p.frontends ?? 1;
  const all = candidates(p);
  return { simulated: all.filter((s) => canShare(s, F)), unsplittable: all.filter((s) => !canShare(s, F)).map(describe) };
}

export function plan(
  p: PlanInput,
  progress?: (done: number, total: number) => void,
): { rows: PlanRow[]; recommended: PlanRow | null; unsplittable: string[] } {
  const F = p.frontends ?? 1;
  const { simulated: cands, unsplittable } = plannedCandidates(p);
  const rows: PlanRow[] = [];
  cands.forEach((s, i) => {
    const result = simulateFrontends(s, F);
    rows.push({
      config: describe(s),
      scenario: s,
      result,
      meetsTarget: p.target === null ? null : result.latencyMs[p.target.percentile] <= p.target.ms,
    });
    progress?.(i + 1, cands.length);
  });
  const ok = rows
    .filter((r) => r.meetsTarget === true)
    .sort((a, b) => a.result.instances - b.result.instances || a.result.requestsPerQuery - b.result.requestsPerQuery);
  return { rows, recommended: ok[0] ?? null, unsplittable };
}

/** The same configurations at `factor` times the instances and the rate (the same load per instance). */
export function scaled(s: Scenario, factor: number): Scenario {
  return { ...s, base: s.base * factor, parity: s.parity * factor, rate: s.rate * factor };
}
