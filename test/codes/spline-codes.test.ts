import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, stack, tidy, type Tensor } from '../../src/index.js';
import {
  BsplineCode,
  LetccCode,
  UndecodableError,
  bsplineFitMatrix,
  codeFromConfig,
  patternsWithMissing,
  smoothingSplineMatrix,
} from '../../src/codes/index.js';

const maxAbs = (t: Tensor): number => tidy(() => t.abs().max().item());
const apply = (m: number[][], nodes: number[], f: (x: number) => number) => m.map((row) => row.reduce((a, w, j) => a + w * f(nodes[j]), 0));
const nodes = [0.9, -0.8, -0.3, 0.1, 0.5, -1, 0.7];

test('smoothing-spline matrix: interpolates at lambda 0, keeps straight lines for every lambda, matches an independent implementation', () => {
  const cubic = (x: number) => 1 + x - 2 * x * x + 0.5 * x ** 3;
  const line = (x: number) => 2 - 3 * x;
  apply(smoothingSplineMatrix(nodes, nodes, 0), nodes, cubic).forEach((v, i) => assert.ok(Math.abs(v - cubic(nodes[i])) < 1e-12));
  const targets = [-1.2, -1, -0.5, 0, 0.33, 1, 1.3];
  for (const lambda of [0, 1e-3, 1, 1e6]) {
    apply(smoothingSplineMatrix(nodes, targets, lambda), nodes, line).forEach((v, i) =>
      assert.ok(Math.abs(v - line(targets[i])) < 1e-9, `lambda ${lambda} at ${targets[i]}: ${v}`),
    );
  }
  // reference values: scipy.interpolate.make_smoothing_spline(x, sin(x), lam = 7 * lambda) (its
  // objective is the sum of squares, ours the mean) and the natural interpolating spline, at 0.2 and 0.6
  const ref: [number, number[]][] = [
    [0, [0.19843126, 0.56507191]],
    [1e-3, [0.19404554, 0.55566459]],
    [0.1, [0.18507386, 0.54006049]],
  ];
  for (const [lambda, want] of ref) {
    apply(smoothingSplineMatrix(nodes, [0.2, 0.6], lambda), nodes, Math.sin).forEach((v, i) =>
      assert.ok(Math.abs(v - want[i]) < 1e-7, `lambda ${lambda}: ${v} vs ${want[i]}`),
    );
  }
  // huge lambda: the least-squares line
  const xs = nodes;
  const mx = xs.reduce((a, b) => a + b) / xs.length;
  const my = xs.map(Math.sin).reduce((a, b) => a + b) / xs.length;
  const slope = xs.reduce((a, x) => a + (x - mx) * (Math.sin(x) - my), 0) / xs.reduce((a, x) => a + (x - mx) ** 2, 0);
  assert.ok(Math.abs(apply(smoothingSplineMatrix(nodes, [0.3], 1e9), nodes, Math.sin)[0] - (my + slope * (0.3 - mx))) < 1e-6);
  assert.deepEqual(smoothingSplineMatrix([0.4], [0, 1], 0.1), [[1], [1]]);
  assert.throws(() => smoothingSplineMatrix([0.1, 0.1], [0], 0), /distinct/);
  assert.throws(() => smoothingSplineMatrix([0.1, 0.2], [0], -1), /lambda must be a finite number >= 0/);
});

test('B-spline fit matrix: interpolation reproduces cubics (also beyond the end nodes and with fewer basis functions), matches not-a-knot interpolation', () => {
  const cubic = (x: number) => 1 + x - 2 * x * x + 0.5 * x ** 3;
  const targets = [-1.2, -1, -0.5, 0, 0.33, 0.8, 1, 1.3];
  for (const basis of [undefined, 5, 4]) {
    apply(bsplineFitMatrix(nodes, targets, basis === undefined ? {} : { basis }), nodes, cubic).forEach((v, i) =>
      assert.ok(Math.abs(v - cubic(targets[i])) < 1e-9, `basis ${basis} at ${targets[i]}: ${v}`),
    );
  }
  // scipy.interpolate.make_interp_spline(x, sin(x)) (cubic, not-a-knot) at 0.2 and 0.6
  apply(bsplineFitMatrix(nodes, [0.2, 0.6]), nodes, Math.sin).forEach((v, i) =>
    assert.ok(Math.abs(v - [0.19865698, 0.56463607][i]) < 1e-7),
  );
  // local support: with 7 nodes, a value far from a target barely moves it (Berrut-like global weights would)
  const m = bsplineFitMatrix(
    Array.from({ length: 12 }, (_, i) => -1 + (2 * i) / 11),
    [-0.95],
  );
  assert.ok(Math.abs(m[0][11]) < 0.01, `weight of the farthest node: ${m[0][11]}`);
  // fewer nodes than 4: the polynomial through them
  apply(bsplineFitMatrix([0.1, 0.5, -0.4], [0, 2]), [0.1, 0.5, -0.4], (x) => 3 - x + x * x).forEach((v, i) =>
    assert.ok(Math.abs(v - (3 - [0, 2][i] + [0, 2][i] ** 2)) < 1e-12),
  );
  assert.deepEqual(bsplineFitMatrix([0.3], [0, 1]), [[1], [1]]);
  assert.throws(() => bsplineFitMatrix([0.1, 0.2], [0], { basis: 0 }), /basis must be a positive integer/);
});

/** F(x) = x + x^2 / 2 elementwise: a smooth low-degree polynomial */
const F = (t: Tensor) => t.square().mul(0.5).add(t);

function maxError(code: LetccCode | BsplineCode, x: Tensor, available: boolean[]): number {
  return tidy(() => {
    const outs = code.encode(x).map((q, i) => (available[i] ? F(q.inputs[0]) : null));
    const d = code.decode(outs);
    return Math.max(...d.outputs.map((o, k) => maxAbs(o.sub(F(x.select(1, k))))));
  });
}

test('LeTCC and B-spline codes reproduce a smooth polynomial F with error falling as N grows (one straggler)', () => {
  manualSeed(1);
  const x = randn([4, 3, 8]);
  for (const make of [(n: number) => new LetccCode({ k: 3, n, lambdaEnc: 0, lambdaDec: 0 }), (n: number) => new BsplineCode({ k: 3, n })]) {
    const errs = [8, 16, 32, 64].map((n) => {
      const code = make(n);
      return maxError(
        code,
        x,
        Array.from({ length: n }, (_, i) => i !== 1),
      );
    });
    for (let i = 1; i < errs.length; i++)
      assert.ok(
        errs[i] < errs[i - 1] / 2,
        `${make(4).family}: errors ${errs.map((e) => e.toExponential(2)).join(', ')} for N = 8, 16, 32, 64`,
      );
    assert.ok(errs[3] < 1e-3, `${make(4).family}: error ${errs[3]} at N = 64`);
  }
  x.dispose();
});

test('exact on data the spline spaces contain: LeTCC on collinear queries with a linear F (any lambda, any pattern); B-spline on cubic queries with F = identity', () => {
  // queries on a line in the data points beta_k: X_k = A + beta_k B; F linear: F(u) = 2u - 1
  for (const [lambdaEnc, lambdaDec] of [
    [0, 0],
    [0.01, 0.1],
    [1, 1e-4],
  ]) {
    const code = new LetccCode({ k: 4, n: 7, lambdaEnc, lambdaDec });
    tidy(() => {
      manualSeed(2);
      const A = randn([2, 5]);
      const B = randn([2, 5]);
      const xs = code.betas.map((b) => A.add(B.mul(b)));
      const X = stack(xs, 1);
      const outs = code.encode(X).map((q) => q.inputs[0].mul(2).sub(1));
      for (const p of code.evaluationPatterns()) {
        const d = code.decode(outs.map((o, i) => (p[i] ? o : null)));
        d.outputs.forEach((o, k) =>
          assert.ok(maxAbs(o.sub(xs[k].mul(2).sub(1))) < 1e-4, `${code.name} pattern ${p.map(Number).join('')} query ${k}`),
        );
      }
    });
  }
  // cubic in beta: X_k = sum_d beta_k^d C_d; B-spline encoder and decoder both reproduce cubics
  const code = new BsplineCode({ k: 4, n: 8, encoder: 'bspline' });
  tidy(() => {
    manualSeed(3);
    const C = [0, 1, 2, 3].map(() => randn([2, 3, 3]));
    const xs = code.betas.map((b) => C.reduce((a, c, d) => a.add(c.mul(b ** d)), C[0].mul(0)));
    const X = stack(xs, 1);
    const outs = code.encode(X).map((q) => q.inputs[0]);
    for (const p of code.evaluationPatterns()) {
      const d = code.decode(outs.map((o, i) => (p[i] ? o : null)));
      d.outputs.forEach((o, k) =>
        assert.ok(maxAbs(o.sub(xs[k])) < 1e-4, `${code.name} pattern ${p.map(Number).join('')} query ${k}: ${maxAbs(o.sub(xs[k]))}`),
      );
    }
  });
});

test('decoding from any subset: every pattern with up to N - K missing decodes all K answers (the decoder matrix of exactly the returned outputs); none returned is an UndecodableError', () => {
  for (const code of [new LetccCode({ k: 3, n: 6 }), new BsplineCode({ k: 3, n: 6 }), new BsplineCode({ k: 2, n: 5, basis: 3 })]) {
    tidy(() => {
      manualSeed(4);
      const x = randn([3, code.k, 2, 2]);
      const outs = code.encode(x).map((q) => F(q.inputs[0]));
      assert.equal(outs.length, code.n);
      const patterns = code.evaluationPatterns();
      let want = 0;
      for (let m = 0; m <= code.n - code.k; m++) want += patternsWithMissing(code.n, m).length;
      assert.equal(patterns.length, want);
      for (const p of patterns) {
        assert.ok(code.canDecode(p));
        const d = code.decode(outs.map((o, i) => (p[i] ? o : null)));
        assert.deepEqual(d.reconstructed, Array(code.k).fill(true));
        const idx = p.flatMap((a, i) => (a ? [i] : []));
        const m = code.decoding(idx);
        d.outputs.forEach((o, k) => {
          assert.deepEqual(o.shape, [3, 2, 2]);
          const ref = idx.reduce((a, i, j) => a.add(outs[i].mul(m[k][j])), outs[0].mul(0));
          assert.ok(maxAbs(o.sub(ref)) < 1e-4);
        });
      }
      const none = Array(code.n).fill(null);
      assert.equal(code.canDecode(none.map(() => false)), false);
      assert.throws(
        () => code.decode(none),
        (e: Error) => e instanceof UndecodableError && /no worker output arrived/.test(e.message),
      );
      assert.throws(() => code.decode(outs.slice(1)), /decode\(\) takes 6 outputs|decode\(\) takes 5 outputs/);
    });
  }
});

test('spline codes: configs round-trip through codeFromConfig; bad parameters are refused with the field named', () => {
  const l = codeFromConfig({ family: 'letcc', k: 2, r: 2, lambdaEnc: 0.01, lambdaDec: 0.001 }) as LetccCode;
  assert.equal(l.name, 'letcc(k=2, n=4, lambdaEnc=0.01, lambdaDec=0.001)');
  assert.deepEqual(codeFromConfig(l.config()).config(), l.config());
  const b = codeFromConfig({ family: 'bspline', k: 3, r: 3, encoder: 'bspline', basis: 4 }) as BsplineCode;
  assert.equal(b.name, 'bspline(k=3, n=6, encoder=bspline, basis=4)');
  assert.deepEqual(codeFromConfig(b.config()).config(), b.config());
  assert.equal(codeFromConfig({ family: 'bspline', k: 2, r: 1 }).approximateDecoding, true);
  assert.throws(
    () => codeFromConfig({ family: 'letcc', k: 2, r: 1, lambdaDec: -1 }),
    /letcc: lambdaDec must be a finite number >= 0, got -1/,
  );
  assert.throws(() => codeFromConfig({ family: 'letcc', k: 2, r: 1, lambdaEnc: 'x' }), /lambdaEnc must be a finite number >= 0/);
  assert.throws(() => codeFromConfig({ family: 'bspline', k: 2, r: 1, encoder: 'lagrange' }), /encoder must be one of berrut, bspline/);
  assert.throws(() => new LetccCode({ k: 3, n: 2 }), /n must be an integer >= k = 3/);
});
