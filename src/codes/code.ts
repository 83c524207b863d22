// The code abstraction shared by every code family, by training, evaluation and serving.
//
// A code groups k queries X_1..X_k ("a coding group"), encodes them into n >= k coded
// queries, each tagged with the function a worker must run on it, and decodes the k
// outputs F(X_1)..F(X_k) from any decodable subset of the n worker outputs. Systematic
// codes (parity models, learned codes) send the k originals unchanged to base-model
// workers and add r = n - k parity queries; non-systematic codes (polynomial codes)
// encode all n. Everything is batched: G coding groups at a time.
//
// Shapes: the encoder takes x [G, k, ...queryShape]; coded query i carries inputs whose
// first dimension is G; worker outputs are [G, ...outputShape]; decode returns k tensors
// [G, ...outputShape]. One decode call handles one erasure pattern for all G groups.
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';

/** What a worker must compute on a coded query. */
export type WorkerFunction =
  /** the deployed base model F */
  | { kind: 'base' }
  /** the j-th parity model F_P (ParM) */
  | { kind: 'parity'; index: number }
  /** a family-specific worker network (e.g. polynomial codes' H), by name and index */
  | { kind: 'worker'; name: string; index: number };

export interface CodedQuery {
  fn: WorkerFunction;
  /** inputs[0] is the main input; further entries are side inputs (e.g. coefficient maps) */
  inputs: Tensor[];
}

/** Which of the n worker outputs arrived (true) or are late / lost (false). */
export type Availability = readonly boolean[];

export interface Decoded {
  /** k outputs [G, ...outputShape] in query order */
  outputs: Tensor[];
  /** per query: true when outputs[i] is a reconstruction, false when it is F(X_i) itself */
  reconstructed: boolean[];
  /** family-specific diagnostics (e.g. the condition number of the solved system) */
  info?: Record<string, number>;
}

export class UndecodableError extends Error {
  constructor(code: string, available: Availability, why: string) {
    super(`${code} cannot decode with outputs [${available.map((a) => (a ? '1' : '0')).join('')}] available: ${why}`);
    this.name = 'UndecodableError';
  }
}

export interface Code {
  /** family and parameters, e.g. "addition(k=2)" */
  readonly name: string;
  readonly family: string;
  readonly k: number;
  /** n - k: how many extra workers the code uses */
  readonly r: number;
  readonly n: number;
  /** the first k coded queries are the originals for base-model workers */
  readonly systematic: boolean;
  /**
   * Decoding is approximate and improves with every further output (Berrut): a server waits
   * for all n outputs until its decode deadline instead of decoding from the first decodable
   * subset. Absent/false: any decodable subset decodes equally well (Lagrange: exact from R).
   */
  readonly approximateDecoding?: boolean;

  /** Encode G coding groups x [G, k, ...queryShape] into n coded queries. */
  encode(x: Tensor): CodedQuery[];

  /**
   * Decode from the n worker outputs (null where unavailable). For systematic codes an
   * available original is returned as is (reconstructed: false).
   * Throws UndecodableError when canDecode(available) is false.
   */
  decode(outputs: readonly (Tensor | null)[]): Decoded;

  /** Whether decode() can produce all k outputs from this availability pattern. */
  canDecode(available: Availability): boolean;

  /**
   * The erasure patterns evaluation reports on: every decodable pattern in which at least
   * one data output needs reconstructing (systematic codes), or every decodable pattern
   * (non-systematic codes), in a stable order.
   */
  evaluationPatterns(): Availability[];

  /** Trainable or stateful parts by name (encoders, decoders, coefficient networks); empty for fixed codes. */
  modules(): Map<string, Module>;

  /**
   * Family-specific worker networks by name, then index: what a coded query whose function is
   * { kind: 'worker', name, index } runs (e.g. the Lagrange codes' H). Absent when the code's
   * workers are only the base model and parity models. Model instances serve these.
   */
  workerModules?(): Map<string, Module[]>;

  /** JSON-serialisable parameters that rebuild this code with codeFromConfig(). */
  config(): CodeConfig;
}

export interface CodeConfig {
  family: string;
  k: number;
  r: number;
  [key: string]: unknown;
}

// ---------------------------------------------------------------------------
// erasure patterns

/** Every availability pattern over n slots with exactly `missing` false entries, in lexicographic order of the missing indices. */
export function patternsWithMissing(n: number, missing: number): boolean[][] {
  const out: boolean[][] = [];
  const idx: number[] = [];
  const rec = (start: number) => {
    if (idx.length === missing) {
      const p = Array<boolean>(n).fill(true);
      for (const i of idx) p[i] = false;
      out.push(p);
      return;
    }
    for (let i = start; i < n; i++) {
      idx.push(i);
      rec(i + 1);
      idx.pop();
    }
  };
  if (missing >= 0 && missing <= n) rec(0);
  return out;
}

/**
 * For a systematic code with k data and r parity slots: every pattern with 1..r missing
 * outputs of which at least one is a data output (all-parity erasures need no decoding).
 * Count: sum over m = 1..r of C(k + r, m) - C(r, m).
 */
export function systematicEvaluationPatterns(k: number, r: number, canDecode: (a: Availability) => boolean = () => true): boolean[][] {
  const out: boolean[][] = [];
  for (let m = 1; m <= r; m++) {
    for (const p of patternsWithMissing(k + r, m)) {
      if (p.slice(0, k).every(Boolean)) continue;
      if (canDecode(p)) out.push(p);
    }
  }
  return out;
}

/** Indices of the missing entries of a pattern. */
export function missingIndices(a: Availability): number[] {
  const out: number[] = [];
  a.forEach((v, i) => {
    if (!v) out.push(i);
  });
  return out;
}

export function availabilityOf(outputs: readonly (Tensor | null)[]): boolean[] {
  return outputs.map((o) => o !== null);
}

/** Check an encoder input [G, k, ...] against a code, with a clear error. */
export function checkGroupInput(code: Pick<Code, 'name' | 'k'>, x: Tensor): number[] {
  const s = x.shape;
  if (s.length < 2 || s[1] !== code.k) {
    throw new RangeError(`${code.name}: expected coding groups shaped [G, ${code.k}, ...], got [${s.join(', ')}]`);
  }
  return s;
}

/** Check decode() input length, with a clear error. */
export function checkOutputs(code: Pick<Code, 'name' | 'n'>, outputs: readonly (Tensor | null)[]): void {
  if (outputs.length !== code.n)
    throw new RangeError(`${code.name}: decode() takes ${code.n} outputs (null where missing), got ${outputs.length}`);
}
