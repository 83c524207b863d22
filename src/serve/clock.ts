import { performance } from 'node:perf_hooks';

// Time for the serving policy. The frontend runs on the system clock (performance.now and
// Node timers); tests and the planner's discrete-event simulator run the very same policy on a
// VirtualClock, whose time moves only when they advance it: no sleeps, no timing races.

export interface Timer {
  cancel(): void;
}

export interface Clock {
  /** milliseconds (any fixed origin; only differences matter) */
  now(): number;
  /** run `fn` once, `ms` from now */
  after(ms: number, fn: () => void): Timer;
  /** run `fn` after the current event's work (setImmediate; on a virtual clock: at the same instant, later in order) */
  soon(fn: () => void): void;
}

/** Monotonic milliseconds (performance.now: sub-millisecond, never jumps with the wall clock) and Node timers. */
export const systemClock: Clock = {
  now: () => performance.now(),
  after(ms, fn) {
    const t = setTimeout(fn, Math.max(0, ms));
    return { cancel: () => clearTimeout(t) };
  },
  soon(fn) {
    setImmediate(fn);
  },
};

interface Entry {
  at: number;
  seq: number;
  fn: () => void;
  cancelled: boolean;
}

/** A binary min-heap of timer entries ordered by (time, insertion order). */
class TimerHeap {
  private readonly a: Entry[] = [];
  get size(): number {
    return this.a.length;
  }
  peek(): Entry | undefined {
    return this.a[0];
  }
  private less(i: number, j: number): boolean {
    const x = this.a[i];
    const y = this.a[j];
    return x.at < y.at || (x.at === y.at && x.seq < y.seq);
  }
  push(e: Entry): void {
    const a = this.a;
    a.push(e);
    let i = a.length - 1;
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (!this.less(i, p)) break;
      [a[i], a[p]] = [a[p], a[i]];
      i = p;
    }
  }
  pop(): Entry | undefined {
    const a = this.a;
    const top = a[0];
    const last = a.pop();
    if (a.length > 0 && last !== undefined) {
      a[0] = last;
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        const r = l + 1;
        let m = i;
        if (l < a.length && this.less(l, m)) m = l;
        if (r < a.length && this.less(r, m)) m = r;
        if (m === i) break;
        [a[i], a[m]] = [a[m], a[i]];
        i = m;
      }
    }
    return top;
  }
}

/**
 * Simulated time. `advance(ms)` / `runUntil(t)` fire due timers in time order (ties in the
 * order they were set); `run()` fires everything until no timer is left.
 */
export class VirtualClock implements Clock {
  private t: number;
  private seq = 0;
  private readonly heap = new TimerHeap();
  /** timers fired so far */
  fired = 0;

  constructor(start = 0) {
    this.t = start;
  }

  now(): number {
    return this.t;
  }

  after(ms: number, fn: () => void): Timer {
    if (!Number.isFinite(ms)) throw new RangeError(`timer delay must be finite, got ${ms}`);
    const e: Entry = { at: this.t + Math.max(0, ms), seq: this.seq++, fn, cancelled: false };
    this.heap.push(e);
    return { cancel: () => void (e.cancelled = true) };
  }

  soon(fn: () => void): void {
    this.after(0, fn);
  }

  /** Timers still pending (cancelled ones may be counted until they come due). */
  get pending(): number {
    return this.heap.size;
  }

  /** Time of the next live timer, or null. */
  nextAt(): number | null {
    for (;;) {
      const e = this.heap.peek();
      if (e === undefined) return null;
      if (!e.cancelled) return e.at;
      this.heap.pop();
    }
  }

  /** Fire every timer due at or before `t`, then set the time to `t`. */
  runUntil(t: number): void {
    for (;;) {
      const e = this.heap.peek();
      if (e === undefined || e.at > t) break;
      this.heap.pop();
      if (e.cancelled) continue;
      this.t = Math.max(this.t, e.at);
      this.fired++;
      e.fn();
    }
    this.t = Math.max(this.t, t);
  }

  advance(ms: number): void {
    this.runUntil(this.t + ms);
  }

  /** Fire timers until none is left (or `limit` have fired: a guard against endless loops). */
  run(limit = 1e9): void {
    let n = 0;
    for (;;) {
      const at = this.nextAt();
      if (at === null) return;
      if (++n > limit) throw new Error(`VirtualClock.run: more than ${limit} timers fired; is something rescheduling itself forever?`);
      const e = this.heap.pop()!;
      this.t = Math.max(this.t, e.at);
      this.fired++;
      e.fn();
    }
  }
}
