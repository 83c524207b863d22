// A small seeded pseudo-random generator (xoshiro128**, seeded through splitmix32) for
// everything in the data pipeline that must be reproducible from a seed: splits, shuffles,
// augmentation parameters, group sampling, synthetic data. It is independent of libtorch's
// global generator, so data order never depends on how many tensors a model initialised.

function splitmix32(state: number): [number, number] {
  state = (state + 0x9e3779b9) | 0;
  let z = state;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return [(z ^ (z >>> 16)) >>> 0, state];
}

/** Mix a seed with stream identifiers (epoch, batch, purpose...) into a new 32-bit seed. */
export function deriveSeed(seed: number, ...streams: (number | string)[]): number {
  let h = Math.trunc(seed) >>> 0;
  let s: number;
  [h, s] = splitmix32(h ^ 0x5bd1e995);
  for (const x of streams) {
    const v = typeof x === 'number' ? [Math.trunc(x) >>> 0, Math.floor(x / 2 ** 32) >>> 0] : Array.from(x, (c) => c.charCodeAt(0));
    for (const part of v) {
      [h, s] = splitmix32((s ^ Math.imul(part, 0x27d4eb2d) ^ h) | 0);
    }
  }
  return h >>> 0;
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare: number | null = null;

  constructor(seed: number) {
    let s = Math.trunc(seed) | 0;
    [this.a, s] = splitmix32(s);
    [this.b, s] = splitmix32(s);
    [this.c, s] = splitmix32(s);
    [this.d, s] = splitmix32(s);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform in [0, 1) with 53 bits. */
  float(): number {
    return ((this.nextU32() >>> 5) * 67108864 + (this.nextU32() >>> 6)) / 9007199254740992;
  }

  /** Uniform integer in [0, n), unbiased (n < 2^32). */
  int(n: number): number {
    if (!(n >= 1 && n <= 0x100000000 && Number.isInteger(n))) throw new RangeError(`Rng.int: n must be an integer in [1, 2^32], got ${n}`);
    const limit = 0x100000000 - (0x100000000 % n);
    for (;;) {
      const v = this.nextU32();
      if (v < limit) return v % n;
    }
  }

  /** Standard normal sample (Marsaglia polar method). */
  normal(): number {
    if (this.spare !== null) {
      const s = this.spare;
      this.spare = null;
      return s;
    }
    for (;;) {
      const u = 2 * this.float() - 1;
      const v = 2 * this.float() - 1;
      const s = u * u + v * v;
      if (s > 0 && s < 1) {
        const m = Math.sqrt((-2 * Math.log(s)) / s);
        this.spare = v * m;
        return u * m;
      }
    }
  }

  /** true with probability p. */
  bernoulli(p = 0.5): boolean {
    return this.float() < p;
  }

  /** A uniformly random permutation of 0..n-1 (Fisher-Yates). */
  permutation(n: number): Int32Array {
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    this.shuffle(p);
    return p;
  }

  /** Shuffle in place (Fisher-Yates); returns the array. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = a[i];
      a[i] = a[j];
      a[j] = t;
    }
    return a;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/** A seeded permutation of 0..n-1: the same for the same (seed, streams). */
export function seededPermutation(n: number, seed: number, ...streams: (number | string)[]): Int32Array {
  return new Rng(deriveSeed(seed, ...streams)).permutation(n);
}
