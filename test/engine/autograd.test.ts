// Autograd: recording on and off, grad() including second derivatives, .grad
// accumulation and reset, requiresGrad / isLeaf flags.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { enableGrad, grad, isGradEnabled, nn, noGrad, ones, SGD, tensor, tidy, type Tensor } from '../../src/index.js';
import { close } from '../helpers/util.js';

const f64 = (v: number[], requiresGrad = false) => tensor(v, undefined, { dtype: 'float64', requiresGrad });

describe('noGrad / enableGrad', () => {
  test('noGrad disables recording and restores it afterwards', () => {
    tidy(() => {
      const x = f64([1, 2], true);
      assert.ok(isGradEnabled());
      const y = noGrad(() => {
        assert.equal(isGradEnabled(), false);
        return x.mul(3).exp();
      });
      assert.ok(isGradEnabled());
      assert.equal(y.requiresGrad, false, 'results computed under noGrad are not recorded');
      assert.ok(y.isLeaf);
      assert.ok(x.mul(3).requiresGrad, 'recording is back on');
    });
  });

  test('noGrad restores the mode when its function throws', () => {
    assert.throws(
      () =>
        noGrad(() => {
          assert.equal(isGradEnabled(), false);
          throw new Error('inside');
        }),
      /inside/,
    );
    assert.ok(isGradEnabled());
    // a libtorch error inside noGrad as well
    assert.throws(() => noGrad(() => tidy(() => ones([2, 3]).matmul(ones([2, 3])))), /libtorch/);
    assert.ok(isGradEnabled());
  });

  test('nesting: noGrad inside noGrad, enableGrad inside noGrad', () => {
    tidy(() => {
      const x = f64([2], true);
      noGrad(() => {
        noGrad(() => assert.equal(isGradEnabled(), false));
        assert.equal(isGradEnabled(), false, 'the inner block restores the outer (off) state');
        const y = enableGrad(() => {
          assert.ok(isGradEnabled());
          return x.mul(x);
        });
        assert.equal(isGradEnabled(), false);
        assert.ok(y.requiresGrad);
        const [g] = enableGrad(() => grad(y, [x]));
        close(g!.toList(), [4]);
      });
      assert.ok(isGradEnabled());
      assert.throws(
        () =>
          enableGrad(() =>
            noGrad(() => {
              throw new Error('x');
            }),
          ),
        /x/,
      );
      assert.ok(isGradEnabled());
    });
  });

  test('in-place updates of parameters are allowed under noGrad only', () => {
    tidy(() => {
      const p = f64([1, 2], true);
      assert.throws(() => p.add_(1), /a leaf Variable that requires grad is being used in an in-place operation/);
      noGrad(() => p.add_(1));
      assert.deepEqual(p.toList(), [2, 3]);
      assert.ok(p.requiresGrad && p.isLeaf);
    });
  });
});

describe('grad()', () => {
  test('first derivative, without touching .grad', () => {
    tidy(() => {
      const x = f64([0.5, -1, 2], true);
      const [g] = grad(x.pow(3).sum(), [x]);
      close(g!.toList(), [0.75, 3, 12]);
      assert.equal(x.grad, null, 'grad() leaves .grad alone');
    });
  });

  test('second derivative with createGraph: d2/dx2 x^3 = 6x', () => {
    tidy(() => {
      const xs = [0.5, -1, 2, 3.25];
      const x = f64(xs, true);
      const [g1] = grad(x.pow(3).sum(), [x], { createGraph: true });
      close(
        g1!.toList(),
        xs.map((v) => 3 * v * v),
      );
      assert.ok(g1!.requiresGrad, 'the first derivative is itself differentiable');
      const [g2] = grad(g1!.sum(), [x]);
      close(
        g2!.toList(),
        xs.map((v) => 6 * v),
      );
      assert.equal(g2!.requiresGrad, false, 'no graph asked for the second one');
    });
  });

  test('mixed second derivative d2/dxdy of x^2 y^3, and a third derivative', () => {
    tidy(() => {
      const x = f64([1.5], true);
      const y = f64([-2], true);
      const f = x.pow(2).mul(y.pow(3)).sum();
      const [gx] = grad(f, [x], { createGraph: true }); // 2 x y^3
      const [gxy] = grad(gx!.sum(), [y]); // 6 x y^2
      close(gxy!.toList(), [6 * 1.5 * 4]);
      const z = f64([0.7], true);
      const [d1] = grad(z.sin().sum(), [z], { createGraph: true });
      const [d2] = grad(d1!.sum(), [z], { createGraph: true });
      const [d3] = grad(d2!.sum(), [z]);
      close(d3!.toList(), [-Math.cos(0.7)]);
    });
  });

  test('several outputs and inputs, gradOutputs for non-scalar outputs, allowUnused', () => {
    tidy(() => {
      const a = f64([1, 2], true);
      const b = f64([3, 4], true);
      const c = f64([5], true);
      const [ga, gb] = grad([a.mul(b).sum(), a.sum()], [a, b]);
      close(ga!.toList(), [3 + 1, 4 + 1]);
      close(gb!.toList(), [1, 2]);
      const [gv] = grad(a.mul(b), [a], { gradOutputs: [f64([10, 100])] });
      close(gv!.toList(), [30, 400]);
      const [gu, none] = grad(a.sum(), [a, c], { allowUnused: true });
      close(gu!.toList(), [1, 1]);
      assert.equal(none, null);
      assert.throws(
        () => grad(a.sum(), [a, c]),
        /(One |element \d+ ?)of the differentiated Tensors appears to not have been used in the graph/,
      );
      assert.throws(() => grad(a.mul(b), [a]), /grad can be implicitly created only for scalar outputs/);
    });
  });

  test('retainGraph allows a second pass over the same graph', () => {
    tidy(() => {
      const x = f64([2], true);
      const y = x.exp().sum();
      const [g1] = grad(y, [x], { retainGraph: true });
      const [g2] = grad(y, [x]);
      close(g1!.toList(), [Math.exp(2)]);
      close(g2!.toList(), [Math.exp(2)]);
      assert.throws(() => grad(y, [x]), /Trying to backward through the graph a second time/);
    });
  });
});

describe('backward() and .grad', () => {
  test('backward accumulates into .grad across two calls', () => {
    tidy(() => {
      const x = f64([1, -2, 3], true);
      x.mul(x).sum().backward();
      close(x.grad!.toList(), [2, -4, 6]);
      x.mul(5).sum().backward();
      close(x.grad!.toList(), [7, 1, 11]);
      // a non-scalar output with an explicit gradient
      x.mul(2).backward(f64([1, 0, -1]));
      close(x.grad!.toList(), [9, 1, 9]);
    });
  });

  test('retainGraph on backward; the second pass without it fails', () => {
    tidy(() => {
      const x = f64([3], true);
      const y = x.pow(2).sum();
      y.backward(undefined, { retainGraph: true });
      y.backward();
      close(x.grad!.toList(), [12]);
      assert.throws(() => y.backward(), /Trying to backward through the graph a second time/);
    });
  });

  test('backward with createGraph gives a differentiable .grad', () => {
    tidy(() => {
      const x = f64([2], true);
      x.pow(3).sum().backward(undefined, { createGraph: true });
      const g = x.grad!;
      assert.ok(g.requiresGrad);
      const [h] = grad(g.sum(), [x]);
      close(h!.toList(), [12]);
      x.grad = null; // break the reference cycle x -> grad -> graph -> x
    });
  });

  test('zeroGrad sets gradients to null (module and optimizer); the next backward starts fresh', () => {
    const lin = new nn.Linear(3, 2);
    try {
      tidy(() => {
        const x = ones([4, 3]);
        lin.forward(x).sum().backward();
        assert.ok(lin.parameters().every((p) => p.grad !== null));
        const first = lin.weight.grad!.toList();
        lin.zeroGrad();
        assert.ok(lin.parameters().every((p) => p.grad === null));
        lin.forward(x).sum().backward();
        assert.deepEqual(lin.weight.grad!.toList(), first, 'not accumulated onto the old gradient');
        const opt = new SGD(lin.parameters(), { lr: 0.1 });
        opt.zeroGrad();
        assert.ok(lin.parameters().every((p) => p.grad === null));
      });
    } finally {
      lin.dispose();
    }
  });

  test('setting .grad by hand, and reading it gives a handle that shares storage', () => {
    tidy(() => {
      const p = f64([1, 2], true);
      p.grad = f64([0.5, 0.25]);
      close(p.grad!.toList(), [0.5, 0.25]);
      p.grad!.mul_(2);
      close(p.grad!.toList(), [1, 0.5]);
      p.grad = null;
      assert.equal(p.grad, null);
    });
  });
});

describe('requiresGrad flags', () => {
  test('factories, requiresGrad_, propagation through ops, detach, isLeaf', () => {
    tidy(() => {
      const a = ones([2]);
      assert.equal(a.requiresGrad, false);
      const b = ones([2], { requiresGrad: true });
      assert.ok(b.requiresGrad && b.isLeaf);
      const c = a.mul(b);
      assert.ok(c.requiresGrad, 'any input requiring grad makes the result require grad');
      assert.equal(c.isLeaf, false);
      assert.equal(a.add(1).requiresGrad, false);
      const d = c.detach();
      assert.equal(d.requiresGrad, false);
      assert.ok(d.isLeaf);
      a.requiresGrad_(true);
      assert.ok(a.requiresGrad);
      a.requiresGrad = false;
      assert.equal(a.requiresGrad, false);
      assert.ok(tensor([1, 2], undefined, { requiresGrad: true }).requiresGrad);
      assert.throws(() => c.requiresGrad_(false), /you can only change requires_grad flags of leaf variables/);
      assert.throws(() => tensor([1, 2], undefined, { dtype: 'int64', requiresGrad: true }), /Only Tensors of floating point/);
    });
  });

  test('module parameters require grad; buffers do not', () => {
    const bn = new nn.BatchNorm2d(2);
    try {
      assert.ok(bn.parameters().every((p) => p.requiresGrad && p.isLeaf));
      assert.ok(bn.namedBuffers().every(([, t]) => !t.requiresGrad));
    } finally {
      bn.dispose();
    }
  });

  test('gradients only reach tensors that require them', () => {
    tidy(() => {
      const w = f64([2], true);
      const x = f64([3]);
      const loss = w.mul(x).sum();
      loss.backward();
      close(w.grad!.toList(), [3]);
      assert.equal(x.grad, null);
      const k: Tensor = x.share();
      assert.equal(k.requiresGrad, false);
    });
  });
});
