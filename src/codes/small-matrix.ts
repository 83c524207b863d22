// Small dense linear algebra in float64 for decoders: a code's coefficient matrices have at
// most a handful of rows and columns, so solving them in JS is exact enough and cheap.
export type Matrix = number[][];

export function transpose(a: Matrix): Matrix {
  const rows = a.length;
  const cols = rows ? a[0].length : 0;
  return Array.from({ length: cols }, (_, j) => Array.from({ length: rows }, (_, i) => a[i][j]));
}

export function matmul(a: Matrix, b: Matrix): Matrix {
  const n = a.length;
  const m = b[0]?.length ?? 0;
  const inner = b.length;
  return Array.from({ length: n }, (_, i) =>
    Array.from({ length: m }, (_, j) => {
      let s = 0;
      for (let t = 0; t < inner; t++) s += a[i][t] * b[t][j];
      return s;
    }),
  );
}

/** Inverse of a square matrix by Gauss-Jordan elimination with partial pivoting; throws when singular. */
export function inverse(a: Matrix): Matrix {
  const n = a.length;
  const m = a.map((row, i) => [...row, ...Array.from({ length: n }, (_, j) => (i === j ? 1 : 0))]);
  const scale = Math.max(1e-300, ...a.flat().map(Math.abs));
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(m[r][c]) > Math.abs(m[p][c])) p = r;
    if (Math.abs(m[p][c]) <= 1e-12 * scale) throw new RangeError('singular matrix');
    [m[c], m[p]] = [m[p], m[c]];
    const d = m[c][c];
    for (let j = 0; j < 2 * n; j++) m[c][j] /= d;
    for (let r = 0; r < n; r++) {
      if (r === c || m[r][c] === 0) continue;
      const f = m[r][c];
      for (let j = 0; j < 2 * n; j++) m[r][j] -= f * m[c][j];
    }
  }
  return m.map((row) => row.slice(n));
}

/** Eigenvalues of a symmetric matrix (cyclic Jacobi rotations). */
export function symmetricEigenvalues(s: Matrix): number[] {
  const n = s.length;
  const a = s.map((r) => r.slice());
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let p = 0; p < n; p++) for (let q = p + 1; q < n; q++) off += a[p][q] * a[p][q];
    if (off < 1e-30) break;
    for (let p = 0; p < n; p++) {
      for (let q = p + 1; q < n; q++) {
        if (Math.abs(a[p][q]) < 1e-300) continue;
        const theta = (a[q][q] - a[p][p]) / (2 * a[p][q]);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const sn = t * c;
        for (let k = 0; k < n; k++) {
          const akp = a[k][p];
          const akq = a[k][q];
          a[k][p] = c * akp - sn * akq;
          a[k][q] = sn * akp + c * akq;
        }
        for (let k = 0; k < n; k++) {
          const apk = a[p][k];
          const aqk = a[q][k];
          a[p][k] = c * apk - sn * aqk;
          a[q][k] = sn * apk + c * aqk;
        }
      }
    }
  }
  return a.map((r, i) => r[i]);
}

/** 2-norm condition number of a (tall or square) matrix: largest over smallest singular value. */
export function conditionNumber(a: Matrix): number {
  const ev = symmetricEigenvalues(matmul(transpose(a), a)).map((v) => Math.max(0, v));
  const hi = Math.max(...ev);
  const lo = Math.min(...ev);
  return lo <= 0 ? Infinity : Math.sqrt(hi / lo);
}

/** The least-squares left inverse (A^T A)^-1 A^T of a full-column-rank matrix A. */
export function leftInverse(a: Matrix): Matrix {
  const at = transpose(a);
  return matmul(inverse(matmul(at, a)), at);
}
