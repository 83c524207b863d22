// The frontend's Prometheus metrics (prom-client): one registry with the process metrics, the
// serving policy's events as counters and histograms (answers by outcome and latency, refusals,
// encode / decode time, copies, instance requests and failures) and gauges read from the pools
// at scrape time (queue depth, healthy instances, predicted latency, pending queries), plus
// DNS discovery's. docs/SERVING.md lists them; deploy/grafana's dashboard reads them.
import { Registry, Histogram, Counter, Gauge, collectDefaultMetrics } from 'prom-client';
import type { Pool } from './pool.js';
import type { PolicyEvents, ServingMode } from './policy.js';
import { poolInstanceMetrics, type DiscoveryEvents } from './discovery.js';
import { predictedLatencyMs } from './admission.js';

export interface FrontendMetricsOptions {
  /** the frontend's pools by key, read at scrape time */
  pools: () => Iterable<[string, Pool]>;
  /** accepted queries not yet answered, read at scrape time */
  pending: () => number;
}

export class FrontendMetrics {
  readonly registry = new Registry();
  /** DNS discovery's metrics (instances per pool, draining instances, rounds, changes) */
  readonly discovery: DiscoveryEvents;
  private readonly mLatency: Histogram<'mode' | 'outcome'>;
  private readonly mOutcomes: Counter<'mode' | 'outcome' | 'code'>;
  private readonly mRejected: Counter<'mode' | 'reason'>;
  private readonly mEncode: Histogram<'code'>;
  private readonly mDecode: Histogram<'code'>;
  private readonly mTaskFailures: Counter<'pool'>;
  private readonly mParitySkipped: Counter<'code'>;
  private readonly mCopies: Counter<'mode' | 'kind'>;
  private readonly mCopiesDenied: Counter<'mode' | 'kind'>;
  private readonly mRequests: Counter<'pool'>;
  private readonly mByCopy: Counter<'mode'>;

  constructor(o: FrontendMetricsOptions) {
    const reg = this.registry;
    // process metrics, among them nodejs_eventloop_lag_max_seconds (since the last scrape): how long the event loop was held
    collectDefaultMetrics({ register: reg, eventLoopMonitoringPrecision: 5 });
    const buckets = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];
    this.mLatency = new Histogram({
      name: 'coded_query_latency_seconds',
      help: 'query latency from arrival to answer',
      labelNames: ['mode', 'outcome'],
      buckets,
      registers: [reg],
    });
    this.mOutcomes = new Counter({
      name: 'coded_queries_total',
      help: 'answered queries by outcome (original, reconstructed, default, error)',
      labelNames: ['mode', 'outcome', 'code'],
      registers: [reg],
    });
    this.mRejected = new Counter({
      name: 'coded_rejected_total',
      help: 'queries refused with 429 / RESOURCE_EXHAUSTED, by reason: latency (admission control: predicted latency over the limit), pending (maxPendingQueries), queue (maxPoolQueue)',
      labelNames: ['mode', 'reason'],
      registers: [reg],
    });
    this.mEncode = new Histogram({
      name: 'coded_encode_seconds',
      help: 'time to encode one coding group',
      labelNames: ['code'],
      buckets: [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3],
      registers: [reg],
    });
    this.mDecode = new Histogram({
      name: 'coded_decode_seconds',
      help: 'time to decode one coding group',
      labelNames: ['code'],
      buckets: [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3],
      registers: [reg],
    });
    this.mParitySkipped = new Counter({
      name: 'coded_parity_skipped_total',
      help: 'coding groups whose parity queries were not sent: every original answered within parityDelayMs',
      labelNames: ['code'],
      registers: [reg],
    });
    this.mCopies = new Counter({
      name: 'coded_copies_total',
      help: 'second copies of late queries sent: hedge (uncoded hedged requests) or fallback (coded groups that could not decode by the deadline)',
      labelNames: ['mode', 'kind'],
      registers: [reg],
    });
    this.mCopiesDenied = new Counter({
      name: 'coded_copies_denied_total',
      help: 'second copies that were due but never sent: the copy budget (copyBudget copies per query) allowed none before the query was answered (a due copy waits for the budget, oldest query first)',
      labelNames: ['mode', 'kind'],
      registers: [reg],
    });
    this.mByCopy = new Counter({
      name: 'coded_answered_by_copy_total',
      help: 'queries answered by a hedged or fallback copy (also counted as original in coded_queries_total)',
      labelNames: ['mode'],
      registers: [reg],
    });
    this.mRequests = new Counter({
      name: 'coded_instance_requests_total',
      help: 'requests sent to instances (originals, coded queries, copies, retries; not those cancelled while queued): the work redundancy costs',
      labelNames: ['pool'],
      registers: [reg],
    });
    this.mTaskFailures = new Counter({
      name: 'coded_task_failures_total',
      help: 'instance requests that failed',
      labelNames: ['pool'],
      registers: [reg],
    });
    new Gauge({
      name: 'coded_pool_queue_depth',
      help: 'tasks waiting per pool',
      labelNames: ['pool'],
      registers: [reg],
      collect() {
        for (const [k, p] of o.pools()) this.set({ pool: k }, p.queued);
      },
    });
    new Gauge({
      name: 'coded_pool_healthy_instances',
      help: 'healthy instances per pool',
      labelNames: ['pool'],
      registers: [reg],
      collect() {
        for (const [k, p] of o.pools()) this.set({ pool: k }, p.healthyCount);
      },
    });
    this.discovery = poolInstanceMetrics(reg, o.pools);
    new Gauge({
      name: 'coded_predicted_latency_seconds',
      help: 'admission control: predicted latency of one new request per pool (measured mean service time, requests queued and running); NaN before any request was measured',
      labelNames: ['pool'],
      registers: [reg],
      collect() {
        for (const [k, p] of o.pools()) {
          const l = p.load();
          this.set({ pool: k }, l === null ? NaN : predictedLatencyMs(l, 1) / 1000);
        }
      },
    });
    new Gauge({
      name: 'coded_pending_queries',
      help: 'accepted queries not yet answered',
      registers: [reg],
      collect() {
        this.set(o.pending());
      },
    });
  }

  /** A request went out to an instance of `pool` (the pools' onRequest). */
  request(pool: string): void {
    this.mRequests.inc({ pool });
  }

  /** The serving policy's events, counted under `mode` (and `code`, the code's name, for coded work). */
  policyEvents(mode: ServingMode, code: string): PolicyEvents {
    return {
      answered: (outcome, ms, hedged) => {
        if (hedged) this.mByCopy.inc({ mode });
        this.mOutcomes.inc({ mode, outcome, code: outcome === 'reconstructed' ? code : '' });
        this.mLatency.observe({ mode, outcome }, ms / 1000);
      },
      failed: (ms) => {
        this.mOutcomes.inc({ mode, outcome: 'error', code: '' });
        this.mLatency.observe({ mode, outcome: 'error' }, ms / 1000);
      },
      rejected: (reason, n) => this.mRejected.inc({ mode, reason }, n),
      encoded: (sec) => this.mEncode.observe({ code }, sec),
      decoded: (sec) => this.mDecode.observe({ code }, sec),
      paritySkipped: () => this.mParitySkipped.inc({ code }),
      taskFailed: (pool) => this.mTaskFailures.inc({ pool }),
      hedgeSent: (kind) => this.mCopies.inc({ mode, kind }),
      copyDenied: (kind) => this.mCopiesDenied.inc({ mode, kind }),
    };
  }
}
