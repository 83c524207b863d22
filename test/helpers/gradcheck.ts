// Finite-difference gradient checking for the engine's tests.
//
// gradcheck(f, inputs) compares the analytic vector-Jacobian product of f() (from
// grad() in src/engine/autograd.ts, seeded with a fixed pseudo-random cotangent w) with
// central differences of <w, f()> in float64, element by element. f is a closure that
// reads the inputs (plain tensors or a module's parameters); the helper perturbs the
// inputs in place, so the same closure serves ops and modules.
import { Rng } from '../../src/data/rng.js';
import assert from 'node:assert/strict';
import { grad, liveTensors, noGrad, tensor, tidy, type Tensor } from '../../src/index.js';

export interface GradcheckOptions {
  /** finite-difference step (default 1e-6) */
  eps?: number;
  /** relative tolerance (default 1e-5) */
  rtol?: number;
  /** absolute tolerance (default 1e-7) */
  atol?: number;
  /** seed of the cotangent w (default 7) */
  seed?: number;
  /** allow an input whose gradient is identically zero (default: fail, the check would be vacuous) */
  allowZeroGrad?: boolean;
  /** check that f leaves no native handle behind (default true) */
  checkLeaks?: boolean;
}

/** Deterministic uniform numbers in [0, 1), independent of libtorch's generator. */
export function prng(seed: number): () => number {
  const rng = new Rng(seed);
  return () => rng.float();
}

function float64Data(t: Tensor, what: string): Float64Array {
  const d = t.data();
  assert.ok(d instanceof Float64Array, `${what}: expected float64 data, got dtype ${t.dtype}`);
  return d;
}

/**
 * Check d<w, f()>/d(input) for every input against central differences.
 * Inputs must be float64 leaves with requiresGrad set; f must be deterministic.
 */
export function gradcheck(f: () => Tensor, inputs: Tensor[], o: GradcheckOptions = {}): void {
  const eps = o.eps ?? 1e-6;
  const rtol = o.rtol ?? 1e-5;
  const atol = o.atol ?? 1e-7;
  assert.ok(inputs.length > 0, 'gradcheck needs at least one input');
  inputs.forEach((x, k) => {
    assert.equal(x.dtype, 'float64', `gradcheck input ${k} must be float64`);
    assert.ok(x.requiresGrad, `gradcheck input ${k} must require grad`);
    assert.ok(x.isLeaf, `gradcheck input ${k} must be a leaf`);
  });
  const before = liveTensors();

  // analytic: vector-Jacobian product with a fixed cotangent w of f()'s shape
  let outShape: number[] = [];
  let w = new Float64Array(0);
  const analytic = tidy(() => {
    const y = f();
    assert.equal(y.dtype, 'float64', 'gradcheck: f() must return float64');
    assert.ok(y.requiresGrad, 'gradcheck: f() does not depend on the inputs through autograd');
    outShape = y.shape;
    const rnd = prng(o.seed ?? 7);
    w = Float64Array.from({ length: y.size }, () => 2 * rnd() - 1);
    const wt = tensor(w, outShape, { dtype: 'float64' });
    const gs = grad([y], inputs, { gradOutputs: [wt] });
    return gs.map((g, k) => {
      assert.ok(g !== null, `gradcheck: no gradient for input ${k}`);
      assert.deepEqual(g.shape, inputs[k].shape, `gradcheck: gradient ${k} has the wrong shape`);
      return float64Data(g, `gradient ${k}`);
    });
  });

  // numeric: central differences of <w, f()>, inputs perturbed in place
  const objective = (): number =>
    tidy(() => {
      const y = f();
      assert.deepEqual(y.shape, outShape, 'gradcheck: f() changed its output shape');
      const d = float64Data(y, 'f()');
      let s = 0;
      let c = 0; // Kahan summation: keep the objective's rounding far below eps * atol
      for (let i = 0; i < d.length; i++) {
        const term = d[i] * w[i] - c;
        const next = s + term;
        c = next - s - term;
        s = next;
      }
      return s;
    });
  const numeric = noGrad(() =>
    inputs.map((x) => {
      const orig = float64Data(x, 'input');
      const work = Float64Array.from(orig);
      const shape = x.shape;
      const set = (): void => {
        tidy(() => {
          x.copy_(tensor(work, shape, { dtype: 'float64' }));
        });
      };
      const out = new Float64Array(orig.length);
      for (let i = 0; i < orig.length; i++) {
        work[i] = orig[i] + eps;
        set();
        const plus = objective();
        work[i] = orig[i] - eps;
        set();
        const minus = objective();
        work[i] = orig[i];
        out[i] = (plus - minus) / (2 * eps);
      }
      set();
      return out;
    }),
  );

  const problems: string[] = [];
  inputs.forEach((_, k) => {
    const a = analytic[k];
    const n = numeric[k];
    let maxAbs = 0;
    let bad = 0;
    for (let i = 0; i < a.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(n[i]));
      const ok = Number.isFinite(a[i]) && Math.abs(a[i] - n[i]) <= atol + rtol * Math.abs(n[i]);
      if (!ok) {
        if (bad < 5) problems.push(`input ${k} [${i}]: analytic ${a[i]}, numeric ${n[i]}, diff ${Math.abs(a[i] - n[i]).toExponential(2)}`);
        bad++;
      }
    }
    if (bad > 5) problems.push(`input ${k}: ${bad - 5} more mismatches`);
    if (!o.allowZeroGrad && maxAbs < 1e-6) problems.push(`input ${k}: gradient is identically zero (vacuous check)`);
  });
  if (problems.length > 0) assert.fail(`gradcheck failed:\n  ${problems.join('\n  ')}`);
  if (o.checkLeaks ?? true) assert.equal(liveTensors(), before, 'gradcheck: f() leaked native tensor handles');
}

/** A float64 leaf that requires grad, with the given values. */
export function leaf(values: Float64Array | number[], shape: number[]): Tensor {
  return tensor(Float64Array.from(values), shape, { dtype: 'float64', requiresGrad: true });
}

const numel = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Normal-ish values from a seeded JS generator (Box-Muller), as a float64 leaf. */
export function randLeaf(shape: number[], seed: number, { scale = 1, shift = 0 } = {}): Tensor {
  const rnd = prng(seed);
  const v = Float64Array.from({ length: numel(shape) }, () => {
    const u = 1 - rnd();
    return shift + scale * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rnd());
  });
  return leaf(v, shape);
}

/** Uniform values in [lo, hi) as a float64 leaf (e.g. positive inputs for log / sqrt). */
export function uniformLeaf(shape: number[], seed: number, lo: number, hi: number): Tensor {
  const rnd = prng(seed);
  return leaf(
    Float64Array.from({ length: numel(shape) }, () => lo + (hi - lo) * rnd()),
    shape,
  );
}

/** Values at least `margin` away from zero, random signs (relu, abs, division). */
export function awayFromZeroLeaf(shape: number[], seed: number, margin = 0.2): Tensor {
  const rnd = prng(seed);
  return leaf(
    Float64Array.from({ length: numel(shape) }, () => (rnd() < 0.5 ? -1 : 1) * (margin + rnd())),
    shape,
  );
}

/**
 * Pairwise-distinct values (a shuffled grid with spacing `gap` plus a little jitter): no
 * ties for max / maxPool / amax, far beyond the finite-difference step.
 */
export function distinctLeaf(shape: number[], seed: number, gap = 0.1): Tensor {
  const rnd = prng(seed);
  const n = numel(shape);
  const v = Float64Array.from({ length: n }, (_, i) => (i - n / 2) * gap + 0.2 * gap * rnd());
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [v[i], v[j]] = [v[j], v[i]];
  }
  return leaf(v, shape);
}
