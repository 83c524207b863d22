// The load generator, shared by the serving benchmarks (src/bench: `coded bench serve`,
// `coded bench overload`), the demo (`coded demo serve`, through the same serving experiment)
// and the planner's simulator (src/plan, which replays the same Poisson schedules on a virtual
// clock). Open loop: queries go out at their scheduled times whether or not earlier ones were
// answered, and latency is measured from each query's *intended* send time (no coordinated
// omission). Also the statistics the benchmarks keep (an HDR histogram per mode) and the
// frontend counters they read from /metrics.
import { performance } from 'node:perf_hooks';
import * as hdr from 'hdr-histogram-js';
import { Rng } from '../data/rng.js';
import type { ClientResult } from './client.js';

/** What replay needs of a client: V2GrpcClient and V2RestClient both are one. An error with `code` 8 (RESOURCE_EXHAUSTED; REST's 429) counts as refused. */
export interface InferClient {
  infer(model: string, inputName: string, data: Float32Array, shape: number[], timeoutMs: number): Promise<ClientResult>;
}

/** Arrival times (ms from 0) of `n` queries of a Poisson process at `rate` per second. */
export function poissonSchedule(n: number, rate: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const t = new Float64Array(n);
  let now = 0;
  for (let i = 0; i < n; i++) {
    now += (-Math.log(1 - rng.float()) / rate) * 1000;
    t[i] = now;
  }
  return t;
}

/**
 * Send query i at start + schedule[i] ms (start: startDelayMs from now), never waiting for
 * answers; `done` resolves once every send's promise has settled. Returns the start time
 * (performance.now() ms).
 */
export function openLoop(
  schedule: ArrayLike<number>,
  send: (i: number, intended: number) => Promise<unknown>,
  startDelayMs: number,
): { start: number; done: Promise<void> } {
  const n = schedule.length;
  const start = performance.now() + startDelayMs;
  let next = 0;
  let settled = 0;
  let finish: () => void = () => {};
  const done = new Promise<void>((r) => (finish = r));
  if (n === 0) finish();
  const fire = (i: number) => {
    void send(i, start + schedule[i]).finally(() => {
      if (++settled === n) finish();
    });
  };
  const tick = () => {
    const now = performance.now();
    while (next < n && start + schedule[next] <= now) fire(next++);
    if (next < n) {
      const wait = start + schedule[next] - performance.now();
      if (wait > 1) setTimeout(tick, Math.min(wait - 0.5, 50));
      else setImmediate(tick);
    }
  };
  setTimeout(tick, startDelayMs);
  return { start, done };
}

export interface Stats {
  h: ReturnType<typeof hdr.build>;
  errors: number;
  /** what the errors said: message -> count (at most 20 distinct messages kept) */
  errorMessages: Record<string, number>;
  rejected: number;
  reconstructed: number;
  defaults: number;
  /** queries scheduled (sent) */
  measured: number;
  /** the schedules' spans (first to last intended send), ms */
  spanMs: number;
  /** queries answered (originals, reconstructions, defaults; not refusals or errors) */
  completed: number;
  /** from each round's first intended send to its last answer, summed (ms) */
  activeMs: number;
  /** the frontend's SLO (ms): answers later than this from their intended send time without being defaults are counted */
  sloMs: number;
  /** answers later than sloMs (from the intended send time) that were not defaults: time the frontend never saw (see summarize) */
  lateNotDefault: number;
  /** how late the load generator sent each query (actual - intended, ms) */
  sendLagMs: number[];
  /** every answer's latency (ms) and how it was answered (an index into TAIL_OUTCOMES), for the tail's composition */
  answers: { ms: number[]; outcome: number[] };
}

/** Keeps what an error said (code and message, cut at 200 characters) with a count; at most 20 distinct messages. */
export function recordErrorMessage(st: Stats, e: { code?: number; message?: string }): void {
  const key = `${e.code === undefined ? '' : `code ${e.code}: `}${String(e.message ?? e).slice(0, 200)}`;
  if (key in st.errorMessages) st.errorMessages[key]++;
  else if (Object.keys(st.errorMessages).length < 20) st.errorMessages[key] = 1;
}

export const newStats = (sloMs = Infinity): Stats => ({
  h: hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 }),
  errors: 0,
  errorMessages: {},
  rejected: 0,
  reconstructed: 0,
  defaults: 0,
  measured: 0,
  spanMs: 0,
  completed: 0,
  activeMs: 0,
  sloMs,
  lateNotDefault: 0,
  sendLagMs: [],
  answers: { ms: [], outcome: [] },
});

/** How an answer was made, as the frontend flags it: its own original, a reconstruction, a hedged or fallback copy, the default. */
export const TAIL_OUTCOMES = ['original', 'reconstructed', 'copy', 'default'] as const;
export type TailOutcome = (typeof TAIL_OUTCOMES)[number];
export type TailComposition = Record<TailOutcome, number>;

/**
 * What the slowest answers were: of the slowest 1% (0.1%) of answers, those at or above the p99
 * (p99.9) latency, how many were originals, reconstructions, copies and defaults. Tells where a
 * mode's tail comes from (e.g. originals that no reconstruction or copy rescued in time).
 */
export function tailComposition(st: Stats, percentile: number): TailComposition & { fromMs: number } {
  const n = st.answers.ms.length;
  const out = { original: 0, reconstructed: 0, copy: 0, default: 0, fromMs: 0 };
  if (n === 0) return out;
  const sorted = Float64Array.from(st.answers.ms).sort();
  // the slowest (100 - percentile)% of the answers (at least one)
  const top = Math.max(1, Math.round(((100 - percentile) / 100) * n));
  const from = sorted[n - Math.min(n, top)];
  out.fromMs = from;
  for (let i = 0; i < n; i++) if (st.answers.ms[i] >= from) out[TAIL_OUTCOMES[st.answers.outcome[i]]]++;
  return out;
}

/** A latency for reports: 3 significant figures or so (123, 12.3, 1.23). */
export function fmt(x: number): string {
  return x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2);
}

/** "answers at or above the p99 (40.0 ms): 4 original, 3 reconstructed, 2 by a copy, 1 default" */
export function describeTail(t: TailComposition & { fromMs: number }, label: string): string {
  const parts = TAIL_OUTCOMES.filter((o) => t[o] > 0).map((o) => `${t[o]} ${o === 'copy' ? 'by a copy' : o}`);
  return `answers at or above the ${label} (${fmt(t.fromMs)} ms): ${parts.length > 0 ? parts.join(', ') : 'none'}`;
}

/**
 * Replay a schedule against a frontend; latency from intended send time, in microseconds, into `st` (unless warm-up).
 * Query i sends input(i); `onResult(i, r)` (measured queries only) sees each answer.
 */
export async function replay(
  clients: InferClient | InferClient[],
  name: string,
  schedule: Float64Array,
  st: Stats | null,
  input: (i: number) => Float32Array,
  shape: number[],
  timeoutMs: number,
  onResult?: (i: number, r: ClientResult) => void,
): Promise<void> {
  const all_ = Array.isArray(clients) ? clients : [clients];
  const n = schedule.length;
  let lastAnswer = 0;
  const { start, done } = openLoop(
    schedule,
    (i, intended) => {
      st?.sendLagMs.push(performance.now() - intended);
      return all_[i % all_.length].infer(name, 'input', input(i), [1, ...shape], timeoutMs).then(
        (r) => {
          if (st === null) return;
          const ms = performance.now() - intended;
          lastAnswer = performance.now();
          st.h.recordValue(Math.max(1, Math.round(ms * 1000)));
          st.completed++;
          if (r.parameters.reconstructed === true) st.reconstructed++;
          if (r.parameters.default === true) st.defaults++;
          else if (ms > st.sloMs) st.lateNotDefault++;
          st.answers.ms.push(ms);
          st.answers.outcome.push(
            r.parameters.default === true ? 3 : r.parameters.reconstructed === true ? 1 : r.parameters.copy === true ? 2 : 0,
          );
          onResult?.(i, r);
        },
        (e: { code?: number; message?: string }) => {
          if (st === null) return;
          if (e.code === 8) st.rejected++;
          else {
            st.errors++;
            recordErrorMessage(st, e);
          }
        },
      );
    },
    20,
  );
  lastAnswer = start;
  await done;
  if (st !== null) {
    st.measured += n;
    st.spanMs += schedule[n - 1];
    st.activeMs += lastAnswer - start;
  }
}

/**
 * Percentiles, CDF and rates of a mode's measured queries. HDR histograms report a percentile
 * as the highest value equivalent to its bucket, which can exceed the largest value recorded:
 * every percentile is capped at the maximum (a p99.9 above the max is never printed).
 * achievedRate counts answered queries only, over the time from the first intended send to the
 * last answer; offeredRate is the schedule's.
 */
export function summarize(st: Stats) {
  const h = st.h;
  const max = h.maxValue / 1000;
  const p = (q: number) => Math.min(h.getValueAtPercentile(q) / 1000, max);
  const lags = [...st.sendLagMs].sort((a, b) => a - b);
  const cdf: { latencyMs: number; percentile: number }[] = [];
  for (const q of [1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 97, 98, 99, 99.3, 99.5, 99.7, 99.8, 99.9, 99.95, 99.99, 100])
    cdf.push({ percentile: q, latencyMs: p(q) });
  return {
    latencyMs: { p50: p(50), p90: p(90), p99: p(99), p999: p(99.9), max, mean: h.mean / 1000 },
    cdf,
    achievedRate: st.activeMs > 0 ? st.completed / (st.activeMs / 1000) : 0,
    offeredRate: st.spanMs > 0 ? st.measured / (st.spanMs / 1000) : 0,
    lateNotDefault: st.lateNotDefault,
    sendLagMs: {
      p99: lags.length === 0 ? 0 : lags[Math.min(lags.length - 1, Math.ceil(0.99 * lags.length) - 1)],
      max: lags.length === 0 ? 0 : lags[lags.length - 1],
    },
  };
}

export interface FrontendCounters {
  requests: number;
  copies: number;
  byCopy: number;
  queries: number;
  /** second copies due but never sent: the copy budget allowed none before the query was answered */
  copiesDenied: number;
  /** garbage collections, all kinds, and those of them that took more than 100 ms (prom-client's nodejs_gc_duration_seconds) */
  gcs: number;
  gcsOver100ms: number;
  /** time spent in garbage collection (s) */
  gcSeconds: number;
  /** the worst event-loop delay of any of the frontends since their previous scrape (ms; nodejs_eventloop_lag_max_seconds) */
  eventLoopLagMaxMs: number;
}

/** A Prometheus metric summed over its lines `NAME{...labels} V` / `NAME V` whose labels include every one of `labels` (none given: all label sets). */
export function metricSum(metrics: string, name: string, labels: string[] = []): number {
  let total = 0;
  for (const line of metrics.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const labelText = rest[0] === '{' ? rest.slice(1, rest.indexOf('}')) : '';
    if (!labels.every((l) => labelText.split(',').includes(l))) continue;
    const v = Number(line.slice(line.lastIndexOf(' ') + 1));
    if (Number.isFinite(v)) total += v;
  }
  return total;
}

/** The counters of one or more frontends (summed; the event-loop delay: the worst), from their /metrics on 127.0.0.1:PORT. */
export async function frontendCounters(ports: number[]): Promise<FrontendCounters> {
  const out: FrontendCounters = {
    requests: 0,
    copies: 0,
    byCopy: 0,
    queries: 0,
    copiesDenied: 0,
    gcs: 0,
    gcsOver100ms: 0,
    gcSeconds: 0,
    eventLoopLagMaxMs: 0,
  };
  for (const port of ports) {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    out.requests += metricSum(text, 'coded_instance_requests_total');
    out.copies += metricSum(text, 'coded_copies_total');
    out.byCopy += metricSum(text, 'coded_answered_by_copy_total');
    out.queries += metricSum(text, 'coded_queries_total');
    out.copiesDenied += metricSum(text, 'coded_copies_denied_total');
    const gcs = metricSum(text, 'nodejs_gc_duration_seconds_count');
    out.gcs += gcs;
    // prom-client's default GC buckets (0.001, 0.01, 0.1, 1, 2, 5 s) include 0.1
    out.gcsOver100ms += gcs - metricSum(text, 'nodejs_gc_duration_seconds_bucket', ['le="0.1"']);
    out.gcSeconds += metricSum(text, 'nodejs_gc_duration_seconds_sum');
    out.eventLoopLagMaxMs = Math.max(out.eventLoopLagMaxMs, 1000 * metricSum(text, 'nodejs_eventloop_lag_max_seconds'));
  }
  return out;
}
