// Adam and SGD updates against their hand-written formulas (float64, exact up to rounding).
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Adam, SGD, liveTensors, manualSeed, mseLoss, nn, tensor, tidy, type Tensor } from '../../src/index.js';
import { close } from '../helpers/util.js';

beforeEach(() => manualSeed(20240611));

const f64 = (v: number[]) => tensor(v, undefined, { dtype: 'float64' });
const param = (v: number[]) => f64(v).requiresGrad_(true);

/** Give p the gradient g (as backward() would leave it). */
function setGrad(p: Tensor, g: number[]): void {
  tidy(() => {
    p.grad = f64(g);
  });
}

describe('Adam', () => {
  test('first step is exactly -lr * g / (|g| + eps), i.e. ~ -lr * sign(g)', () => {
    tidy(() => {
      const p0 = [0.5, -1, 2, 0.25];
      const g = [0.3, -2, 1e-3, -5e-9];
      const p = param(p0);
      const opt = new Adam([p], { lr: 0.01 });
      setGrad(p, g);
      opt.step();
      const expected = p0.map((v, i) => v - (0.01 * g[i]) / (Math.abs(g[i]) + 1e-8));
      close(p.toList(), expected);
      // away from tiny gradients that is lr * sign(g)
      p.toList()
        .slice(0, 3)
        .forEach((v, i) => assert.ok(Math.abs(v - (p0[i] - 0.01 * Math.sign(g[i]))) < 1e-7));
      opt.dispose();
    });
  });

  test('two steps with weight decay match the bias-corrected formula', () => {
    tidy(() => {
      const [b1, b2, eps, lr, wd] = [0.8, 0.95, 1e-6, 0.1, 0.05];
      let x = [1, -2];
      const grads = [
        [0.5, 0.1],
        [-0.2, 0.4],
      ];
      const p = param(x);
      const opt = new Adam([p], { lr, betas: [b1, b2], eps, weightDecay: wd });
      let m = [0, 0];
      let v = [0, 0];
      grads.forEach((g0, k) => {
        const t = k + 1;
        const g = g0.map((gi, i) => gi + wd * x[i]);
        m = m.map((mi, i) => b1 * mi + (1 - b1) * g[i]);
        v = v.map((vi, i) => b2 * vi + (1 - b2) * g[i] * g[i]);
        const mh = m.map((mi) => mi / (1 - b1 ** t));
        const vh = v.map((vi) => vi / (1 - b2 ** t));
        x = x.map((xi, i) => xi - (lr * mh[i]) / (Math.sqrt(vh[i]) + eps));
        setGrad(p, g0);
        opt.step();
        close(p.toList(), x, 1e-10);
      });
      const sd = opt.stateDict();
      assert.deepEqual(sd.steps, [2]);
      close(sd.tensors['0.exp_avg'].toList(), m, 1e-12);
      close(sd.tensors['0.exp_avg_sq'].toList(), v, 1e-12);
      opt.dispose();
    });
  });

  test('amsgrad keeps the running maximum of the second moment', () => {
    tidy(() => {
      const [b1, b2, eps, lr] = [0.9, 0.5, 1e-8, 0.1];
      let x = [0];
      const grads = [10, 0.1, 0.1];
      const p = param(x);
      const opt = new Adam([p], { lr, betas: [b1, b2], eps, amsgrad: true });
      let m = 0;
      let v = 0;
      let vmax = 0;
      grads.forEach((g, k) => {
        const t = k + 1;
        m = b1 * m + (1 - b1) * g;
        v = b2 * v + (1 - b2) * g * g;
        vmax = Math.max(vmax, v);
        x = [x[0] - ((lr / (1 - b1 ** t)) * m) / (Math.sqrt(vmax) / Math.sqrt(1 - b2 ** t) + eps)];
        setGrad(p, [g]);
        opt.step();
        close(p.toList(), x, 1e-10);
      });
      opt.dispose();
    });
  });

  test('parameters without a gradient are left alone; zeroGrad sets grads to null', () => {
    tidy(() => {
      const a = param([1, 2]);
      const b = param([3]);
      const opt = new Adam([a, b], { lr: 0.5 });
      setGrad(a, [1, -1]);
      opt.step();
      close(a.toList(), [0.5, 2.5], 1e-7);
      assert.deepEqual(b.toList(), [3]);
      assert.deepEqual(opt.stateDict().steps, [1, 0]);
      opt.zeroGrad();
      assert.equal(a.grad, null);
      assert.equal(b.grad, null);
      opt.step();
      close(a.toList(), [0.5, 2.5], 1e-7);
      opt.dispose();
    });
  });

  test('loadStateDict resumes exactly where a run left off', () => {
    tidy(() => {
      const run = (steps: number[][], opt: Adam, p: Tensor) => {
        for (const g of steps) {
          setGrad(p, g);
          opt.step();
        }
      };
      const p1 = param([1, 1]);
      const o1 = new Adam([p1], { lr: 0.1 });
      run(
        [
          [1, 2],
          [0.5, -1],
        ],
        o1,
        p1,
      );
      const p2 = param(p1.toList());
      const o2 = new Adam([p2], { lr: 0.3 });
      o2.loadStateDict(o1.stateDict());
      assert.equal(o2.lr, 0.1);
      run([[-1, 0.25]], o1, p1);
      run([[-1, 0.25]], o2, p2);
      close(p2.toList(), p1.toList(), 0);
      o1.dispose();
      o2.dispose();
    });
  });
});

describe('SGD', () => {
  test('plain SGD and weight decay', () => {
    tidy(() => {
      const p = param([1, -2]);
      const opt = new SGD([p], { lr: 0.1 });
      setGrad(p, [0.5, 1]);
      opt.step();
      close(p.toList(), [0.95, -2.1]);
      const q = param([1, -2]);
      const wd = new SGD([q], { lr: 0.1, weightDecay: 0.5 });
      setGrad(q, [0.5, 1]);
      wd.step();
      close(q.toList(), [1 - 0.1 * (0.5 + 0.5), -2 - 0.1 * (1 - 1)]);
    });
  });

  test('momentum over two steps: buf = g1, then mu * buf + (1 - dampening) * g2', () => {
    tidy(() => {
      const [lr, mu, damp] = [0.1, 0.9, 0.25];
      const g1 = [1, -2];
      const g2 = [0.5, 0.5];
      for (const dampening of [0, damp]) {
        const p = param([0, 0]);
        const opt = new SGD([p], { lr, momentum: mu, dampening });
        setGrad(p, g1);
        opt.step();
        const x1 = g1.map((g) => -lr * g); // the first buffer is g1 itself, undamped
        close(p.toList(), x1);
        setGrad(p, g2);
        opt.step();
        const buf = g1.map((g, i) => mu * g + (1 - dampening) * g2[i]);
        close(
          p.toList(),
          x1.map((x, i) => x - lr * buf[i]),
        );
        close(opt.stateDict().tensors['0.momentum_buffer'].toList(), buf);
      }
    });
  });

  test('Nesterov over two steps: update = g + mu * buf', () => {
    tidy(() => {
      const [lr, mu] = [0.1, 0.9];
      const g1 = [1, -2];
      const g2 = [0.5, 0.5];
      const p = param([1, 1]);
      const opt = new SGD([p], { lr, momentum: mu, nesterov: true });
      setGrad(p, g1);
      opt.step();
      const x1 = [1, 1].map((x, i) => x - lr * (g1[i] + mu * g1[i]));
      close(p.toList(), x1);
      setGrad(p, g2);
      opt.step();
      const buf = g1.map((g, i) => mu * g + g2[i]);
      close(
        p.toList(),
        x1.map((x, i) => x - lr * (g2[i] + mu * buf[i])),
      );
    });
  });

  test('momentum buffer does not alias the gradient', () => {
    tidy(() => {
      const p = param([0]);
      const opt = new SGD([p], { lr: 1, momentum: 0.5 });
      setGrad(p, [1]);
      opt.step();
      // mutate the gradient in place: the buffer must keep its own copy
      p.grad!.mul_(100);
      setGrad(p, [0]);
      opt.step();
      close(p.toList(), [-1 - 0.5]);
    });
  });
});

describe('optimizers in a training loop', () => {
  test('Adam and SGD fit a linear regression from backward() gradients', () => {
    for (const make of [(ps: Tensor[]) => new Adam(ps, { lr: 0.05 }), (ps: Tensor[]) => new SGD(ps, { lr: 0.1, momentum: 0.9 })]) {
      const model = new nn.Linear(3, 1);
      const opt = make(model.parameters());
      const x = tensor([
        [1, 0, 0],
        [0, 1, 0],
        [0, 0, 1],
        [1, 1, 1],
        [2, -1, 0.5],
      ]);
      const y = tidy(() => x.matmul(tensor([[2], [-1], [0.5]])).add(0.3));
      let loss = Infinity;
      const live = liveTensors();
      for (let i = 0; i < 300; i++) {
        loss = tidy(() => {
          opt.zeroGrad();
          const l = mseLoss(model.forward(x), y);
          l.backward();
          opt.step();
          return l.item();
        });
        if (i > 0) assert.equal(liveTensors(), live + 2 * (opt instanceof Adam ? 2 : 1), 'optimizer state is the only growth');
      }
      assert.ok(loss < 1e-4, `loss ${loss}`);
      opt.dispose();
      model.dispose();
      x.dispose();
      y.dispose();
      assert.equal(liveTensors(), live - 2 - 2);
    }
  });

  test('constructor validation', () => {
    tidy(() => {
      const p = param([1]);
      assert.throws(() => new Adam([], {}), /empty parameter list/);
      assert.throws(() => new Adam([p], { lr: 0 }), /learning rate must be positive/);
      assert.throws(() => new Adam([p], { lr: -1 }), /learning rate must be positive/);
      assert.throws(() => new Adam([p], { betas: [1, 0.9] }), /betas/);
      assert.throws(() => new Adam([p], { eps: -1 }), /eps/);
      assert.throws(() => new SGD([p], { lr: 0.1, nesterov: true }), /Nesterov/);
      assert.throws(() => new SGD([p], { lr: 0.1, momentum: -0.5 }), /momentum/);
      const other = new SGD([p, p], { lr: 0.1 });
      assert.throws(() => new SGD([p], { lr: 0.1 }).loadStateDict(other.stateDict()), /2 parameters/);
    });
  });
});
