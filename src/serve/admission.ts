// Admission control: refuse a query at once (429 / RESOURCE_EXHAUSTED) when the latency it
// would see, predicted from the instances' measured service times and the work already queued
// and in flight, would miss the latency budget; the SLO's default answers are for queries
// already accepted that then miss. Plain arithmetic on numbers the pools keep: it runs on
// whatever clock the pools run on (the tests and the planner use a virtual one).

/**
 * The mean service time of a pool's recent requests (ms), from send to answer as the frontend
 * sees them (so it includes the network and the frontend's own delays). A sliding window of
 * `window` samples, each clipped at `clipMs`: a single stall of seconds must not make the
 * frontend refuse work for the next hundred queries, while a general slowdown (a loaded CPU,
 * a slower model) moves the mean within one window.
 */
export class ServiceTimeWindow {
  private readonly samples: Float64Array;
  private next = 0;
  private n = 0;
  private sum = 0;

  constructor(window = 128, private readonly clipMs = Infinity) {
    if (!(window >= 1)) throw new RangeError(`service-time window must be >= 1, got ${window}`);
    this.samples = new Float64Array(window);
  }

  record(ms: number): void {
    if (!Number.isFinite(ms) || ms < 0) return;
    const v = Math.min(ms, this.clipMs);
    if (this.n === this.samples.length) this.sum -= this.samples[this.next];
    else this.n++;
    this.samples[this.next] = v;
    this.sum += v;
    this.next = (this.next + 1) % this.samples.length;
  }

  /** samples recorded (up to the window) */
  get count(): number {
    return this.n;
  }

  /** the mean of the window, or null before the first sample */
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
  /** requests running on instances */
  inflight: number;
}

/**
 * Predicted latency (ms) of the last of `extra` new requests submitted now: with every slot busy
 * it starts once the requests ahead of it have drained through the slots (queued + in flight
 * - slots + extra of them, at slots / serviceMs per ms), then runs for serviceMs. A request that
 * finds a free slot waits for nothing.
 */
export function predictedLatencyMs(s: LoadSnapshot, extra: number): number {
  if (s.slots <= 0) return Infinity;
  const ahead = Math.max(0, s.queued + s.inflight + extra - s.slots);
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
