// A pool of instances that compute one function (the base model, or the j-th parity model).
// Default policy (Clipper's): one queue per pool, and an instance pulls the next task only
// when it has a free slot (instanceConcurrency, 1 by default). The queue is fair across
// requests (./fair-queue.ts): each request (a task's `source`) has its own FIFO line and the
// lines are served round-robin, so a request of many queries does not hold back one that
// arrives after it (issue 15). Round-robin instead assigns
// each task to the next healthy instance's own queue at submission; fastest-free keeps the one
// queue but gives each task to the free instance that has been fastest lately (least-latency
// load balancing: an instance slowed for a while, e.g. behind a busy link, gets work only when
// the faster ones are busy). Instances are health
// checked: one that fails a request or misses `failures` checks in a row is taken out until
// a check succeeds again. Queued tasks whose owner no longer needs them are dropped
// (best-effort cancellation); in-flight requests are left to finish. Hedged copies (a late
// query sent again) go to the front of the queue and, where another instance could take them,
// not to the instance that runs the first copy; of the instances free to take one, the one
// that has been fastest lately does (round-robin: the least busy, then the fastest lately; an
// instance not measured lately is tried first). A copy exists because an instance was slow:
// it should not land on another that is slow right now, e.g. behind a busy network link.
//
// The pool reaches instances through an InstanceClient (V2 gRPC in the server; simulated
// instances in the planner and in tests) and reads time from a Clock, so the same dispatch
// code runs in the server, the tests and the simulator.
//
// The instance set may change while the pool runs (DNS discovery, ./discovery.ts):
// setAddresses adds new instances (they take work once a health check passes) and drains
// removed ones: a draining instance gets no new work, its queued tasks move to the others, its
// in-flight requests may still answer; one that fails instead is put back at the front of the
// queue without using up an attempt (the instance went away, not the query), and the instance
// is closed once nothing is in flight on it.
import type { Logger } from 'pino';
import { ServeError } from './v2/types.js';
import { systemClock, type Clock, type Timer } from './clock.js';
import { grpcInstanceClient, type InstanceClient } from './instance-client.js';
import { ServiceTimeWindow, type LoadSnapshot } from './admission.js';
import { FairQueue, type SourceId } from './fair-queue.js';

const defaultConnect = grpcInstanceClient;

export interface Task {
  /**
   * the request the task serves (the policy numbers its submissions): a pool's queue is fair
   * across sources (./fair-queue.ts), so a large request does not delay a small one behind all
   * of its tasks; a coding group's coded queries belong to the request of its last query
   */
  source: SourceId;
  data: Float32Array;
  /** per-sample input shape (without batch) */
  shape: number[];
  /** side inputs sent with the main one (multi-input workers, e.g. Lagrange H_S), by name */
  side?: { name: string; data: Float32Array; shape: number[] }[];
  /** the pool clock's time (ms) after which the result is useless */
  expiresAt: number;
  attempts: number;
  /** true once nobody needs the result: queued copies are skipped */
  cancelled: boolean;
  /** a hedged copy: queued first, and kept off `avoid` (the instance running the first copy) when another can take it */
  hedge?: boolean;
  avoid?: string;
  /** the instance that ran the last attempt, and when it started (clock ms; set by the pool) */
  ranOn?: string;
  startedAt?: number;
  /** the policy's bookkeeping for slow-query stories (only with slowQueryMs): when the task was created and finished (clock ms) */
  createdAt?: number;
  finishedAt?: number;
  done(out: Float32Array): void;
  /** `retryable`: the failure was the instance's (the task may be resubmitted) */
  fail(e: Error, retryable: boolean): void;
}

/**
 * Where the serving policy (./policy.ts) sends tasks: the seam where dispatch is injected. A
 * Pool over instances in the server and the planner's simulator; scripted in the policy's unit
 * tests (test/serve/coding-groups.test.ts), which answer each task by hand on a virtual clock.
 */
export interface Dispatch {
  readonly name: string;
  /** queue a task (throws a ServeError 'overloaded' when full, 'unavailable' when closed) */
  submit(t: Task): void;
  /** whether `extra` more tasks would be accepted */
  hasRoom(extra?: number): boolean;
  /** healthy instances with a free slot now */
  readonly idleCount: number;
  /** tasks waiting, not yet sent */
  readonly queued: number;
  /** admission control's view of the load for a new request of `extra` tasks (null before any request was measured) */
  load(extra?: number): LoadSnapshot | null;
  /** how many service times the load's mean is over */
  readonly serviceTimes: { readonly count: number };
}

/** How queued tasks reach instances (see the file's header). */
export type DispatchPolicy = 'single-queue' | 'round-robin' | 'fastest-free';

export interface PoolOptions {
  name: string;
  model: string;
  addresses: string[];
  inputName: string;
  policy: DispatchPolicy;
  concurrency: number;
  maxQueue: number;
  healthIntervalMs: number;
  healthTimeoutMs: number;
  healthFailures: number;
  log: Logger;
  /** how to reach an instance (default: V2 gRPC) */
  connect?: (address: string) => InstanceClient;
  clock?: Clock;
  /** called whenever a request goes out to an instance (metrics: the work redundancy costs) */
  onRequest?: (pool: string) => void;
  /** service times above this (ms) count as this much in the measured mean (default: no clip) */
  serviceClipMs?: number;
  /** service times older than this (ms) no longer count (default: never too old) */
  serviceMaxAgeMs?: number;
}

/** A queue of tasks, fair across their sources (one line per request, served round-robin). */
export function newTaskQueue(): FairQueue<Task> {
  return new FairQueue<Task>((t) => t.source);
}

/** the weight of the newest request in an instance's recentMs: a few slow requests in a row make it look slow */
const RECENT_WEIGHT = 0.3;
/**
 * an instance's recentMs ranks it only this long (ms) after its last answer: one passed over
 * because it was slow, and given no work since, is tried again (it may have recovered)
 */
export const RECENT_MAX_AGE_MS = 1000;

export class InstanceConn {
  healthy = false;
  inflight = 0;
  failures = 0;
  served = 0;
  /** removed from the pool (discovery): no new work; closed once nothing is in flight */
  draining = false;
  /**
   * how long this instance's recent requests took, send to answer or failure (ms; an
   * exponentially weighted mean, the newest weighing RECENT_WEIGHT); null before the first
   */
  recentMs: number | null = null;
  /** when recentMs last changed (the pool's clock, ms) */
  observedAt = Number.NEGATIVE_INFINITY;
  readonly queue = newTaskQueue();
  constructor(
    readonly address: string,
    readonly client: InstanceClient,
  ) {}

  /** Count one request's time (ms), answered at `now`, in recentMs. */
  observe(ms: number, now: number): void {
    this.recentMs = this.recentMs === null ? ms : this.recentMs + RECENT_WEIGHT * (ms - this.recentMs);
    this.observedAt = now;
  }
}

export class Pool implements Dispatch {
  /** the instances taking work (replaced, never mutated in place, when the set changes) */
  instances: InstanceConn[];
  /** removed instances with requests still in flight */
  private draining: InstanceConn[] = [];
  private readonly connect: (address: string) => InstanceClient;
  private readonly queue = newTaskQueue();
  private rr = 0;
  private timer: Timer | null = null;
  private closed = false;
  private checking = false;
  /** how instances become healthy: health checks (startHealth), assumed (simulations), or not yet decided */
  private health: 'checked' | 'assumed' | 'none' = 'none';
  private readonly clock: Clock;
  private pumping = false;
  private repump = false;
  /** tasks found expired while pumping: failed once the pump is done (their handlers may submit again) */
  private readonly expired: Task[] = [];
  /** requests sent to instances (tasks cancelled while queued never are) */
  requests = 0;
  /** tasks whose request failed on a removed (draining) instance and were queued again */
  requeuedFromRemoved = 0;

  /** service times of the pool's recent successful requests (send to answer, ms): admission control predicts from them */
  readonly serviceTimes: ServiceTimeWindow;

  constructor(readonly o: PoolOptions) {
    this.clock = o.clock ?? systemClock;
    this.connect = o.connect ?? defaultConnect;
    this.instances = o.addresses.map((a) => new InstanceConn(a, this.connect(a)));
    this.serviceTimes = new ServiceTimeWindow(128, o.serviceClipMs ?? Infinity, o.serviceMaxAgeMs ?? Infinity);
  }

  get name(): string {
    return this.o.name;
  }

  /**
   * What admission control needs to predict the latency of a new request of `extra` tasks; null
   * before any request was measured. `ahead` counts the queued tasks served before the new
   * request's last one: the queue is fair, so of each request waiting at most `extra` (one per
   * round), not its whole backlog.
   */
  load(extra = 1): LoadSnapshot | null {
    this.serviceTimes.expire(this.clock.now());
    const serviceMs = this.serviceTimes.meanMs;
    if (serviceMs === null) return null;
    let ahead = this.queue.aheadOfNewSource(extra);
    // round-robin: the new tasks are spread over the instances' queues; each queue's share is counted in full (an upper bound)
    if (this.o.policy === 'round-robin') for (const i of this.instances) ahead += i.queue.aheadOfNewSource(extra);
    return { serviceMs, slots: this.healthyCount * this.o.concurrency, queued: this.queued, ahead, inflight: this.inflight };
  }

  /** Addresses of the instances taking work. */
  get addresses(): string[] {
    return this.instances.map((i) => i.address);
  }

  /** Instances removed and still finishing requests. */
  get drainingCount(): number {
    return this.draining.length;
  }

  /**
   * Make the instance set `addresses`: new addresses join (unhealthy until a health check
   * passes; one runs for them now), missing ones are drained. Returns what changed.
   */
  setAddresses(addresses: readonly string[]): { added: string[]; removed: string[] } {
    if (this.closed) return { added: [], removed: [] };
    const want = new Set(addresses);
    const have = new Set(this.instances.map((i) => i.address));
    const added = [...want].filter((a) => !have.has(a));
    const removed = this.instances.filter((i) => !want.has(i.address));
    if (added.length === 0 && removed.length === 0) return { added: [], removed: [] };
    const fresh = added.map((a) => {
      // an address removed earlier and back before its requests finished: a new connection
      return new InstanceConn(a, this.connect(a));
    });
    this.instances = [...this.instances.filter((i) => want.has(i.address)), ...fresh];
    for (const conn of removed) {
      conn.draining = true;
      // its waiting tasks (round-robin) go back to the pool, first in line in their order
      for (const t of conn.queue.drain().reverse()) this.requeue(t);
      if (conn.inflight === 0) conn.client.close();
      else this.draining.push(conn);
      this.o.log.info({ pool: this.o.name, instance: conn.address, inflight: conn.inflight }, 'instance removed (draining)');
    }
    for (const conn of fresh) this.o.log.info({ pool: this.o.name, instance: conn.address }, 'instance added');
    if (this.health === 'assumed') for (const c of fresh) c.healthy = true;
    else if (fresh.length > 0 && this.health === 'checked') void this.check(fresh).then(() => this.pump());
    this.pump();
    return { added, removed: removed.map((i) => i.address) };
  }

  /** A task taken off a removed instance: first in line again, ahead of every request's line (it waited already). */
  private requeue(t: Task): void {
    if (t.cancelled) return;
    if (this.o.policy === 'round-robin') {
      const healthy = this.instances.filter((i) => i.healthy);
      if (healthy.length > 0) healthy[this.rr++ % healthy.length].queue.unshift(t);
      else this.queue.unshift(t);
    } else this.queue.unshift(t);
  }

  /** Healthy instances with a free slot right now. */
  get idleCount(): number {
    return this.instances.filter((i) => i.healthy && i.inflight < this.o.concurrency).length;
  }

  /** Tasks waiting (not yet sent), including cancelled ones not yet skipped. */
  get queued(): number {
    // round-robin parks tasks in the shared queue while the pool has no healthy instance
    return this.o.policy === 'round-robin' ? this.queue.length + this.instances.reduce((s, i) => s + i.queue.length, 0) : this.queue.length;
  }
  get healthyCount(): number {
    return this.instances.filter((i) => i.healthy).length;
  }
  get inflight(): number {
    return this.instances.reduce((s, i) => s + i.inflight, 0) + this.draining.reduce((s, i) => s + i.inflight, 0);
  }

  /** Whether a new task would be accepted. */
  hasRoom(extra = 1): boolean {
    return this.queued + extra <= this.o.maxQueue;
  }

  submit(t: Task): void {
    if (this.closed) throw new ServeError('unavailable', 'frontend is shutting down');
    if (!this.hasRoom()) throw new ServeError('overloaded', `pool ${this.o.name}: queue full (${this.o.maxQueue} tasks)`);
    if (this.o.policy === 'round-robin' && !this.instances.some((c) => c.healthy)) {
      // nothing to assign it to now (no instance, or none healthy): parked until one is
      if (t.hedge === true) this.queue.unshift(t);
      else this.queue.push(t);
    } else if (this.o.policy === 'round-robin') {
      const n = this.instances.length;
      let target = this.instances[this.rr % n];
      for (let i = 0; i < n; i++) {
        const c = this.instances[(this.rr + i) % n];
        if (c.healthy) {
          target = c;
          this.rr = (this.rr + i + 1) % n;
          break;
        }
      }
      if (t.hedge === true) {
        // a hedged copy: the least busy healthy instance other than the one running the first copy,
        // of those the fastest lately
        const others = this.instances.filter((c) => c.healthy && c.address !== t.avoid);
        const busy = (c: InstanceConn) => c.inflight + c.queue.length;
        if (others.length > 0)
          target = others.reduce((a, b) => (busy(b) < busy(a) || (busy(b) === busy(a) && fasterLately(b, a, this.clock.now())) ? b : a));
      }
      if (t.hedge === true) target.queue.unshift(t);
      else target.queue.push(t);
    } else if (t.hedge === true) {
      this.queue.unshift(t);
    } else {
      this.queue.push(t);
    }
    this.pump();
  }

  private next(conn: InstanceConn): Task | undefined {
    // round-robin: the instance's own queue, then tasks parked while no instance was healthy
    const q = this.o.policy === 'round-robin' ? (conn.queue.length > 0 || this.queue.length === 0 ? conn.queue : this.queue) : this.queue;
    const skipped: Task[] = [];
    let leftToFaster = false;
    try {
      for (;;) {
        const t = q.shift();
        if (t === undefined) return undefined;
        if (t.cancelled) continue;
        if (this.clock.now() >= t.expiresAt) {
          this.expired.push(t);
          continue;
        }
        // a hedged copy stays off the instance that runs its first copy while another could take
        // it, and in the shared queue the first one this instance meets is left to a free instance
        // that has been faster lately (this one may take the next task). Skipped copies go back
        // first in line, in their order: hedged copies are served ahead of every request's line.
        if (t.hedge === true) {
          if (t.avoid === conn.address && this.instances.some((c) => c !== conn && c.healthy)) {
            skipped.push(t);
            continue;
          }
          if (!leftToFaster && q === this.queue && this.fasterFree(conn, t)) {
            leftToFaster = true;
            skipped.push(t);
            continue;
          }
        }
        return t;
      }
    } finally {
      for (let i = skipped.length - 1; i >= 0; i--) q.unshift(skipped[i]);
    }
  }

  /** The instances, fastest lately first (not measured lately: first of all, to be measured; ties keep their order). */
  private byRecentSpeed(): InstanceConn[] {
    const now = this.clock.now();
    return this.instances
      .map((c, i) => ({ c, i, key: recentKey(c, now) }))
      .sort((a, b) => a.key - b.key || a.i - b.i)
      .map((x) => x.c);
  }

  /** Whether a healthy instance other than `conn` (and the task's `avoid`) has a free slot and has been faster lately. */
  private fasterFree(conn: InstanceConn, t: Task): boolean {
    return this.instances.some(
      (c) => c !== conn && c.healthy && c.inflight < this.o.concurrency && c.address !== t.avoid && fasterLately(c, conn, this.clock.now()),
    );
  }

  /** Hand queued tasks to healthy instances with free slots. */
  pump(): void {
    if (this.closed) return;
    // not re-entrant: a handler run from inside (a failure that submits again) asks for another pass
    if (this.pumping) {
      this.repump = true;
      return;
    }
    this.pumping = true;
    try {
      do {
        this.repump = false;
        this.pumpOnce();
      } while (this.repump && !this.closed);
    } finally {
      this.pumping = false;
    }
    for (const t of this.expired.splice(0)) t.fail(new ServeError('deadline', 'expired in queue'), false);
  }

  private pumpOnce(): void {
    // fastest-free: the instances that have been fastest lately take the first tasks in line
    for (const conn of this.o.policy === 'fastest-free' ? this.byRecentSpeed() : this.instances) {
      while (conn.healthy && conn.inflight < this.o.concurrency) {
        const t = this.next(conn);
        if (t === undefined) break;
        this.run(conn, t);
      }
    }
    if (this.o.policy === 'round-robin') {
      // tasks parked on an unhealthy instance move to a healthy one
      const healthy = this.instances.filter((i) => i.healthy);
      if (healthy.length > 0) {
        for (const conn of this.instances) {
          if (conn.healthy || conn.queue.length === 0) continue;
          for (const t of conn.queue.drain()) healthy[this.rr++ % healthy.length].queue.push(t);
        }
        for (const conn of healthy) {
          while (conn.inflight < this.o.concurrency) {
            const t = this.next(conn);
            if (t === undefined) break;
            this.run(conn, t);
          }
        }
      }
    }
  }

  private run(conn: InstanceConn, t: Task): void {
    this.requests++;
    this.o.onRequest?.(this.o.name);
    conn.inflight++;
    t.attempts++;
    t.ranOn = conn.address;
    t.startedAt = this.clock.now();
    const started = t.startedAt;
    const timeout = Math.max(1, t.expiresAt - this.clock.now());
    conn.client.infer(
      {
        model: this.o.model,
        inputName: this.o.inputName,
        data: t.data,
        shape: [1, ...t.shape],
        side: t.side?.map((s) => ({ ...s, shape: [1, ...s.shape] })),
        timeoutMs: timeout,
      },
      (out) => {
        conn.inflight--;
        conn.served++;
        if (conn.draining) this.drained(conn);
        const now = this.clock.now();
        this.serviceTimes.record(now - started, now);
        conn.observe(now - started, now);
        t.done(out);
        this.pump();
      },
      (e) => {
        conn.inflight--;
        // a failure can make an instance look slower (a timeout), never faster (a quick refusal)
        const took = this.clock.now() - started;
        if (conn.recentMs === null || took > conn.recentMs) conn.observe(took, this.clock.now());
        if (conn.draining) {
          this.drained(conn);
          if (e.retryable && !this.closed && !t.cancelled) {
            // the instance was removed and its request failed (it went away): the task runs
            // again on another instance, first in line, without using up an attempt
            t.attempts--;
            this.requeuedFromRemoved++;
            delete t.startedAt;
            delete t.ranOn;
            this.o.log.debug(
              { pool: this.o.name, instance: conn.address, error: e.message },
              'request on a removed instance failed: retried on another',
            );
            this.requeue(t);
            this.pump();
            return;
          }
        }
        // a pool being closed ends its connections: the requests they cut are not the instance's fault
        if (e.instanceDown && conn.healthy && !this.closed) {
          conn.healthy = false;
          this.o.log.warn({ pool: this.o.name, instance: conn.address, error: e.message }, 'instance out (request failed)');
        }
        t.fail(new Error(`${conn.address}: ${e.message}`), e.retryable);
        this.pump();
      },
    );
  }

  /** A draining instance finished a request: closed once it has none left. */
  private drained(conn: InstanceConn): void {
    if (conn.inflight > 0) return;
    this.draining = this.draining.filter((c) => c !== conn);
    conn.client.close();
  }

  /** Start health checking (the first round runs now); resolves after the first round. */
  async startHealth(): Promise<void> {
    this.health = 'checked';
    await this.checkAll();
    const again = () => {
      if (this.closed) return;
      this.timer = this.clock.after(this.o.healthIntervalMs, () => void this.checkAll().finally(again));
    };
    again();
  }

  /** Mark every instance healthy without checking (simulated instances that never go down). */
  assumeHealthy(): void {
    this.health = 'assumed';
    for (const i of this.instances) i.healthy = true;
    this.pump();
  }

  private async checkAll(): Promise<void> {
    if (this.checking || this.closed) return;
    this.checking = true;
    try {
      await this.check(this.instances);
    } finally {
      this.checking = false;
    }
    this.pump();
  }

  private async check(conns: readonly InstanceConn[]): Promise<void> {
    await Promise.all(
      conns.map(async (conn) => {
        let ok = false;
        try {
          ok = await conn.client.modelReady(this.o.model, this.o.healthTimeoutMs);
        } catch {
          ok = false;
        }
        if (conn.draining || this.closed) return;
        if (ok) {
          conn.failures = 0;
          if (!conn.healthy) {
            conn.healthy = true;
            this.o.log.info({ pool: this.o.name, instance: conn.address }, 'instance in (healthy)');
          }
        } else if (++conn.failures >= this.o.healthFailures && conn.healthy) {
          conn.healthy = false;
          this.o.log.warn({ pool: this.o.name, instance: conn.address }, 'instance out (health check failed)');
        }
      }),
    );
  }

  /** Stop: queued tasks fail (unavailable), clients close. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) this.timer.cancel();
    const all = [...this.queue.drain(), ...this.instances.flatMap((i) => i.queue.drain())];
    for (const t of all) if (!t.cancelled) t.fail(new ServeError('unavailable', 'frontend is shutting down'), false);
    for (const i of [...this.instances, ...this.draining]) i.client.close();
    this.draining = [];
  }
}

/** An instance's recent request time for ranking: 0 when not measured within RECENT_MAX_AGE_MS (tried first, to be measured). */
function recentKey(c: InstanceConn, now: number): number {
  return c.recentMs !== null && now - c.observedAt <= RECENT_MAX_AGE_MS ? c.recentMs : 0;
}

/** `a` has been faster than `b` lately (recentKey: an instance not measured lately counts as fast, to be measured). */
function fasterLately(a: InstanceConn, b: InstanceConn, now: number): boolean {
  return recentKey(a, now) < recentKey(b, now);
}
