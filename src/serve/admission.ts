// Admission control: refuse a query at once (429 / RESOURCE_EXHAUSTED) when the latency it
// would see, predicted from the instances' measured service times and the work queued ahead of
// it (the pool's queue is fair across requests: ./fair-queue.ts) and in flight, would miss the
// latency budget; the SLO's default answers are for queries
// already accepted that then miss. Plain arithmetic on numbers the pools keep: it runs on
// whatever clock the pools run on (the tests and the planner use a virtual one).

/**
 * The mean service time of a pool's recent requests (ms), from send to answer as the frontend
 * sees them (so it includes the network and the frontend's own delays). A sliding window of the
 * last `window` samples no older than `maxAgeMs`, each clipped at `clipMs`: a single stall of
 * seconds must not make the frontend refuse work for the next hundred queries, a general
 * slowdown (a loaded CPU, a slower model) moves the mean within one window, and the slow answers
 * of an overload (the frontend itself saturated) stop counting `maxAgeMs` after it ended.
 */
export class ServiceTimeWindow {
  private readonly values: Float64Array;
  private readonly times: Float64Array;
  /** index of the oldest sample, and how many there are */
  private head = 0;
  private n = 0;
  private sum = 0;

  constructor(
    window = 128,
    private readonly clipMs = Infinity,
    private readonly maxAgeMs = Infinity,
  ) {
    if (!(window >= 1)) throw new RangeError(`service-time window must be >= 1, got ${window}`);
    this.values = new Float64Array(window);
    this.times = new Float64Array(window);
  }

  /** one request's service time `ms`, answered at clock time `now` */
  record(ms: number, now = 0): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    this.expire(now);
    const v = Math.min(ms, this.clipMs);
    if (this.n === this.values.length) this.drop();
    const i = (this.head + this.n) % this.values.length;
    this.values[i] = v;
    this.times[i] = now;
    this.sum += v;
    this.n++;
  }

  private drop(): void {
    this.sum -= this.values[this.head];
    this.head = (this.head + 1) % this.values.length;
    this.n--;
    if (this.n === 0) this.sum = 0;
  }

  /** forget samples older than maxAgeMs at clock time `now` */
  expire(now: number): void {
    while (this.n > 0 && now - this.times[this.head] > this.maxAgeMs) this.drop();
  }

  /** samples in the window */
  get count(): number {
    return this.n;
  }

  /** the mean of the window, or null when it is empty */
  get meanMs(): number | null {
    return this.n === 0 ? null : this.sum / this.n;
  }
}

export interface LoadSnapshot {
  /** mean service time of one request (ms) */
  serviceMs: number;
  /** request slots of the healthy instances (instances x concurrency) */
  slots: number;
  /** requests waiting in the pool's queue */
  queued: number;
  /**
   * of those, the ones served before the last of the new request's (the pool's queue is fair
   * across requests: of each waiting request at most as many as the new one has, one per round);
   * omitted: all of them (a FIFO queue)
   */
  ahead?: number;
  /** requests running on instances */
  inflight: number;
}

/**
 * Predicted latency (ms) of the last of `extra` new requests submitted now: with every slot busy
 * it starts once the requests ahead of it have drained through the slots (queued ahead + in
 * flight - slots + extra of them, at slots / serviceMs per ms), then runs for serviceMs. A
 * request that finds a free slot waits for nothing. With a fair queue only the queued tasks
 * served before it count (`ahead`): a single query behind a large batch is served in the next
 * round, and predicted so.
 */
export function predictedLatencyMs(s: LoadSnapshot, extra: number): number {
  if (s.slots <= 0) return Infinity;
  const ahead = Math.max(0, (s.ahead ?? s.queued) + s.inflight + extra - s.slots);
  return s.serviceMs + (ahead * s.serviceMs) / s.slots;
}

export interface AdmissionOptions {
  /** refuse when the predicted latency exceeds this (ms) */
  maxPredictedLatencyMs: number;
  /** measured requests a pool needs before its predictions are trusted (until then: admit) */
  minSamples: number;
}

export interface AdmissionVerdict {
  predictedMs: number;
  /** how long until the backlog has drained back to the budget (ms, >= 1000) */
  retryAfterMs: number;
}

/**
 * Whether `extra` new requests to a pool in state `s` (measured over `samples` requests) must
 * be refused; null: admit. Refuses only when every slot is busy (so a model slower than the
 * budget, or a large batch, is still served on an idle pool), and never before `minSamples`.
 */
export function admissionVerdict(s: LoadSnapshot, samples: number, extra: number, o: AdmissionOptions): AdmissionVerdict | null {
  if (samples < o.minSamples || s.slots <= 0) return null;
  // a free slot: the request starts now, whatever its size (a large batch on an idle server is served)
  if (s.queued + s.inflight < s.slots) return null;
  const predictedMs = predictedLatencyMs(s, extra);
  if (predictedMs <= o.maxPredictedLatencyMs) return null;
  return { predictedMs, retryAfterMs: Math.max(1000, Math.ceil((predictedMs - o.maxPredictedLatencyMs) / 1000) * 1000) };
}
