// Forward values checked against hand-computed expectations.
import { beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  arange,
  avgPool2d,
  batchNorm,
  conv2d,
  crossEntropy,
  eye,
  full,
  init,
  interpolate,
  klDiv,
  linear,
  linspace,
  manualSeed,
  maxPool2d,
  mseLoss,
  nllLoss,
  ones,
  randn,
  scalar,
  tensor,
  tidy,
  zeros,
} from '../../src/index.js';
import { close as closeTo } from '../helpers/util.js';

beforeEach(() => manualSeed(20240611));

// float32 results: 1e-5 unless a test says otherwise
const close = (actual: number[], expected: number[], tol = 1e-5): void => closeTo(actual, expected, tol);
const seq = (n: number, from = 1) => Array.from({ length: n }, (_, i) => i + from);
const logSumExp = (v: number[]) => {
  const m = Math.max(...v);
  return m + Math.log(v.reduce((s, x) => s + Math.exp(x - m), 0));
};

describe('factories and conversion', () => {
  test('tensor() infers shape and dtype; toList / item / shape', () => {
    tidy(() => {
      const a = tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      assert.deepEqual(a.shape, [2, 3]);
      assert.equal(a.dtype, 'float32');
      assert.deepEqual(a.toList(), [1, 2, 3, 4, 5, 6]);
      const b = tensor(new Int32Array([7, 8]));
      assert.equal(b.dtype, 'int32');
      const c = tensor(new BigInt64Array([3n, -4n]));
      assert.equal(c.dtype, 'int64');
      assert.deepEqual(c.toList(), [3, -4]);
      const d = tensor(new Float64Array([0.1, 0.2]), [2, 1]);
      assert.equal(d.dtype, 'float64');
      assert.deepEqual(d.toList(), [0.1, 0.2]);
      assert.equal(scalar(2.5).item(), 2.5);
      assert.deepEqual(scalar(2.5).shape, []);
      assert.deepEqual(tensor([true, false, true], undefined, { dtype: 'bool' }).toList(), [1, 0, 1]);
    });
  });

  test('zeros, ones, full, arange, linspace, eye', () => {
    tidy(() => {
      assert.deepEqual(zeros([2, 2]).toList(), [0, 0, 0, 0]);
      assert.deepEqual(ones([3], { dtype: 'int32' }).toList(), [1, 1, 1]);
      assert.deepEqual(full([2], 7.5, { dtype: 'float64' }).toList(), [7.5, 7.5]);
      assert.deepEqual(arange(4).toList(), [0, 1, 2, 3]);
      assert.equal(arange(4).dtype, 'int64');
      assert.deepEqual(arange(1, 2, 0.25, { dtype: 'float64' }).toList(), [1, 1.25, 1.5, 1.75]);
      assert.deepEqual(linspace(0, 1, 5, { dtype: 'float64' }).toList(), [0, 0.25, 0.5, 0.75, 1]);
      assert.deepEqual(eye(2).toList(), [1, 0, 0, 1]);
      assert.deepEqual(zeros([0, 3]).shape, [0, 3]);
      assert.deepEqual(zeros([0, 3]).toList(), []);
    });
  });

  test('dtype casts round and saturate as libtorch does', () => {
    tidy(() => {
      const x = tensor([1.7, -1.7, 2.5]);
      assert.deepEqual(x.to('int64').toList(), [1, -1, 2]);
      assert.deepEqual(x.gt(0).toList(), [1, 0, 1]);
      assert.equal(x.to('float16').dtype, 'float16');
      close(x.to('float16').toList(), [1.7, -1.7, 2.5], 1e-3);
    });
  });
});

describe('elementwise, matmul and reductions', () => {
  test('arithmetic with broadcasting, scalars, alpha', () => {
    tidy(() => {
      const a = tensor([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      const r = tensor([10, 20, 30]);
      assert.deepEqual(a.add(r).toList(), [11, 22, 33, 14, 25, 36]);
      assert.deepEqual(a.sub(r, 0.5).toList(), [-4, -8, -12, -1, -5, -9]);
      assert.deepEqual(a.mul(2).toList(), [2, 4, 6, 8, 10, 12]);
      assert.deepEqual(a.rsub(1).toList(), [0, -1, -2, -3, -4, -5]);
      close(a.rdiv(1).toList(), [1, 1 / 2, 1 / 3, 1 / 4, 1 / 5, 1 / 6]);
      assert.deepEqual(a.pow(2).toList(), [1, 4, 9, 16, 25, 36]);
      assert.deepEqual(a.add(1, 2).toList(), [3, 4, 5, 6, 7, 8]);
      assert.deepEqual(a.remainder(4).toList(), [1, 2, 3, 0, 1, 2]);
      assert.deepEqual(a.clamp(2, 5).toList(), [2, 2, 3, 4, 5, 5]);
    });
  });

  test('matmul and linear', () => {
    tidy(() => {
      const a = tensor([
        [1, 2],
        [3, 4],
        [5, 6],
      ]);
      const b = tensor([
        [1, 0, -1],
        [2, 1, 0],
      ]);
      assert.deepEqual(a.matmul(b).toList(), [5, 2, -1, 11, 4, -3, 17, 6, -5]);
      // linear: x W^T + b
      const y = linear(
        tensor([[1, 1]]),
        tensor([
          [1, 2],
          [3, 4],
          [5, 6],
        ]),
        tensor([0.5, 0, -1]),
      );
      assert.deepEqual(y.toList(), [3.5, 7, 10]);
    });
  });

  test('sum, mean, max, min, logsumexp, variance, std', () => {
    tidy(() => {
      const x = tensor([
        [1, 5, 3],
        [4, 2, 6],
      ]);
      assert.equal(x.sum().item(), 21);
      assert.deepEqual(x.sum(0).toList(), [5, 7, 9]);
      assert.deepEqual(x.sum(1, true).shape, [2, 1]);
      assert.equal(x.mean().item(), 3.5);
      assert.deepEqual(x.mean(1).toList(), [3, 4]);
      assert.equal(x.max().item(), 6);
      assert.deepEqual(x.max(1).toList(), [5, 6]);
      assert.deepEqual(x.min(0).toList(), [1, 2, 3]);
      close([x.logsumexp().item()], [logSumExp([1, 5, 3, 4, 2, 6])]);
      close(x.logsumexp(1).toList(), [logSumExp([1, 5, 3]), logSumExp([4, 2, 6])]);
      close([x.variance().item()], [17.5 / 5]);
      close([x.std(undefined, { unbiased: false }).item()], [Math.sqrt(17.5 / 6)]);
    });
  });

  test('topk, argmax, argmin, sort', () => {
    tidy(() => {
      const x = tensor([3, 1, 4, 1.5, 5, 9, 2, 6]);
      const { values, indices } = x.topk(3);
      assert.deepEqual(values.toList(), [9, 6, 5]);
      assert.deepEqual(indices.toList(), [5, 7, 4]);
      assert.equal(indices.dtype, 'int64');
      const low = x.topk(2, { largest: false });
      assert.deepEqual(low.values.toList(), [1, 1.5]);
      assert.deepEqual(low.indices.toList(), [1, 3]);
      assert.equal(x.argmax().item(), 5);
      assert.equal(x.argmin().item(), 1);
      const m = x.reshape(2, 4);
      assert.deepEqual(m.argmax(1).toList(), [2, 1]);
      assert.deepEqual(m.argmax(0).toList(), [1, 1, 0, 1]);
      assert.deepEqual(m.argmax(1, true).shape, [2, 1]);
      const { values: mv, indices: mi } = m.maxWithIndices(1);
      assert.deepEqual(mv.toList(), [4, 9]);
      assert.deepEqual(mi.toList(), [2, 1]);
      assert.deepEqual(x.sort(0, true).values.toList(), [9, 6, 5, 4, 3, 2, 1.5, 1]);
    });
  });

  test('softmax and logSoftmax, stable for large logits', () => {
    tidy(() => {
      const e = [1, Math.E, Math.E ** 2];
      const z = e.reduce((a, b) => a + b);
      const expected = e.map((v) => v / z);
      const x = tensor(
        [
          [0, 1, 2],
          [1000, 1001, 1002],
        ],
        undefined,
        { dtype: 'float64' },
      );
      close(x.softmax(1).toList(), [...expected, ...expected], 1e-12);
      close(x.logSoftmax(1).toList(), [...expected, ...expected].map(Math.log), 1e-12);
      const cols = tensor(
        [
          [0, 0],
          [Math.log(3), 0],
        ],
        undefined,
        { dtype: 'float64' },
      ).softmax(0);
      close(cols.toList(), [0.25, 0.5, 0.75, 0.5], 1e-12);
    });
  });
});

describe('layers', () => {
  test('conv2d on a 3x3 input: valid, strided + padded, grouped', () => {
    tidy(() => {
      const x = tensor(seq(9), [1, 1, 3, 3]);
      const w = tensor([
        [1, 2],
        [3, 4],
      ]).reshape(1, 1, 2, 2);
      // out[i][j] = x[i][j] + 2 x[i][j+1] + 3 x[i+1][j] + 4 x[i+1][j+1] + bias
      assert.deepEqual(conv2d(x, w, tensor([0.5])).toList(), [37.5, 47.5, 67.5, 77.5]);
      const box = ones([1, 1, 3, 3]);
      const strided = conv2d(x, box, null, { stride: 2, padding: 1 });
      assert.deepEqual(strided.shape, [1, 1, 2, 2]);
      assert.deepEqual(strided.toList(), [12, 16, 24, 28]);
      const same = conv2d(x, box, null, { padding: 'same' });
      assert.deepEqual(same.toList(), [12, 21, 16, 27, 45, 33, 24, 39, 28]);
      const two = tensor([...seq(4), ...seq(4, 10)], [1, 2, 2, 2]);
      const grouped = conv2d(two, tensor([2, -1], [2, 1, 1, 1]), null, { groups: 2 });
      assert.deepEqual(grouped.toList(), [2, 4, 6, 8, -10, -11, -12, -13]);
      const dilated = conv2d(x, tensor([1, 1, 1, 1], [1, 1, 2, 2]), null, { dilation: 2 });
      assert.deepEqual(dilated.toList(), [1 + 3 + 7 + 9]);
    });
  });

  test('maxPool2d and avgPool2d', () => {
    tidy(() => {
      const x = arange(16, undefined, 1, { dtype: 'float32' }).reshape(1, 1, 4, 4);
      assert.deepEqual(maxPool2d(x, 2).toList(), [5, 7, 13, 15]);
      assert.deepEqual(maxPool2d(x, 3, { stride: 1 }).toList(), [10, 11, 14, 15]);
      const y = tensor(seq(9), [1, 1, 3, 3]);
      assert.deepEqual(maxPool2d(y, 3, { stride: 1, padding: 1 }).toList(), [5, 6, 6, 8, 9, 9, 8, 9, 9]);
      assert.deepEqual(maxPool2d(y, 2, { ceilMode: true }).toList(), [5, 6, 8, 9]);
      assert.deepEqual(avgPool2d(x, 2).toList(), [2.5, 4.5, 10.5, 12.5]);
      // padded corners: zeros count by default, not with countIncludePad = false
      close(avgPool2d(y, 2, { stride: 2, padding: 1 }).toList(), [1 / 4, 5 / 4, 11 / 4, 28 / 4]);
      close(avgPool2d(y, 2, { stride: 2, padding: 1, countIncludePad: false }).toList(), [1, 5 / 2, 11 / 2, 28 / 4]);
    });
  });

  test('batchNorm in eval mode with given running statistics', () => {
    tidy(() => {
      const x = tensor([1, 2, 3, 4, 5, 6, 7, 8], [2, 2, 1, 2], { dtype: 'float64' });
      const rm = tensor([1, -1], undefined, { dtype: 'float64' });
      const rv = tensor([4, 0.25], undefined, { dtype: 'float64' });
      const w = tensor([2, 1], undefined, { dtype: 'float64' });
      const b = tensor([0.5, 0], undefined, { dtype: 'float64' });
      const eps = 1e-5;
      const expected = [1, 2, 3, 4, 5, 6, 7, 8].map((v, i) => {
        const c = Math.floor(i / 2) % 2;
        return ((v - [1, -1][c]) / Math.sqrt([4, 0.25][c] + eps)) * [2, 1][c] + [0.5, 0][c];
      });
      close(batchNorm(x, { weight: w, bias: b, runningMean: rm, runningVar: rv, training: false, eps }).toList(), expected, 1e-12);
      // eval mode leaves the running statistics alone
      assert.deepEqual(rm.toList(), [1, -1]);
      assert.deepEqual(rv.toList(), [4, 0.25]);
    });
  });

  test('interpolate: area 4x4 -> 2x2 averages blocks; bilinear with and without alignCorners; nearest', () => {
    tidy(() => {
      const x = arange(16, undefined, 1, { dtype: 'float32' }).reshape(1, 1, 4, 4);
      assert.deepEqual(interpolate(x, 2, { mode: 'area' }).toList(), [2.5, 4.5, 10.5, 12.5]);
      assert.deepEqual(interpolate(x, [1, 2], { mode: 'area' }).toList(), [6.5, 8.5]);
      const s = tensor([
        [0, 1],
        [2, 3],
      ]).reshape(1, 1, 2, 2);
      assert.deepEqual(interpolate(s, 3, { mode: 'bilinear', alignCorners: true }).toList(), [0, 0.5, 1, 1, 1.5, 2, 2, 2.5, 3]);
      // half-pixel centres: output (0,0) samples (-0.25, -0.25), clamped to the edge
      close(
        interpolate(s, 4, { mode: 'bilinear' }).toList(),
        [0, 0.25, 0.75, 1, 0.5, 0.75, 1.25, 1.5, 1.5, 1.75, 2.25, 2.5, 2, 2.25, 2.75, 3],
      );
      assert.deepEqual(interpolate(s, 4, { mode: 'nearest' }).toList(), [0, 0, 1, 1, 0, 0, 1, 1, 2, 2, 3, 3, 2, 2, 3, 3]);
    });
  });
});

describe('losses', () => {
  test('crossEntropy on known logits: every reduction, label smoothing, ignoreIndex, weights', () => {
    tidy(() => {
      const rows = [
        [1, 2, 3],
        [1, 1, 1],
        [0, -2, 4],
      ];
      const targets = [2, 0, 1];
      const nll = rows.map((r, i) => logSumExp(r) - r[targets[i]]);
      const logits = tensor(rows, undefined, { dtype: 'float64' });
      const y = tensor(targets, undefined, { dtype: 'int64' });
      close([crossEntropy(logits, y).item()], [(nll[0] + nll[1] + nll[2]) / 3], 1e-12);
      close([crossEntropy(logits, y, { reduction: 'sum' }).item()], [nll[0] + nll[1] + nll[2]], 1e-12);
      close(crossEntropy(logits, y, { reduction: 'none' }).toList(), nll, 1e-12);
      assert.ok(Math.abs(nll[1] - Math.log(3)) < 1e-12);
      // label smoothing eps: (1 - eps) * nll + eps * mean over classes of -log p
      const eps = 0.1;
      const smooth = rows.map((r, i) => (1 - eps) * nll[i] + (eps / 3) * r.reduce((s, v) => s + logSumExp(r) - v, 0));
      close(crossEntropy(logits, y, { labelSmoothing: eps, reduction: 'none' }).toList(), smooth, 1e-12);
      close([crossEntropy(logits, y, { labelSmoothing: eps }).item()], [(smooth[0] + smooth[1] + smooth[2]) / 3], 1e-12);
      // ignored rows drop out of the mean
      const yi = tensor([2, -100, 1], undefined, { dtype: 'int64' });
      close([crossEntropy(logits, yi).item()], [(nll[0] + nll[2]) / 2], 1e-12);
      // class weights: weighted mean divides by the sum of the targets' weights
      const wt = tensor([1, 2, 0.5], undefined, { dtype: 'float64' });
      close([crossEntropy(logits, y, { weight: wt }).item()], [(0.5 * nll[0] + 1 * nll[1] + 2 * nll[2]) / 3.5], 1e-12);
      // probability targets: one-hot targets give the same loss as indices
      const onehot = tensor(
        [
          [0, 0, 1],
          [1, 0, 0],
          [0, 1, 0],
        ],
        undefined,
        { dtype: 'float64' },
      );
      close([crossEntropy(logits, onehot).item()], [(nll[0] + nll[1] + nll[2]) / 3], 1e-12);
    });
  });

  test('nllLoss, mseLoss, klDiv (batchmean = sum / batch)', () => {
    tidy(() => {
      const lp = tensor(
        [
          [-1, -2],
          [-3, -0.5],
        ],
        undefined,
        { dtype: 'float64' },
      );
      const y = tensor([1, 0], undefined, { dtype: 'int64' });
      close([nllLoss(lp, y).item()], [(2 + 3) / 2], 1e-12);
      close([nllLoss(lp, y, { reduction: 'sum' }).item()], [5], 1e-12);
      const a = tensor([1, 2, 3], undefined, { dtype: 'float64' });
      const b = tensor([1, 0, 5], undefined, { dtype: 'float64' });
      close([mseLoss(a, b).item()], [8 / 3], 1e-12);
      close(mseLoss(a, b, { reduction: 'none' }).toList(), [0, 4, 4], 1e-12);
      const p = [
        [0.25, 0.75],
        [0.5, 0.5],
      ];
      const q = [
        [0.5, 0.5],
        [0.1, 0.9],
      ];
      const kl = p.map((pr, i) => pr.reduce((s, v, j) => s + v * (Math.log(v) - Math.log(q[i][j])), 0));
      const logq = tensor(q, undefined, { dtype: 'float64' }).log();
      const pt = tensor(p, undefined, { dtype: 'float64' });
      close([klDiv(logq, pt).item()], [(kl[0] + kl[1]) / 2], 1e-12);
      close([klDiv(logq, pt, { reduction: 'batchmean' }).item()], [(kl[0] + kl[1]) / 2], 1e-12);
      close([klDiv(logq, pt, { reduction: 'sum' }).item()], [kl[0] + kl[1]], 1e-12);
      close([klDiv(logq, pt, { reduction: 'mean' }).item()], [(kl[0] + kl[1]) / 4], 1e-12);
      close([klDiv(logq, pt.log(), { logTarget: true }).item()], [(kl[0] + kl[1]) / 2], 1e-12);
    });
  });
});

describe('init', () => {
  test('fans and gains follow PyTorch', () => {
    tidy(() => {
      assert.deepEqual(init.fans(zeros([8, 4, 3, 3])), [36, 72]);
      assert.deepEqual(init.fans(zeros([5, 7])), [7, 5]);
      assert.throws(() => init.fans(zeros([5])), /rank >= 2/);
      assert.equal(init.calculateGain('relu'), Math.SQRT2);
      assert.equal(init.calculateGain('tanh'), 5 / 3);
      assert.equal(init.calculateGain('leaky_relu', Math.sqrt(5)), Math.sqrt(2 / 6));
    });
  });

  test('xavierUniform_ stays within +-gain*sqrt(6/(fanIn+fanOut)) and fills that range', () => {
    tidy(() => {
      const w = zeros([64, 32, 3, 3]);
      const bound = 2 * Math.sqrt(6 / (32 * 9 + 64 * 9));
      init.xavierUniform_(w, 2);
      const v = w.toList();
      const max = Math.max(...v.map(Math.abs));
      assert.ok(max <= bound, `max |w| ${max} exceeds ${bound}`);
      assert.ok(max > 0.99 * bound, `max |w| ${max} is far below the bound ${bound}`);
      // uniform on [-a, a]: mean ~ 0, std = a / sqrt(3)
      assert.ok(Math.abs(w.mean().item()) < 0.01 * bound);
      const std = w.std().item();
      assert.ok(Math.abs(std - bound / Math.sqrt(3)) < 0.02 * bound, `std ${std}`);
    });
  });

  test('kaimingNormal_ std ~ gain / sqrt(fan); kaimingUniform_ bound = gain * sqrt(3 / fan)', () => {
    tidy(() => {
      const w = zeros([256, 128]);
      init.kaimingNormal_(w, { nonlinearity: 'relu' });
      const expected = Math.SQRT2 / Math.sqrt(128);
      const std = w.std().item();
      assert.ok(Math.abs(std / expected - 1) < 0.02, `std ${std}, expected ${expected}`);
      init.kaimingNormal_(w, { nonlinearity: 'relu', mode: 'fanOut' });
      const stdOut = w.std().item();
      assert.ok(Math.abs(stdOut / (Math.SQRT2 / 16) - 1) < 0.02, `std ${stdOut}`);
      const u = zeros([128, 64]);
      init.kaimingUniform_(u, { a: Math.sqrt(5) });
      const bound = Math.sqrt(2 / 6) * Math.sqrt(3 / 64);
      const m = u.abs().max().item();
      assert.ok(m <= bound && m > 0.99 * bound, `max |w| ${m}, bound ${bound}`);
      const n = randn([4, 4]).requiresGrad_(true);
      init.normal_(n, 3, 0);
      assert.deepEqual(n.toList(), new Array(16).fill(3));
      assert.ok(n.isLeaf && n.requiresGrad, 'init works in place on parameters');
      init.zeros_(n);
      init.constant_(n, 0.5);
      assert.deepEqual(n.toList(), new Array(16).fill(0.5));
    });
  });
});
