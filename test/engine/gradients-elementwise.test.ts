// Finite-difference gradient checks (float64) for element-wise and matrix ops,
// including broadcasting and the scalar forms.
import { before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { add, div, manualSeed, matmul, mul, setNumThreads, sub, tidy, type Tensor } from '../../src/index.js';
import { awayFromZeroLeaf, gradcheck, leaf, prng, randLeaf, uniformLeaf } from '../helpers/gradcheck.js';

// Finite differences run thousands of tiny float64 ops: intra-op threads only add
// synchronisation there (and crawl when other processes hold the cores).
before(() => setNumThreads(1));
beforeEach(() => manualSeed(20240611));

describe('the gradcheck helper', () => {
  test('rejects a wrong analytic gradient and a vacuous check', () => {
    tidy(() => {
      const x = randLeaf([4], 99);
      // d/dx (stopgrad(x) * x) is x analytically but 2x numerically
      assert.throws(() => gradcheck(() => x.detach().mul(x), [x]), /gradcheck failed[\s\S]*analytic/);
      // a gradient that is zero everywhere proves nothing unless explicitly allowed
      assert.throws(() => gradcheck(() => x.mul(0), [x]), /identically zero/);
      gradcheck(() => x.mul(0), [x], { allowZeroGrad: true });
    });
  });
});

describe('add / sub / mul / div', () => {
  test('same shapes', () => {
    tidy(() => {
      const a = randLeaf([2, 3], 1);
      const b = awayFromZeroLeaf([2, 3], 2);
      gradcheck(() => a.add(b), [a, b]);
      gradcheck(() => a.sub(b), [a, b]);
      gradcheck(() => a.mul(b), [a, b]);
      gradcheck(() => a.div(b), [a, b]);
      gradcheck(() => add(a, b).mul(sub(a, b)), [a, b]);
      gradcheck(() => mul(a, b).add(div(a, b)), [a, b]);
    });
  });

  test('with alpha: a + alpha * b and a - alpha * b', () => {
    tidy(() => {
      const a = randLeaf([3, 2], 3);
      const b = randLeaf([3, 2], 4);
      gradcheck(() => a.add(b, 0.7), [a, b]);
      gradcheck(() => a.sub(b, -2.5), [a, b]);
    });
  });

  test('broadcasting [2,3] with [3], [2,1,3] with [4,1], [1] with [2,3]', () => {
    tidy(() => {
      const a = randLeaf([2, 3], 5);
      const row = awayFromZeroLeaf([3], 6);
      gradcheck(() => a.add(row), [a, row]);
      gradcheck(() => a.sub(row), [a, row]);
      gradcheck(() => a.mul(row), [a, row]);
      gradcheck(() => a.div(row), [a, row]);
      gradcheck(() => row.div(a.abs().add(0.5)), [a, row]);
      const c = randLeaf([2, 1, 3], 7);
      const d = awayFromZeroLeaf([4, 1], 8);
      gradcheck(() => c.add(d), [c, d]);
      gradcheck(() => c.sub(d), [c, d]);
      gradcheck(() => c.mul(d), [c, d]);
      gradcheck(() => c.div(d), [c, d]);
      const one = awayFromZeroLeaf([1], 9);
      gradcheck(() => one.mul(a), [one, a]);
      gradcheck(() => a.div(one), [one, a]);
    });
  });

  test('scalar forms: add, sub, mul, div, rsub, rdiv', () => {
    tidy(() => {
      const a = awayFromZeroLeaf([2, 3], 10);
      gradcheck(() => a.add(2.5), [a]);
      gradcheck(() => a.add(2, 0.5), [a]);
      gradcheck(() => a.sub(1.25), [a]);
      gradcheck(() => a.mul(-3), [a]);
      gradcheck(() => a.div(4), [a]);
      gradcheck(() => a.rsub(1.5), [a]);
      gradcheck(() => a.rdiv(2), [a]);
      gradcheck(() => a.reciprocal(), [a]);
    });
  });
});

describe('pow', () => {
  test('tensor ** scalar (integer, fractional and negative exponents)', () => {
    tidy(() => {
      const x = uniformLeaf([2, 3], 11, 0.5, 2);
      gradcheck(() => x.pow(3), [x]);
      gradcheck(() => x.pow(2.5), [x]);
      gradcheck(() => x.pow(-1.5), [x]);
      const y = randLeaf([5], 12);
      gradcheck(() => y.pow(2), [y]);
      gradcheck(() => y.square(), [y]);
    });
  });

  test('tensor ** tensor, with broadcasting', () => {
    tidy(() => {
      const base = uniformLeaf([2, 3], 13, 0.5, 2);
      const exp = randLeaf([2, 3], 14);
      gradcheck(() => base.pow(exp), [base, exp]);
      const e3 = randLeaf([3], 15);
      gradcheck(() => base.pow(e3), [base, e3]);
    });
  });
});

describe('matmul', () => {
  test('matrix @ matrix', () => {
    tidy(() => {
      const a = randLeaf([3, 4], 16);
      const b = randLeaf([4, 2], 17);
      gradcheck(() => a.matmul(b), [a, b]);
      gradcheck(() => matmul(b.transpose(0, 1), a.transpose(0, 1)), [a, b]);
    });
  });

  test('batched, broadcast batch, matrix @ vector and vector @ matrix', () => {
    tidy(() => {
      const a = randLeaf([2, 3, 4], 18);
      const b = randLeaf([2, 4, 2], 19);
      gradcheck(() => a.matmul(b), [a, b]);
      const m = randLeaf([4, 5], 20);
      gradcheck(() => a.matmul(m), [a, m]);
      const v = randLeaf([4], 21);
      gradcheck(() => a.matmul(v), [a, v]);
      const u = randLeaf([3], 22);
      const w = randLeaf([3, 4], 23);
      gradcheck(() => u.matmul(w), [u, w]);
      gradcheck(() => u.matmul(u), [u]);
    });
  });
});

describe('unary functions', () => {
  test('relu (inputs away from 0), leakyRelu, abs, neg', () => {
    tidy(() => {
      const x = awayFromZeroLeaf([3, 4], 24);
      gradcheck(() => x.relu(), [x]);
      gradcheck(() => x.leakyRelu(0.1), [x]);
      gradcheck(() => x.abs(), [x]);
      gradcheck(() => x.neg(), [x]);
    });
  });

  test('sigmoid, tanh, exp, gelu, sin, cos, expm1', () => {
    tidy(() => {
      const x = randLeaf([3, 4], 25);
      gradcheck(() => x.sigmoid(), [x]);
      gradcheck(() => x.tanh(), [x]);
      gradcheck(() => x.exp(), [x]);
      gradcheck(() => x.gelu(), [x]);
      gradcheck(() => x.sin(), [x]);
      gradcheck(() => x.cos(), [x]);
      gradcheck(() => x.expm1(), [x]);
    });
  });

  test('log, sqrt, rsqrt, log1p on positive inputs', () => {
    tidy(() => {
      const x = uniformLeaf([3, 4], 26, 0.3, 3);
      gradcheck(() => x.log(), [x]);
      gradcheck(() => x.sqrt(), [x]);
      gradcheck(() => x.rsqrt(), [x]);
      gradcheck(() => x.log1p(), [x]);
    });
  });

  test('clamp away from its bounds, maximum / minimum without ties', () => {
    tidy(() => {
      const x = leafAwayFrom([2, 5], 27, [-0.5, 0.5]);
      gradcheck(() => x.clamp(-0.5, 0.5), [x]);
      gradcheck(() => x.clamp(-0.5), [x]);
      gradcheck(() => x.clamp(undefined, 0.5), [x]);
      const a = randLeaf([2, 5], 28);
      const b = a
        .detach()
        .add(awayFromZeroLeaf([2, 5], 29).detach())
        .requiresGrad_(true);
      gradcheck(() => a.maximum(b), [a, b]);
      gradcheck(() => a.minimum(b), [a, b]);
    });
  });

  test('identity-like ops keep the gradient: clone, contiguous, share, to(float64)', () => {
    tidy(() => {
      const x = randLeaf([2, 3], 30);
      gradcheck(() => x.clone().mul(2), [x]);
      gradcheck(() => x.transpose(0, 1).contiguous(), [x]);
      gradcheck(() => x.share().mul(x), [x]);
      gradcheck(() => x.to('float64', true).mul(x.to({ dtype: 'float64' })), [x]);
    });
  });
});

/** Random values kept at least 0.1 away from each of `points` (non-differentiable kinks). */
function leafAwayFrom(shape: number[], seed: number, points: number[]): Tensor {
  const rnd = prng(seed);
  const v = Float64Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 4 * rnd() - 2);
  for (let i = 0; i < v.length; i++) {
    for (const p of points) if (Math.abs(v[i] - p) < 0.1) v[i] = p + (v[i] >= p ? 0.1 : -0.1);
  }
  return leaf(v, shape);
}
