// Spline fitting matrices for the spline code families (LeTCC, B-spline): every fit here is
// linear in the data values for fixed nodes, so each is returned as a matrix M [targets x
// nodes] (the fitted function at targets[t] is sum_j M[t][j] y_j), computed in float64 in JS
// (codes have a handful of nodes) and applied to tensors with one engine matrix product
// (interpolation.ts: combine).
//
// - smoothingSplineMatrix: the cubic smoothing spline, the minimiser over the second-order
//   Sobolev space of (1/m) sum_j (y_j - f(x_j))^2 + lambda * integral f''(t)^2 dt. Its solution
//   is the natural cubic spline with knots at the nodes (Reinsch 1967; Green & Silverman 1994,
//   ch. 2): fitted values g = (I + m lambda Q R^-1 Q^T)^-1 y and second derivatives
//   gamma = R^-1 Q^T g at the interior knots (zero at the ends); linear beyond the end knots.
//   lambda = 0 is the interpolating natural cubic spline; lambda -> infinity the least-squares line.
// - bsplineFitMatrix: least-squares fit of a cubic B-spline (local support) to the nodes; with
//   as many basis functions as nodes (the default) it interpolates, with the "not-a-knot" knot
//   vector (the interior knots are the nodes except the second and the second-to-last).
//   Fewer than 4 nodes: the degree drops to nodes - 1 (a polynomial through them).
import { inverse, matmul, transpose, type Matrix } from './small-matrix.js';

function checkNodes(nodes: readonly number[], what: string): void {
  if (nodes.length === 0) throw new RangeError(`${what}: no nodes`);
  for (const x of nodes) if (!Number.isFinite(x)) throw new RangeError(`${what}: node ${x} is not finite`);
  const s = [...nodes].sort((a, b) => a - b);
  for (let i = 1; i < s.length; i++) if (s[i] === s[i - 1]) throw new RangeError(`${what}: nodes must be distinct, ${s[i]} repeats`);
}

function checkTargets(targets: readonly number[], what: string): void {
  for (const t of targets) if (!Number.isFinite(t)) throw new RangeError(`${what}: target ${t} is not finite`);
}

/** Sort nodes increasing; returns the sorted values and, for each sorted position, the original index. */
function sorted(nodes: readonly number[]): { x: number[]; order: number[] } {
  const order = nodes.map((_, j) => j).sort((a, b) => nodes[a] - nodes[b]);
  return { x: order.map((j) => nodes[j]), order };
}

/** Re-index the columns of a matrix built on sorted nodes back to the nodes' given order. */
function unsortColumns(m: Matrix, order: readonly number[]): number[][] {
  return m.map((row) => {
    const out = Array<number>(order.length).fill(0);
    order.forEach((j, s) => (out[j] = row[s]));
    return out;
  });
}

/**
 * The cubic smoothing spline through (nodes[j], y_j) evaluated at targets, as a matrix
 * [targets x nodes]; lambda >= 0 weighs the roughness penalty integral f''^2 against the mean
 * squared residual. One node: the constant; two: the line through them.
 */
export function smoothingSplineMatrix(nodes: readonly number[], targets: readonly number[], lambda: number): number[][] {
  checkNodes(nodes, 'smoothingSplineMatrix');
  checkTargets(targets, 'smoothingSplineMatrix');
  if (!(Number.isFinite(lambda) && lambda >= 0))
    throw new RangeError(`smoothingSplineMatrix: lambda must be a finite number >= 0, got ${lambda}`);
  const m = nodes.length;
  if (m === 1) return targets.map(() => [1]);
  const { x, order } = sorted(nodes);
  const h = Array.from({ length: m - 1 }, (_, i) => x[i + 1] - x[i]);
  // G [m x m]: fitted values from y; Gam [m x m]: second derivatives at every knot (0 at the ends)
  let G: Matrix = Array.from({ length: m }, (_, i) => Array.from({ length: m }, (_, j) => (i === j ? 1 : 0)));
  let Gam: Matrix = Array.from({ length: m }, () => Array<number>(m).fill(0));
  if (m >= 3) {
    const q = m - 2;
    // Q [m x q], R [q x q] (Green & Silverman's notation, interior knots 2..m-1)
    const Q: Matrix = Array.from({ length: m }, () => Array<number>(q).fill(0));
    const R: Matrix = Array.from({ length: q }, () => Array<number>(q).fill(0));
    for (let c = 0; c < q; c++) {
      const j = c + 1; // knot index of this interior knot
      Q[j - 1][c] = 1 / h[j - 1];
      Q[j][c] = -1 / h[j - 1] - 1 / h[j];
      Q[j + 1][c] = 1 / h[j];
      R[c][c] = (h[j - 1] + h[j]) / 3;
      if (c + 1 < q) R[c][c + 1] = R[c + 1][c] = h[j] / 6;
    }
    const RinvQt = matmul(inverse(R), transpose(Q)); // [q x m]
    if (lambda > 0) {
      // (I + a Q R^-1 Q^T)^-1 = I - Q (R / a + Q^T Q)^-1 Q^T (Woodbury), a = m lambda: well
      // conditioned for any lambda (Q^T Q is positive definite)
      const a = m * lambda;
      const Qt = transpose(Q);
      const inner = matmul(Qt, Q).map((row, i) => row.map((v, j) => v + R[i][j] / a));
      const corr = matmul(matmul(Q, inverse(inner)), Qt);
      G = corr.map((row, i) => row.map((v, j) => (i === j ? 1 : 0) - v));
    }
    const interior = matmul(RinvQt, G); // [q x m]
    Gam = [Array<number>(m).fill(0), ...interior, Array<number>(m).fill(0)];
  }
  const rows = targets.map((t) => {
    const row = Array<number>(m).fill(0);
    if (t <= x[0] || t >= x[m - 1]) {
      // linear beyond the ends (the natural spline's second derivative vanishes there)
      const left = t <= x[0];
      const i = left ? 0 : m - 2;
      const at = left ? 0 : m - 1;
      const d = t - x[at];
      for (let j = 0; j < m; j++) {
        const slope = (G[i + 1][j] - G[i][j]) / h[i] + (left ? (-h[i] * Gam[1][j]) / 6 : (h[i] * Gam[m - 2][j]) / 6);
        row[j] = G[at][j] + d * (m === 2 ? (G[1][j] - G[0][j]) / h[0] : slope);
      }
      return row;
    }
    let i = 0;
    while (i < m - 2 && t > x[i + 1]) i++;
    const a = t - x[i];
    const b = x[i + 1] - t;
    for (let j = 0; j < m; j++) {
      row[j] = (a * G[i + 1][j] + b * G[i][j]) / h[i] - ((a * b) / 6) * ((1 + a / h[i]) * Gam[i + 1][j] + (1 + b / h[i]) * Gam[i][j]);
    }
    return row;
  });
  return unsortColumns(rows, order);
}

/** The B-spline basis functions of degree p that are non-zero on knot span s, evaluated at t (Piegl & Tiller A2.2; extends the span's polynomial beyond it). */
function basisOnSpan(knots: readonly number[], s: number, p: number, t: number): number[] {
  const N = Array<number>(p + 1).fill(0);
  const left = Array<number>(p + 1).fill(0);
  const right = Array<number>(p + 1).fill(0);
  N[0] = 1;
  for (let j = 1; j <= p; j++) {
    left[j] = t - knots[s + 1 - j];
    right[j] = knots[s + j] - t;
    let saved = 0;
    for (let r = 0; r < j; r++) {
      const tmp = N[r] / (right[r + 1] + left[j - r]);
      N[r] = saved + right[r + 1] * tmp;
      saved = left[j - r] * tmp;
    }
    N[j] = saved;
  }
  return N;
}

/** Row of the B-spline design matrix at t: count basis functions of degree p on the given knots. */
function designRow(knots: readonly number[], p: number, count: number, t: number): number[] {
  // the knot span [knots[s], knots[s + 1]) holding t, clamped to the first / last non-empty span
  let s = p;
  while (s < count - 1 && t >= knots[s + 1]) s++;
  const row = Array<number>(count).fill(0);
  basisOnSpan(knots, s, p, t).forEach((v, r) => (row[s - p + r] = v));
  return row;
}

export interface BsplineFitOptions {
  /** spline degree (default 3, cubic); lowered to nodes - 1 when there are fewer nodes */
  degree?: number;
  /**
   * basis functions (default: as many as nodes, i.e. interpolation); fewer gives a least-squares
   * fit with interior knots at evenly spaced node ranks
   */
  basis?: number;
}

/**
 * The least-squares B-spline fit to (nodes[j], y_j) evaluated at targets, as a matrix
 * [targets x nodes] (interpolation when basis = nodes, the default). Beyond the end nodes the
 * end pieces' polynomials are extended.
 */
export function bsplineFitMatrix(nodes: readonly number[], targets: readonly number[], o: BsplineFitOptions = {}): number[][] {
  checkNodes(nodes, 'bsplineFitMatrix');
  checkTargets(targets, 'bsplineFitMatrix');
  const degree = o.degree ?? 3;
  if (!(Number.isInteger(degree) && degree >= 0))
    throw new RangeError(`bsplineFitMatrix: degree must be a non-negative integer, got ${degree}`);
  const m = nodes.length;
  const basisWanted = o.basis ?? m;
  if (!(Number.isInteger(basisWanted) && basisWanted >= 1))
    throw new RangeError(`bsplineFitMatrix: basis must be a positive integer, got ${basisWanted}`);
  const count = Math.min(basisWanted, m);
  const p = Math.min(degree, count - 1);
  const { x, order } = sorted(nodes);
  // clamped knot vector: p + 1 copies of each end, count - p - 1 interior knots
  const interior: number[] = [];
  const q = count - p - 1;
  if (count === m) {
    // interpolation, "not-a-knot" style: odd degree, the nodes without the (p + 1) / 2 at each
    // end (cubic: x[2] .. x[m - 3]); even degree, midpoints between the nodes without p / 2 at each end
    const off = Math.floor((p + 1) / 2);
    for (let i = 0; i < q; i++) interior.push(p % 2 === 1 ? x[off + i] : (x[off + i] + x[off + i + 1]) / 2);
  } else {
    for (let i = 1; i <= q; i++) interior.push(x[Math.round((i * (m - 1)) / (q + 1))]);
  }
  const knots = [...Array<number>(p + 1).fill(x[0]), ...interior, ...Array<number>(p + 1).fill(x[m - 1])];
  const B = x.map((t) => designRow(knots, p, count, t)); // [m x count]
  const Bt = transpose(B);
  let coef: Matrix; // [count x m]: coefficients from the values
  try {
    coef = matmul(inverse(matmul(Bt, B)), Bt);
  } catch {
    throw new RangeError(
      `bsplineFitMatrix: the ${count} degree-${p} B-splines cannot be fitted to nodes [${x.map((v) => +v.toPrecision(4)).join(', ')}] (no node in some basis function's support); use fewer basis functions`,
    );
  }
  const E = targets.map((t) => designRow(knots, p, count, t)); // [targets x count]
  return unsortColumns(matmul(E, coef), order);
}
