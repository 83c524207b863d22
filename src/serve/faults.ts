// Fault injection for experiments on model instances: an added-latency distribution, a
// slow-down probability (a straggler), a failure probability, and crash-after-N.
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
}

export const NO_FAULTS: FaultSpec = { latency: { kind: 'none' }, slowProb: 0, slowMs: 0, failProb: 0, crashAfter: 0, seed: 1 };

/** Parse `none`, `const:MS`, `uniform:LO:HI`, `exp:MEAN`, `lognormal:MU:SIGMA` (milliseconds; lognormal of ms). */
export function parseLatency(s: string): LatencyDist {
  const [kind, ...rest] = s.split(':');
  const nums = rest.map(Number);
  const ok = (n: number) => nums.length === n && nums.every((x) => Number.isFinite(x) && x >= 0);
  if (kind === 'none' && ok(0)) return { kind: 'none' };
  if (kind === 'const' && ok(1)) return { kind: 'const', ms: nums[0] };
  if (kind === 'uniform' && ok(2) && nums[0] <= nums[1]) return { kind: 'uniform', lo: nums[0], hi: nums[1] };
  if (kind === 'exp' && ok(1)) return { kind: 'exp', mean: nums[0] };
  if (kind === 'lognormal' && nums.length === 2 && nums.every(Number.isFinite) && nums[1] >= 0) return { kind: 'lognormal', mu: nums[0], sigma: nums[1] };
  throw new Error(`bad latency distribution '${s}': use none, const:MS, uniform:LO:HI, exp:MEAN or lognormal:MU:SIGMA (milliseconds, non-negative)`);
}

export interface FaultDecision {
  delayMs: number;
  slowed: boolean;
  fail: boolean;
  crash: boolean;
}

export class FaultInjector {
  private readonly rand: () => number;
  private count = 0;
  constructor(readonly spec: FaultSpec) {
    for (const [k, v] of [['slowProb', spec.slowProb], ['failProb', spec.failProb]] as const) {
      if (!(v >= 0 && v <= 1)) throw new RangeError(`${k} must be a probability in [0, 1], got ${v}`);
    }
    if (!(spec.slowMs >= 0)) throw new RangeError(`slowMs must be >= 0, got ${spec.slowMs}`);
    if (!Number.isInteger(spec.crashAfter) || spec.crashAfter < 0) throw new RangeError(`crashAfter must be a non-negative integer, got ${spec.crashAfter}`);
    const rng = new Rng(spec.seed);
    this.rand = () => rng.float();
  }

  get active(): boolean {
    const s = this.spec;
    return s.latency.kind !== 'none' || s.slowProb > 0 || s.failProb > 0 || s.crashAfter > 0;
  }

  /** Decide the fate of the next request. */
  next(): FaultDecision {
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
    return { delayMs: delay, slowed, fail, crash };
  }
}
