// Interpolation for the polynomial code families: evaluation points, barycentric Lagrange
// and Berrut rational interpolation weights, and applying a weight matrix to a list of
// batched tensors. The weights are computed in float64 in JS (they are small: targets x
// nodes) and only the final combination runs in the engine.
import { tidy } from '../engine/scope.js';
import { stack } from '../engine/ops.js';
import { tensor, type Tensor } from '../engine/tensor.js';

/** Chebyshev points of the first kind on [-1, 1]: cos((2j + 1) pi / (2n)), j = 0..n-1 (strictly decreasing). */
export function chebyshevFirstKind(n: number): number[] {
  checkCount(n, 'chebyshevFirstKind');
  return Array.from({ length: n }, (_, j) => Math.cos(((2 * j + 1) * Math.PI) / (2 * n)));
}

/** Chebyshev points of the second kind (extrema) on [-1, 1]: cos(j pi / (n - 1)), j = 0..n-1; [0] when n = 1. */
export function chebyshevSecondKind(n: number): number[] {
  checkCount(n, 'chebyshevSecondKind');
  if (n === 1) return [0];
  return Array.from({ length: n }, (_, j) => Math.cos((j * Math.PI) / (n - 1)));
}

function checkCount(n: number, what: string): void {
  if (!(Number.isInteger(n) && n >= 1)) throw new RangeError(`${what}: need a positive integer number of points, got ${n}`);
}

function checkNodes(nodes: readonly number[], what: string): void {
  if (nodes.length === 0) throw new RangeError(`${what}: no interpolation nodes`);
  for (const x of nodes) if (!Number.isFinite(x)) throw new RangeError(`${what}: node ${x} is not finite`);
  const sorted = [...nodes].sort((a, b) => a - b);
  for (let i = 1; i < sorted.length; i++) {
    if (sorted[i] === sorted[i - 1]) throw new RangeError(`${what}: nodes must be distinct, ${sorted[i]} repeats`);
  }
}

/** Barycentric weights of polynomial (Lagrange) interpolation: w_j = 1 / prod_{m != j} (x_j - x_m), rescaled by max |w|. */
export function lagrangeWeights(nodes: readonly number[]): number[] {
  checkNodes(nodes, 'lagrangeWeights');
  const w = nodes.map((xj, j) => {
    let p = 1;
    nodes.forEach((xm, m) => {
      if (m !== j) p *= xj - xm;
    });
    return 1 / p;
  });
  // the barycentric formula is invariant to a common factor; rescaling avoids overflow for many nodes
  const s = Math.max(...w.map(Math.abs));
  return w.map((v) => v / s);
}

/**
 * Berrut's weights: (-1)^i with i the node's rank in increasing order (so the interpolant
 * has no real poles whatever the node spacing). Returned in the nodes' given order.
 */
export function berrutWeights(nodes: readonly number[]): number[] {
  checkNodes(nodes, 'berrutWeights');
  const order = nodes.map((x, j) => [x, j] as const).sort((a, b) => a[0] - b[0]);
  const w = Array<number>(nodes.length);
  order.forEach(([, j], rank) => {
    w[j] = rank % 2 === 0 ? 1 : -1;
  });
  return w;
}

/**
 * The barycentric interpolation matrix M [targets x nodes]: the interpolant through
 * (nodes[j], f_j) evaluated at targets[t] is sum_j M[t][j] f_j, with
 * M[t][j] = (w_j / (t - x_j)) / sum_m w_m / (t - x_m); a target equal to a node gets that
 * node's value exactly. With Lagrange weights this is the polynomial interpolant (the
 * "second" barycentric form, stable to evaluate); with Berrut weights, Berrut's rational one.
 */
export function barycentricMatrix(nodes: readonly number[], weights: readonly number[], targets: readonly number[]): number[][] {
  if (weights.length !== nodes.length) throw new RangeError(`barycentricMatrix: ${weights.length} weights for ${nodes.length} nodes`);
  return targets.map((t) => {
    if (!Number.isFinite(t)) throw new RangeError(`barycentricMatrix: target ${t} is not finite`);
    const hit = nodes.indexOf(t);
    if (hit >= 0) return nodes.map((_, j) => (j === hit ? 1 : 0));
    const terms = nodes.map((x, j) => weights[j] / (t - x));
    const den = terms.reduce((a, b) => a + b, 0);
    if (den === 0 || !Number.isFinite(den)) throw new RangeError(`barycentricMatrix: degenerate denominator at target ${t}`);
    return terms.map((v) => v / den);
  });
}

/** Polynomial interpolation matrix through the nodes (degree nodes.length - 1), evaluated at the targets. */
export function lagrangeMatrix(nodes: readonly number[], targets: readonly number[]): number[][] {
  return barycentricMatrix(nodes, lagrangeWeights(nodes), targets);
}

/** Berrut rational interpolation matrix through the nodes, evaluated at the targets. */
export function berrutMatrix(nodes: readonly number[], targets: readonly number[]): number[][] {
  return barycentricMatrix(nodes, berrutWeights(nodes), targets);
}

/**
 * out[t] = sum_j M[t][j] * values[j] for same-shaped tensors values[j] (any shape); returns
 * targets.length tensors of that shape. Runs as one matrix product.
 */
export function combine(matrix: readonly (readonly number[])[], values: readonly Tensor[]): Tensor[] {
  if (values.length === 0) throw new RangeError('combine: no values');
  for (const row of matrix)
    if (row.length !== values.length) throw new RangeError(`combine: matrix rows have ${row.length} entries for ${values.length} values`);
  const shape = values[0].shape;
  for (const v of values) {
    if (v.shape.join(',') !== shape.join(','))
      throw new RangeError(`combine: values have different shapes [${shape.join(', ')}] and [${v.shape.join(', ')}]`);
  }
  return tidy(() => {
    const flat = stack(
      values.map((v) => v.reshape([1, -1])),
      0,
    ).reshape([values.length, -1]);
    const m = tensor(Float32Array.from(matrix.flat()), [matrix.length, values.length], { dtype: flat.dtype, device: flat.device });
    const out = m.matmul(flat);
    return Array.from({ length: matrix.length }, (_, t) =>
      out
        .select(0, t)
        .reshape([...shape])
        .contiguous(),
    );
  });
}

/**
 * Per-group combination: weights [G][targets][nodes] (a different matrix for each of the G
 * groups), values: nodes tensors [G, ...]; returns targets tensors [G, ...].
 */
export function combinePerGroup(weights: readonly (readonly (readonly number[])[])[], values: readonly Tensor[]): Tensor[] {
  if (values.length === 0) throw new RangeError('combinePerGroup: no values');
  const shape = values[0].shape;
  const g = shape[0];
  if (weights.length !== g) throw new RangeError(`combinePerGroup: ${weights.length} weight matrices for ${g} groups`);
  const targets = weights[0]?.length ?? 0;
  const data = new Float32Array(g * targets * values.length);
  weights.forEach((m, gi) => {
    if (m.length !== targets) throw new RangeError('combinePerGroup: weight matrices differ in size');
    m.forEach((row, t) => {
      if (row.length !== values.length)
        throw new RangeError(`combinePerGroup: rows have ${row.length} entries for ${values.length} values`);
      row.forEach((v, j) => (data[(gi * targets + t) * values.length + j] = v));
    });
  });
  return tidy(() => {
    const y = stack(
      values.map((v) => v.reshape([g, -1])),
      1,
    ); // [G, nodes, D]
    const w = tensor(data, [g, targets, values.length], { dtype: y.dtype, device: y.device });
    const out = w.matmul(y); // [G, targets, D]
    return Array.from({ length: targets }, (_, t) =>
      out
        .select(1, t)
        .reshape([...shape])
        .contiguous(),
    );
  });
}
