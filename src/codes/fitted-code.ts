// The shared machinery of the training-free approximate codes defined by fitting matrices
// (LeTCC's smoothing splines, the B-spline code): non-systematic, every worker runs the
// unchanged base model F on a coded query; the encoder is one fixed matrix E [n x k] (coded
// query n = sum_k E[n][k] X_k), the decoder a matrix D_S [k x |S|] for each set S of returned
// outputs (answer k = sum_j D_S[k][j] F(coded query S_j)). Both are computed in float64 in JS
// and applied with one engine matrix product each; decoder matrices are cached per pattern.
// Any non-empty set of outputs decodes (approximately, better with more).
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';
import {
  UndecodableError,
  availabilityOf,
  checkGroupInput,
  checkOutputs,
  patternsWithMissing,
  type Availability,
  type Code,
  type CodeConfig,
  type CodedQuery,
  type Decoded,
} from './code.js';
import { combine } from './interpolation.js';

export abstract class FittedCode implements Code {
  abstract readonly family: string;
  abstract readonly name: string;
  readonly systematic = false;
  /** more worker outputs give a better approximation: servers wait for them until the deadline */
  readonly approximateDecoding = true;
  readonly r: number;
  private encoderCache: number[][] | null = null;
  private readonly decoderCache = new Map<string, number[][]>();

  constructor(
    readonly k: number,
    readonly n: number,
    what: string,
  ) {
    if (!(Number.isInteger(k) && k >= 1)) throw new RangeError(`${what}: k must be a positive integer, got ${k}`);
    if (!(Number.isInteger(n) && n >= k)) throw new RangeError(`${what}: n must be an integer >= k = ${k}, got ${n}`);
    this.r = n - k;
  }

  /** E [n x k]: coded query i = sum_j E[i][j] X_j */
  protected abstract encoderMatrix(): number[][];
  /** D [k x idx.length]: answer t = sum_j D[t][j] * output of worker idx[j] */
  protected abstract decoderMatrix(idx: readonly number[]): number[][];
  abstract config(): CodeConfig;

  /** The encoder matrix E [n x k] (a copy). */
  encoding(): number[][] {
    this.encoderCache ??= this.encoderMatrix();
    return this.encoderCache.map((r) => [...r]);
  }

  /** The decoder matrix [k x returned] for the outputs of the workers idx (a copy). */
  decoding(idx: readonly number[]): number[][] {
    const key = idx.join(',');
    let m = this.decoderCache.get(key);
    if (m === undefined) {
      m = this.decoderMatrix(idx);
      this.decoderCache.set(key, m);
    }
    return m.map((r) => [...r]);
  }

  encode(x: Tensor): CodedQuery[] {
    checkGroupInput(this, x);
    const coded = tidy(() =>
      combine(
        this.encoding(),
        Array.from({ length: this.k }, (_, i) => x.select(1, i)),
      ),
    );
    return coded.map((t) => ({ fn: { kind: 'base' as const }, inputs: [t] }));
  }

  canDecode(available: Availability): boolean {
    return available.length === this.n && available.some(Boolean);
  }

  decode(outputs: readonly (Tensor | null)[]): Decoded {
    checkOutputs(this, outputs);
    const avail = availabilityOf(outputs);
    if (!this.canDecode(avail)) throw new UndecodableError(this.name, avail, 'no worker output arrived');
    const idx = avail.flatMap((a, i) => (a ? [i] : []));
    return {
      outputs: combine(
        this.decoding(idx),
        idx.map((i) => outputs[i]!),
      ),
      reconstructed: Array<boolean>(this.k).fill(true),
      info: { used: idx.length },
    };
  }

  /** every pattern with 0..n-k outputs missing (as Berrut codes) */
  evaluationPatterns(): Availability[] {
    const out: boolean[][] = [];
    for (let m = 0; m <= this.n - this.k; m++) out.push(...patternsWithMissing(this.n, m));
    return out;
  }

  modules(): Map<string, Module> {
    return new Map();
  }
}

/** A finite number >= 0 from a code config field (default when absent), with a clear error. */
export function nonNegativeParam(family: string, field: string, v: unknown, dflt: number): number {
  if (v === undefined) return dflt;
  const x = typeof v === 'string' ? Number(v) : v;
  if (typeof x !== 'number' || !Number.isFinite(x) || x < 0)
    throw new RangeError(`${family}: ${field} must be a finite number >= 0, got ${JSON.stringify(v)}`);
  return x;
}
