// Berrut approximate coded computing (after ApproxIFER): a training-free, non-systematic
// code that works with any base model F.
//
// Encoding: the K queries X_1..X_K sit at Chebyshev points beta_k (first kind); Berrut's
// rational interpolant u(z) through (beta_k, X_k) is evaluated at N points alpha_n
// (Chebyshev points of the second kind), and worker n runs the unchanged F on u(alpha_n).
// Decoding: Berrut's interpolant through whatever (alpha_n, F(u(alpha_n))) pairs arrived,
// evaluated at beta_k, approximates F(X_k). Any number of stragglers can be tolerated (one
// returned output suffices to produce an answer); accuracy degrades as fewer arrive.
//
// Byzantine-robust decoding (option `byzantine: E`): per coding group, for every way of
// leaving out up to E of the returned outputs, the remaining outputs are checked for
// leave-one-out consistency (each one predicted by Berrut interpolation of the others);
// a set that is much more consistent (by the factor `threshold`) than the set with one
// output fewer left out identifies the left-out outputs as corrupt, and they are excluded
// from that group's decoding.
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';
import { registerCodeFamily } from './family-table.js';
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
import { berrutMatrix, chebyshevFirstKind, chebyshevSecondKind, combine, combinePerGroup } from './interpolation.js';

/** Relative leave-one-out inconsistency below which outputs are never called corrupt (float rounding). */
const MIN_INCONSISTENCY = 1e-4;

export interface BerrutOptions {
  k: number;
  /** workers (N >= k) */
  n: number;
  /** most corrupt outputs per group that robust decoding may exclude (default 0: plain decoding) */
  byzantine?: number;
  /** consistency gain that marks left-out outputs as corrupt (default 4) */
  threshold?: number;
}

export interface ByzantineReport {
  /** per group: indices (0..n-1) of the worker outputs excluded as corrupt */
  excluded: number[][];
}

export class BerrutCode implements Code {
  readonly family = 'berrut';
  readonly systematic = false;
  readonly k: number;
  readonly n: number;
  readonly r: number;
  readonly byzantine: number;
  readonly threshold: number;
  /** the queries' interpolation points (Chebyshev, first kind) */
  readonly betas: number[];
  /** the workers' evaluation points (Chebyshev, second kind) */
  readonly alphas: number[];

  constructor({ k, n, byzantine = 0, threshold = 4 }: BerrutOptions) {
    if (!(Number.isInteger(k) && k >= 1)) throw new RangeError(`berrut: k must be a positive integer, got ${k}`);
    if (!(Number.isInteger(n) && n >= k)) throw new RangeError(`berrut: n must be an integer >= k = ${k}, got ${n}`);
    if (!(Number.isInteger(byzantine) && byzantine >= 0))
      throw new RangeError(`berrut: byzantine must be a non-negative integer, got ${byzantine}`);
    if (!(Number.isFinite(threshold) && threshold > 1)) throw new RangeError(`berrut: threshold must be a number > 1, got ${threshold}`);
    this.k = k;
    this.n = n;
    this.r = n - k;
    this.byzantine = byzantine;
    this.threshold = threshold;
    this.betas = chebyshevFirstKind(k);
    this.alphas = chebyshevSecondKind(n);
  }

  get name(): string {
    return `berrut(k=${this.k}, n=${this.n}${this.byzantine ? `, byzantine=${this.byzantine}` : ''})`;
  }

  encode(x: Tensor): CodedQuery[] {
    checkGroupInput(this, x);
    const m = berrutMatrix(this.betas, this.alphas);
    const coded = tidy(() =>
      combine(
        m,
        Array.from({ length: this.k }, (_, i) => x.select(1, i)),
      ),
    );
    return coded.map((t) => ({ fn: { kind: 'base' as const }, inputs: [t] }));
  }

  /** more worker outputs give a better approximation: servers wait for them until the deadline */
  readonly approximateDecoding = true;

  canDecode(available: Availability): boolean {
    return available.length === this.n && available.some(Boolean);
  }

  decode(outputs: readonly (Tensor | null)[]): Decoded {
    checkOutputs(this, outputs);
    const avail = availabilityOf(outputs);
    if (!this.canDecode(avail)) throw new UndecodableError(this.name, avail, 'no worker output arrived');
    const idx = avail.flatMap((a, i) => (a ? [i] : []));
    const values = idx.map((i) => outputs[i]!);
    const reconstructed = Array<boolean>(this.k).fill(true);
    if (this.byzantine === 0 || idx.length < 3) {
      const m = berrutMatrix(
        idx.map((i) => this.alphas[i]),
        this.betas,
      );
      return { outputs: combine(m, values), reconstructed, info: { used: idx.length } };
    }
    const { excluded } = this.locateByzantine(outputs);
    const weights = excluded.map((ex) => {
      const keep = idx.filter((i) => !ex.includes(i));
      const m = berrutMatrix(
        keep.map((i) => this.alphas[i]),
        this.betas,
      );
      return m.map((row) =>
        idx.map((i) => {
          const at = keep.indexOf(i);
          return at < 0 ? 0 : row[at];
        }),
      );
    });
    const info: Record<string, number> = { used: idx.length, excluded: excluded.reduce((a, e) => a + e.length, 0) };
    for (const i of idx) info[`excluded_${i}`] = excluded.filter((e) => e.includes(i)).length;
    return { outputs: combinePerGroup(weights, values), reconstructed, info };
  }

  /**
   * Per group, which returned outputs look corrupt (see the file comment). At most
   * min(byzantine, returned - 3) outputs are excluded per group, so at least 3 remain.
   */
  locateByzantine(outputs: readonly (Tensor | null)[], maxExcluded = this.byzantine): ByzantineReport {
    checkOutputs(this, outputs);
    const idx = outputs.flatMap((o, i) => (o !== null ? [i] : []));
    if (idx.length === 0) throw new UndecodableError(this.name, availabilityOf(outputs), 'no worker output arrived');
    const groups = outputs[idx[0]]!.shape[0];
    const e = Math.max(0, Math.min(maxExcluded, idx.length - 3));
    if (e === 0) return { excluded: Array.from({ length: groups }, () => []) };
    // every subset with up to e outputs left out, and its per-group leave-one-out inconsistency
    const candidates: { out: number[]; score: Float64Array }[] = [];
    for (let left = 0; left <= e; left++) {
      for (const p of patternsWithMissing(idx.length, left)) {
        const keep = idx.filter((_, j) => p[j]);
        candidates.push({ out: idx.filter((_, j) => !p[j]), score: this.inconsistency(outputs, keep) });
      }
    }
    const excluded: number[][] = [];
    for (let g = 0; g < groups; g++) {
      // the most consistent subset for each number of exclusions
      const best: { out: number[]; score: number }[] = [];
      for (const c of candidates) {
        const at = best[c.out.length];
        if (at === undefined || c.score[g] < at.score) best[c.out.length] = { out: c.out, score: c.score[g] };
      }
      const lowest = Math.min(...best.map((b) => b.score));
      let pick = best[0];
      // exclude only when that makes the rest much more consistent; then as few as come
      // within a factor 2 of the most consistent choice
      if (best[0].score > this.threshold * lowest && best[0].score > MIN_INCONSISTENCY) {
        pick = best.find((b) => b.score <= 2 * lowest)!;
      }
      excluded.push(pick.out);
    }
    return { excluded };
  }

  /**
   * Per group: the mean over the interior nodes j of keep of || Berrut(keep \\ {j}) at alpha_j - y_j ||,
   * relative to the mean norm of the outputs in keep.
   */
  inconsistency(outputs: readonly (Tensor | null)[], keep: number[]): Float64Array {
    const groups = outputs[keep[0]]!.shape[0];
    const rows: Float64Array[] = [];
    const scale = new Float64Array(groups);
    tidy(() => {
      const ys = keep.map((i) => outputs[i]!.reshape([groups, -1]));
      keep.forEach((j, a) => {
        const others = keep.filter((i) => i !== j);
        const m = berrutMatrix(
          others.map((i) => this.alphas[i]),
          [this.alphas[j]],
        );
        const [pred] = combine(
          m,
          ys.filter((_, b) => b !== a),
        );
        rows.push(Float64Array.from(pred.sub(ys[a]).square().sum(1).sqrt().double().data() as Float64Array));
        const norms = ys[a].square().sum(1).sqrt().double().data() as Float64Array;
        for (let g = 0; g < groups; g++) scale[g] += norms[g] / keep.length;
      });
    });
    // the extreme nodes' leave-one-out predictions are extrapolations, inaccurate even for
    // honest outputs: only interior nodes are scored
    const lo = Math.min(...keep.map((i) => this.alphas[i]));
    const hi = Math.max(...keep.map((i) => this.alphas[i]));
    const interior = keep.flatMap((i, j) => (this.alphas[i] > lo && this.alphas[i] < hi ? [j] : []));
    const out = new Float64Array(groups);
    for (let g = 0; g < groups; g++) {
      let s = 0;
      for (const j of interior) s += rows[j][g];
      out[g] = s / interior.length / (scale[g] + 1e-12);
    }
    return out;
  }

  evaluationPatterns(): Availability[] {
    const out: boolean[][] = [];
    for (let m = 0; m <= this.n - this.k; m++) out.push(...patternsWithMissing(this.n, m));
    return out;
  }

  modules(): Map<string, Module> {
    return new Map();
  }

  config(): CodeConfig {
    const c: CodeConfig = { family: this.family, k: this.k, r: this.r };
    if (this.byzantine) {
      c.byzantine = this.byzantine;
      c.threshold = this.threshold;
    }
    return c;
  }
}

registerCodeFamily('berrut', (c) => {
  const byzantine = c.byzantine === undefined ? 0 : Number(c.byzantine);
  const threshold = c.threshold === undefined ? 4 : Number(c.threshold);
  return new BerrutCode({ k: c.k, n: c.k + c.r, byzantine, threshold });
});
