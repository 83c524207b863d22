// The general linear systematic code for parity models (ParM): k data queries go unchanged to
// the base model F, and r parity queries P_j = sum_i a_ji X_i go to parity models F_P[j],
// each trained towards sum_i a_ji F(X_i). The decoder treats every available parity output
// as that linear combination and solves for the missing data outputs: with m missing and
// |J| >= m parities available it solves A[J, M] u = b (least squares when |J| > m), where
// b_j = F_P[j](P_j) - sum over available i of a_ji F(X_i). Any m <= r missing data outputs
// are decodable because every square submatrix of the coefficient matrix is invertible.
//
// Default coefficients: a Cauchy matrix 1 / (x_j - y_i) with interleaved nodes x_j = 2j + 1,
// y_i = 2i (mixed signs keep the solves well conditioned), its columns scaled so that the
// first row is all ones and every further row scaled to a largest magnitude of 1. Scaling
// rows and columns by non-zero factors keeps every square submatrix invertible. For r = 1
// this is exactly the addition code (all-ones).
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';
import { registerCodeFamily } from './family-table.js';
import {
  UndecodableError,
  availabilityOf,
  checkGroupInput,
  checkOutputs,
  missingIndices,
  systematicEvaluationPatterns,
  type Availability,
  type Code,
  type CodeConfig,
  type CodedQuery,
  type Decoded,
} from './code.js';
import { conditionNumber, leftInverse, type Matrix } from './small-matrix.js';

/** The default r x k coefficient matrix (see the file comment). */
export function cauchyCoefficients(k: number, r: number): Matrix {
  const a: Matrix = Array.from({ length: r }, (_, j) => Array.from({ length: k }, (_, i) => (1 / (2 * j + 1 - 2 * i)) * (1 - 2 * i)));
  for (let j = 1; j < r; j++) {
    const m = Math.max(...a[j].map(Math.abs));
    a[j] = a[j].map((v) => v / m);
  }
  return a;
}

/** Check a coefficient matrix: r x k finite numbers with every square submatrix invertible. */
export function checkCoefficients(a: Matrix, k: number, r: number): void {
  if (
    !Array.isArray(a) ||
    a.length !== r ||
    a.some((row) => !Array.isArray(row) || row.length !== k || row.some((v) => typeof v !== 'number' || !Number.isFinite(v)))
  ) {
    throw new RangeError(`linear code: coefficients must be an r x k = ${r} x ${k} matrix of finite numbers`);
  }
  const rows = [...Array(r).keys()];
  const cols = [...Array(k).keys()];
  const subsets = (xs: number[], m: number): number[][] =>
    m === 0 ? [[]] : xs.flatMap((x, i) => subsets(xs.slice(i + 1), m - 1).map((s) => [x, ...s]));
  for (let m = 1; m <= Math.min(k, r); m++) {
    for (const rs of subsets(rows, m)) {
      for (const cs of subsets(cols, m)) {
        const sub = rs.map((j) => cs.map((i) => a[j][i]));
        if (!Number.isFinite(conditionNumber(sub)) || conditionNumber(sub) > 1e10) {
          throw new RangeError(
            `linear code: the coefficient submatrix on parity rows [${rs}] and data columns [${cs}] is singular; some erasure patterns could not be decoded`,
          );
        }
      }
    }
  }
}

export interface LinearCodeOptions {
  k: number;
  r: number;
  /** r x k coefficients (default: cauchyCoefficients(k, r)) */
  coefficients?: Matrix;
}

export class LinearCode implements Code {
  readonly family: string = 'linear';
  readonly systematic = true;
  readonly k: number;
  readonly r: number;
  readonly n: number;
  readonly coefficients: Matrix;
  private readonly plans = new Map<string, { weights: number[][]; cond: number }>();

  constructor(o: LinearCodeOptions) {
    if (!Number.isInteger(o.k) || o.k < 1) throw new RangeError(`linear code: k must be a positive integer, got ${o.k}`);
    if (!Number.isInteger(o.r) || o.r < 1) throw new RangeError(`linear code: r must be a positive integer, got ${o.r}`);
    this.k = o.k;
    this.r = o.r;
    this.n = o.k + o.r;
    this.coefficients = o.coefficients ?? cauchyCoefficients(o.k, o.r);
    checkCoefficients(this.coefficients, o.k, o.r);
  }

  get name(): string {
    return `${this.family}(k=${this.k}, r=${this.r})`;
  }

  /** The j-th parity query's input from the k queries x [G, k, ...]. */
  protected parityInput(x: Tensor, j: number): Tensor {
    const a = this.coefficients[j];
    let acc: Tensor | null = null;
    for (let i = 0; i < this.k; i++) {
      const xi = x.select(1, i);
      const term = a[i] === 1 ? xi : xi.mul(a[i]);
      if (term !== xi) xi.dispose();
      if (acc === null) acc = term;
      else {
        const next: Tensor = acc.add(term);
        acc.dispose();
        term.dispose();
        acc = next;
      }
    }
    return acc!;
  }

  encode(x: Tensor): CodedQuery[] {
    checkGroupInput(this, x);
    const out: CodedQuery[] = [];
    for (let i = 0; i < this.k; i++) out.push({ fn: { kind: 'base' }, inputs: [x.select(1, i)] });
    for (let j = 0; j < this.r; j++) out.push({ fn: { kind: 'parity', index: j }, inputs: [this.parityInput(x, j)] });
    return out;
  }

  /** What parity model j is trained to output, from the base outputs [G, k, ...] of the group's queries. */
  parityTarget(baseOutputs: Tensor, j: number): Tensor {
    return this.parityInput(baseOutputs, j);
  }

  canDecode(available: Availability): boolean {
    if (available.length !== this.n) return false;
    const missingData = available.slice(0, this.k).filter((a) => !a).length;
    const parities = available.slice(this.k).filter(Boolean).length;
    return missingData <= parities;
  }

  /**
   * For a pattern: the coefficient of each available output (data first, then parity) in
   * each missing data output's reconstruction, and the condition number of the solved system.
   */
  decodePlan(available: Availability): { missing: number[]; weights: number[][]; cond: number } {
    const key = available.map((a) => (a ? '1' : '0')).join('');
    const missing = missingIndices(available.slice(0, this.k));
    const cached = this.plans.get(key);
    if (cached) return { missing, ...cached };
    const parities = [...Array(this.r).keys()].filter((j) => available[this.k + j]);
    const sys = parities.map((j) => missing.map((i) => this.coefficients[j][i]));
    const cond = conditionNumber(sys);
    const w = leftInverse(sys); // m x |J|: u = w b
    // b_j = P_j - sum over available data i of a_ji F(X_i)
    const weights = missing.map((_, mi) => {
      const row = Array<number>(this.n).fill(0);
      parities.forEach((j, ji) => {
        row[this.k + j] += w[mi][ji];
        for (let i = 0; i < this.k; i++) if (available[i]) row[i] -= w[mi][ji] * this.coefficients[j][i];
      });
      return row;
    });
    this.plans.set(key, { weights, cond });
    return { missing, weights, cond };
  }

  decode(outputs: readonly (Tensor | null)[]): Decoded {
    checkOutputs(this, outputs);
    const available = availabilityOf(outputs);
    if (!this.canDecode(available)) {
      const md = available.slice(0, this.k).filter((a) => !a).length;
      const ap = available.slice(this.k).filter(Boolean).length;
      throw new UndecodableError(this.name, available, `${md} data outputs are missing but only ${ap} parity outputs arrived`);
    }
    const result: Tensor[] = [];
    const reconstructed = Array<boolean>(this.k).fill(false);
    if (available.slice(0, this.k).every(Boolean)) {
      return { outputs: outputs.slice(0, this.k).map((t) => t!.share()), reconstructed };
    }
    const plan = this.decodePlan(available);
    for (let i = 0; i < this.k; i++) {
      const mi = plan.missing.indexOf(i);
      if (mi < 0) {
        result.push(outputs[i]!.share());
        continue;
      }
      reconstructed[i] = true;
      let acc: Tensor | null = null;
      plan.weights[mi].forEach((c, t) => {
        if (c === 0 || outputs[t] === null) return;
        const term = outputs[t]!.mul(c);
        if (acc === null) acc = term;
        else {
          const next: Tensor = (acc as Tensor).add(term);
          (acc as Tensor).dispose();
          term.dispose();
          acc = next;
        }
      });
      result.push(acc!);
    }
    return { outputs: result, reconstructed, info: { conditionNumber: plan.cond } };
  }

  evaluationPatterns(): Availability[] {
    return systematicEvaluationPatterns(this.k, this.r, (a) => this.canDecode(a));
  }

  modules(): Map<string, Module> {
    return new Map();
  }

  config(): CodeConfig {
    return { family: this.family, k: this.k, r: this.r, coefficients: this.coefficients };
  }
}

/** Check a config's coefficients field (optional) for a linear-family code. */
export function coefficientsFromConfig(c: CodeConfig): Matrix | undefined {
  if (c.coefficients === undefined) return undefined;
  if (!Array.isArray(c.coefficients)) throw new RangeError('linear code config: coefficients must be an r x k array of numbers');
  return c.coefficients as Matrix;
}

registerCodeFamily('linear', (c) => new LinearCode({ k: c.k, r: c.r, coefficients: coefficientsFromConfig(c) }));
