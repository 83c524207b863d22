// A pool of instances that compute one function (the base model, or the j-th parity model).
// Default policy (Clipper's): one queue per pool, and an instance pulls the next task only
// when it has a free slot (instanceConcurrency, 1 by default). Round-robin instead assigns
// each task to the next healthy instance's own queue at submission. Instances are health
// checked: one that fails a request or misses `failures` checks in a row is taken out until
// a check succeeds again. Queued tasks whose owner no longer needs them are dropped
// (best-effort cancellation); in-flight requests are left to finish.
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { V2GrpcClient } from './client.js';
import { ServeError } from './v2.js';

export interface Task {
  data: Float32Array;
  /** per-sample input shape (without batch) */
  shape: number[];
  /** side inputs sent with the main one (multi-input workers, e.g. Lagrange H_S), by name */
  side?: { name: string; data: Float32Array; shape: number[] }[];
  /** absolute time (ms since epoch, Date.now) after which the result is useless */
  expiresAt: number;
  attempts: number;
  /** true once nobody needs the result: queued copies are skipped */
  cancelled: boolean;
  done(out: Float32Array): void;
  /** `retryable`: the failure was the instance's (the task may be resubmitted) */
  fail(e: Error, retryable: boolean): void;
}

export interface PoolOptions {
  name: string;
  model: string;
  addresses: string[];
  inputName: string;
  policy: 'single-queue' | 'round-robin';
  concurrency: number;
  maxQueue: number;
  healthIntervalMs: number;
  healthTimeoutMs: number;
  healthFailures: number;
  log: Logger;
}

class Deque<T> {
  private items: (T | undefined)[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(x: T): void {
    this.items.push(x);
  }
  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined;
    const x = this.items[this.head];
    this.items[this.head++] = undefined;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return x;
  }
  drain(): T[] {
    const out = this.items.slice(this.head) as T[];
    this.items = [];
    this.head = 0;
    return out;
  }
}

export class InstanceConn {
  readonly client: V2GrpcClient;
  healthy = false;
  inflight = 0;
  failures = 0;
  served = 0;
  readonly queue = new Deque<Task>();
  constructor(readonly address: string) {
    this.client = new V2GrpcClient(address);
  }
}

export class Pool {
  readonly instances: InstanceConn[];
  private readonly queue = new Deque<Task>();
  private rr = 0;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;
  private checking = false;

  constructor(readonly o: PoolOptions) {
    this.instances = o.addresses.map((a) => new InstanceConn(a));
  }

  /** Tasks waiting (not yet sent), including cancelled ones not yet skipped. */
  get queued(): number {
    return this.o.policy === 'round-robin' ? this.instances.reduce((s, i) => s + i.queue.length, 0) : this.queue.length;
  }
  get healthyCount(): number {
    return this.instances.filter((i) => i.healthy).length;
  }
  get inflight(): number {
    return this.instances.reduce((s, i) => s + i.inflight, 0);
  }

  /** Whether a new task would be accepted. */
  hasRoom(extra = 1): boolean {
    return this.queued + extra <= this.o.maxQueue;
  }

  submit(t: Task): void {
    if (this.closed) throw new ServeError('unavailable', 'frontend is shutting down');
    if (!this.hasRoom()) throw new ServeError('overloaded', `pool ${this.o.name}: queue full (${this.o.maxQueue} tasks)`);
    if (this.o.policy === 'round-robin') {
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
      target.queue.push(t);
    } else {
      this.queue.push(t);
    }
    this.pump();
  }

  private next(conn: InstanceConn): Task | undefined {
    const q = this.o.policy === 'round-robin' ? conn.queue : this.queue;
    for (;;) {
      const t = q.shift();
      if (t === undefined) return undefined;
      if (t.cancelled) continue;
      if (Date.now() >= t.expiresAt) {
        t.fail(new ServeError('deadline', 'expired in queue'), false);
        continue;
      }
      return t;
    }
  }

  /** Hand queued tasks to healthy instances with free slots. */
  pump(): void {
    if (this.closed) return;
    for (const conn of this.instances) {
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
    conn.inflight++;
    t.attempts++;
    const timeout = Math.max(1, t.expiresAt - Date.now());
    conn.client.infer(this.o.model, this.o.inputName, t.data, [1, ...t.shape], timeout, t.side === undefined ? {} : { side: t.side.map((s) => ({ ...s, shape: [1, ...s.shape] })) }).then(
      (r) => {
        conn.inflight--;
        conn.served++;
        t.done(r.data);
        this.pump();
      },
      (e: ServiceError) => {
        conn.inflight--;
        const instanceFault = e.code === GrpcStatus.UNAVAILABLE || e.code === GrpcStatus.INTERNAL || e.code === GrpcStatus.UNKNOWN || e.code === GrpcStatus.CANCELLED;
        if (e.code === GrpcStatus.UNAVAILABLE && conn.healthy && !/injected failure/.test(e.details ?? '')) {
          conn.healthy = false;
          this.o.log.warn({ pool: this.o.name, instance: conn.address, error: e.details }, 'instance out (request failed)');
        }
        t.fail(new Error(`${conn.address}: ${e.details || e.message}`), instanceFault);
        this.pump();
      },
    );
  }

  /** Start health checking (the first round runs now); resolves after the first round. */
  async startHealth(): Promise<void> {
    await this.checkAll();
    this.timer = setInterval(() => void this.checkAll(), this.o.healthIntervalMs);
    this.timer.unref();
  }

  private async checkAll(): Promise<void> {
    if (this.checking || this.closed) return;
    this.checking = true;
    try {
      await Promise.all(
        this.instances.map(async (conn) => {
          let ok = false;
          try {
            ok = await conn.client.modelReady(this.o.model, this.o.healthTimeoutMs);
          } catch {
            ok = false;
          }
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
    } finally {
      this.checking = false;
    }
    this.pump();
  }

  /** Stop: queued tasks fail (unavailable), clients close. */
  close(): void {
    this.closed = true;
    if (this.timer !== null) clearInterval(this.timer);
    const all = [...this.queue.drain(), ...this.instances.flatMap((i) => i.queue.drain())];
    for (const t of all) if (!t.cancelled) t.fail(new ServeError('unavailable', 'frontend is shutting down'), false);
    for (const i of this.instances) i.client.close();
  }
}
