// Fault injection for experiments on model instances: an added-latency distribution, a
// slow-down probability (a straggler: one request stalls), time-correlated slow periods (the
// instance is slow for a while: every request in the period is slowed), the replay of a
// latency trace, a failure probability, and crash-after-N. The same injector decides the
// fate of requests in real instances (on the system clock) and in the planner's simulated
// ones (on a virtual clock), so both run the same straggler models.
import { readFileSync } from 'node:fs';
import { Rng } from '../data/rng.js';

export type LatencyDist =
  | { kind: 'none' }
  | { kind: 'const'; ms: number }
  | { kind: 'uniform'; lo: number; hi: number }
  | { kind: 'exp'; mean: number }
  | { kind: 'lognormal'; mu: number; sigma: number };

export interface FaultSpec {
  /** extra latency added to every request */
  latency: LatencyDist;
  /** probability that a request is additionally delayed by slowMs (a straggler) */
  slowProb: number;
  slowMs: number;
  /** probability that a request fails (UNAVAILABLE / 503) */
  failProb: number;
  /** exit the process abruptly when the N-th inference request arrives (0 = never) */
  crashAfter: number;
  seed: number;
  /** time-correlated slowdowns: alternating normal and slow periods (exponential lengths) */
  slowPeriods?: SlowPeriods;
  /** extra latency per request replayed from a trace (ms), cyclically from a seeded offset */
  trace?: number[];
}

export interface SlowPeriods {
  /** mean length of a slow period and of a normal one (ms) */
  meanOnMs: number;
  meanOffMs: number;
  /** during a slow period the model's compute time is multiplied by factor ... */
  factor: number;
  /** ... and each request is delayed a further addMs */
  addMs: number;
}

export const NO_FAULTS: FaultSpec = { latency: { kind: 'none' }, slowProb: 0, slowMs: 0, failProb: 0, crashAfter: 0, seed: 1 };

/** Parse ON_MS:OFF_MS:FACTOR[:ADD_MS] (mean slow and normal period lengths, compute-time factor, added ms). */
export function parseSlowPeriods(s: string): SlowPeriods {
  const nums = s.split(':').map(Number);
  const ok =
    (nums.length === 3 || nums.length === 4) &&
    nums.every((x) => Number.isFinite(x) && x >= 0) &&
    nums[0] > 0 &&
    nums[1] > 0 &&
    nums[2] >= 1;
  if (!ok)
    throw new Error(
      `bad slow periods '${s}': use ON_MS:OFF_MS:FACTOR[:ADD_MS] (mean slow-period and normal-period lengths in ms, both > 0; compute-time factor >= 1; optional added ms per request), e.g. 500:20000:1:50`,
    );
  return { meanOnMs: nums[0], meanOffMs: nums[1], factor: nums[2], addMs: nums[3] ?? 0 };
}

/**
 * Read a latency trace: extra milliseconds per request, as a JSON array of numbers or as text
 * with one number per line (blank lines and lines starting with # are skipped).
 */
export function readLatencyTrace(path: string): number[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read latency trace ${path}: ${(e as Error).message}`);
  }
  let values: unknown[];
  if (text.trimStart().startsWith('[')) {
    try {
      values = JSON.parse(text) as unknown[];
    } catch (e) {
      throw new Error(`latency trace ${path} is not a valid JSON array: ${(e as Error).message}`);
    }
    if (!Array.isArray(values)) throw new Error(`latency trace ${path}: expected a JSON array of milliseconds`);
  } else {
    values = [];
    text.split('\n').forEach((line, i) => {
      const t = line.trim();
      if (t === '' || t.startsWith('#')) return;
      const v = Number(t);
      if (!Number.isFinite(v)) throw new Error(`latency trace ${path}, line ${i + 1}: '${t.slice(0, 40)}' is not a number of milliseconds`);
      values.push(v);
    });
  }
  const out = values.map((v, i) => {
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0)
      throw new Error(`latency trace ${path}: entry ${i} (${JSON.stringify(v)}) must be a non-negative number of milliseconds`);
    return v;
  });
  if (out.length === 0) throw new Error(`latency trace ${path} holds no values`);
  return out;
}

/** Parse `none`, `const:MS`, `uniform:LO:HI`, `exp:MEAN`, `lognormal:MU:SIGMA` (milliseconds; lognormal of ms). */
export function parseLatency(s: string): LatencyDist {
  const [kind, ...rest] = s.split(':');
  const nums = rest.map(Number);
  const ok = (n: number) => nums.length === n && nums.every((x) => Number.isFinite(x) && x >= 0);
  if (kind === 'none' && ok(0)) return { kind: 'none' };
  if (kind === 'const' && ok(1)) return { kind: 'const', ms: nums[0] };
  if (kind === 'uniform' && ok(2) && nums[0] <= nums[1]) return { kind: 'uniform', lo: nums[0], hi: nums[1] };
  if (kind === 'exp' && ok(1)) return { kind: 'exp', mean: nums[0] };
  if (kind === 'lognormal' && nums.length === 2 && nums.every(Number.isFinite) && nums[1] >= 0)
    return { kind: 'lognormal', mu: nums[0], sigma: nums[1] };
  throw new Error(
    `bad latency distribution '${s}': use none, const:MS, uniform:LO:HI, exp:MEAN or lognormal:MU:SIGMA (milliseconds, non-negative)`,
  );
}

export interface FaultDecision {
  /** delay before the answer (ms), on top of the model's compute time */
  delayMs: number;
  /** the model's compute time is multiplied by this (1: normal) */
  computeFactor: number;
  slowed: boolean;
  /** inside a time-correlated slow period */
  inSlowPeriod: boolean;
  fail: boolean;
  crash: boolean;
}

export class FaultInjector {
  private readonly rand: () => number;
  private readonly periodRand: () => number;
  private count = 0;
  private slowNow = false;
  private periodEnd: number | null = null;
  private readonly traceOffset: number;
  constructor(readonly spec: FaultSpec) {
    for (const [k, v] of [
      ['slowProb', spec.slowProb],
      ['failProb', spec.failProb],
    ] as const) {
      if (!(v >= 0 && v <= 1)) throw new RangeError(`${k} must be a probability in [0, 1], got ${v}`);
    }
    if (!(spec.slowMs >= 0)) throw new RangeError(`slowMs must be >= 0, got ${spec.slowMs}`);
    if (!Number.isInteger(spec.crashAfter) || spec.crashAfter < 0)
      throw new RangeError(`crashAfter must be a non-negative integer, got ${spec.crashAfter}`);
    const rng = new Rng(spec.seed);
    this.rand = () => rng.float();
    // slow periods draw from their own stream: enabling them leaves the per-request draws unchanged
    const prng = new Rng(spec.seed ^ 0x5f3759df);
    this.periodRand = () => prng.float();
    this.traceOffset = spec.trace === undefined ? 0 : Math.floor(new Rng(spec.seed ^ 0x2545f491).float() * spec.trace.length);
  }

  /** Whether the instance is in a slow period at `now` (ms), advancing the on/off process. */
  private inSlowPeriod(now: number): boolean {
    const p = this.spec.slowPeriods;
    if (p === undefined) return false;
    const exp = (mean: number) => -mean * Math.log(1 - this.periodRand());
    if (this.periodEnd === null) {
      // start in the stationary state: slow with probability on / (on + off)
      this.slowNow = this.periodRand() < p.meanOnMs / (p.meanOnMs + p.meanOffMs);
      this.periodEnd = now + exp(this.slowNow ? p.meanOnMs : p.meanOffMs);
    }
    while (now >= this.periodEnd) {
      this.slowNow = !this.slowNow;
      this.periodEnd += exp(this.slowNow ? p.meanOnMs : p.meanOffMs);
    }
    return this.slowNow;
  }

  get active(): boolean {
    const s = this.spec;
    return (
      s.latency.kind !== 'none' ||
      s.slowProb > 0 ||
      s.failProb > 0 ||
      s.crashAfter > 0 ||
      s.slowPeriods !== undefined ||
      s.trace !== undefined
    );
  }

  /** Decide the fate of the next request, arriving at `now` (ms; the slow periods' clock). */
  next(now: number = Date.now()): FaultDecision {
    this.count++;
    const s = this.spec;
    const crash = s.crashAfter > 0 && this.count >= s.crashAfter;
    let delay = 0;
    const l = s.latency;
    if (l.kind === 'const') delay = l.ms;
    else if (l.kind === 'uniform') delay = l.lo + (l.hi - l.lo) * this.rand();
    else if (l.kind === 'exp') delay = -l.mean * Math.log(1 - this.rand());
    else if (l.kind === 'lognormal') {
      const u1 = 1 - this.rand();
      const u2 = this.rand();
      delay = Math.exp(l.mu + l.sigma * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    }
    const slowed = s.slowProb > 0 && this.rand() < s.slowProb;
    if (slowed) delay += s.slowMs;
    const fail = s.failProb > 0 && this.rand() < s.failProb;
    const inSlow = this.inSlowPeriod(now);
    if (inSlow) delay += s.slowPeriods!.addMs;
    if (s.trace !== undefined) delay += s.trace[(this.traceOffset + this.count - 1) % s.trace.length];
    return { delayMs: delay, computeFactor: inSlow ? s.slowPeriods!.factor : 1, slowed, inSlowPeriod: inSlow, fail, crash };
  }
}
