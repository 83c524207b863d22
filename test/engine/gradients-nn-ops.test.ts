// Finite-difference gradient checks (float64) for the functional layer ops: linear,
// convolutions, normalisation, pooling, interpolation and dropout.
import { before, beforeEach, describe, test } from 'node:test';
import {
  adaptiveAvgPool2d,
  avgPool2d,
  batchNorm,
  conv2d,
  convTranspose2d,
  dropout,
  interpolate,
  layerNorm,
  linear,
  manualSeed,
  maxPool2d,
  setNumThreads,
  tidy,
  type Conv2dOptions,
} from '../../src/index.js';
import { distinctLeaf, gradcheck, randLeaf, uniformLeaf } from '../helpers/gradcheck.js';

// Finite differences run thousands of tiny float64 ops: intra-op threads only add
// synchronisation there (and crawl when other processes hold the cores).
before(() => setNumThreads(1));
beforeEach(() => manualSeed(20240611));

describe('linear', () => {
  test('with and without bias, 1-D, 2-D and 3-D inputs', () => {
    tidy(() => {
      const x = randLeaf([3, 4], 1);
      const w = randLeaf([5, 4], 2);
      const b = randLeaf([5], 3);
      gradcheck(() => linear(x, w, b), [x, w, b]);
      gradcheck(() => linear(x, w), [x, w]);
      gradcheck(() => linear(x, w, null), [x, w]);
      const x3 = randLeaf([2, 3, 4], 4);
      gradcheck(() => linear(x3, w, b), [x3, w, b]);
      const x1 = randLeaf([4], 5);
      gradcheck(() => linear(x1, w, b), [x1, w, b]);
    });
  });
});

describe('conv2d: gradients w.r.t. input, weight and bias', () => {
  const cases: { name: string; cin: number; cout: number; k: [number, number]; hw: [number, number]; o: Conv2dOptions }[] = [
    { name: 'plain 3x3', cin: 2, cout: 3, k: [3, 3], hw: [5, 5], o: {} },
    { name: 'stride 2', cin: 2, cout: 2, k: [3, 3], hw: [6, 5], o: { stride: 2 } },
    { name: 'asymmetric stride and padding', cin: 1, cout: 2, k: [2, 3], hw: [5, 6], o: { stride: [2, 1], padding: [1, 2] } },
    { name: 'padding 1', cin: 2, cout: 2, k: [3, 3], hw: [4, 4], o: { padding: 1 } },
    { name: "padding 'same'", cin: 2, cout: 2, k: [3, 3], hw: [4, 5], o: { padding: 'same' } },
    { name: 'dilation 2', cin: 2, cout: 2, k: [3, 3], hw: [6, 6], o: { dilation: 2 } },
    { name: 'dilation with padding and stride', cin: 1, cout: 2, k: [2, 2], hw: [6, 7], o: { dilation: [2, 3], padding: 1, stride: 2 } },
    { name: 'groups 2', cin: 4, cout: 2, k: [3, 3], hw: [5, 5], o: { groups: 2 } },
    { name: 'depthwise (groups = channels)', cin: 3, cout: 6, k: [3, 3], hw: [4, 4], o: { groups: 3, padding: 1 } },
    { name: '1x1', cin: 3, cout: 2, k: [1, 1], hw: [3, 3], o: {} },
  ];
  for (const c of cases) {
    test(c.name, () => {
      tidy(() => {
        const groups = c.o.groups ?? 1;
        const x = randLeaf([2, c.cin, ...c.hw], 10);
        const w = randLeaf([c.cout, c.cin / groups, ...c.k], 11, { scale: 0.5 });
        const b = randLeaf([c.cout], 12);
        gradcheck(() => conv2d(x, w, b, c.o), [x, w, b]);
        gradcheck(() => conv2d(x, w, null, c.o), [x, w]);
      });
    });
  }
});

describe('convTranspose2d', () => {
  test('stride, padding, output padding and groups', () => {
    tidy(() => {
      const x = randLeaf([1, 4, 3, 3], 13);
      const w = randLeaf([4, 1, 3, 3], 14, { scale: 0.5 });
      const b = randLeaf([2], 15);
      gradcheck(() => convTranspose2d(x, w, b, { stride: 2, padding: 1, outputPadding: 1, groups: 2 }), [x, w, b]);
      const w2 = randLeaf([4, 3, 2, 2], 16, { scale: 0.5 });
      gradcheck(() => convTranspose2d(x, w2, null, { stride: 1, dilation: 2 }), [x, w2]);
    });
  });
});

describe('batchNorm', () => {
  test('train mode: gradients through the batch statistics', () => {
    tidy(() => {
      const x = randLeaf([4, 3, 2, 2], 17, { scale: 2, shift: 0.5 });
      const w = uniformLeaf([3], 18, 0.5, 1.5);
      const b = randLeaf([3], 19);
      const rm = randLeaf([3], 20).detach();
      const rv = uniformLeaf([3], 21, 0.5, 2).detach();
      gradcheck(() => batchNorm(x, { weight: w, bias: b, runningMean: rm, runningVar: rv, training: true }), [x, w, b]);
      gradcheck(() => batchNorm(x, { weight: w, bias: b, training: true, eps: 1e-3 }), [x, w, b]);
      gradcheck(() => batchNorm(x, { training: true }), [x]);
      // [N, C] input (BatchNorm1d layout)
      const x2 = randLeaf([5, 3], 22);
      gradcheck(() => batchNorm(x2, { weight: w, bias: b, training: true }), [x2, w, b]);
    });
  });

  test('eval mode: running statistics are constants', () => {
    tidy(() => {
      const x = randLeaf([2, 3, 2, 2], 23);
      const w = uniformLeaf([3], 24, 0.5, 1.5);
      const b = randLeaf([3], 25);
      const rm = randLeaf([3], 26).detach();
      const rv = uniformLeaf([3], 27, 0.5, 2).detach();
      gradcheck(() => batchNorm(x, { weight: w, bias: b, runningMean: rm, runningVar: rv, training: false }), [x, w, b]);
      gradcheck(() => batchNorm(x, { runningMean: rm, runningVar: rv, training: false }), [x]);
    });
  });

  test('layerNorm', () => {
    tidy(() => {
      const x = randLeaf([2, 3, 4], 28);
      const w = uniformLeaf([4], 29, 0.5, 1.5);
      const b = randLeaf([4], 30);
      gradcheck(() => layerNorm(x, [4], { weight: w, bias: b }), [x, w, b]);
      gradcheck(() => layerNorm(x, [3, 4]), [x]);
    });
  });
});

describe('pooling', () => {
  test('maxPool2d: kernel, stride, padding, dilation, ceil mode (no ties)', () => {
    tidy(() => {
      const x = distinctLeaf([2, 2, 6, 7], 31);
      gradcheck(() => maxPool2d(x, 2), [x]);
      gradcheck(() => maxPool2d(x, 3, { stride: 1 }), [x]);
      gradcheck(() => maxPool2d(x, [2, 3], { stride: [2, 1], padding: [1, 1] }), [x]);
      gradcheck(() => maxPool2d(x, 2, { dilation: 2, stride: 1 }), [x]);
      gradcheck(() => maxPool2d(x, 3, { stride: 2, ceilMode: true }), [x]);
    });
  });

  test('avgPool2d: stride, padding with and without countIncludePad, ceil mode', () => {
    tidy(() => {
      const x = randLeaf([2, 2, 5, 6], 32);
      gradcheck(() => avgPool2d(x, 2), [x]);
      gradcheck(() => avgPool2d(x, 3, { stride: 1 }), [x]);
      gradcheck(() => avgPool2d(x, 3, { stride: 2, padding: 1 }), [x]);
      gradcheck(() => avgPool2d(x, 3, { stride: 2, padding: 1, countIncludePad: false }), [x]);
      gradcheck(() => avgPool2d(x, [2, 3], { stride: 2, ceilMode: true }), [x]);
    });
  });

  test('adaptiveAvgPool2d: divisible and overlapping windows, global', () => {
    tidy(() => {
      const x = randLeaf([2, 3, 5, 7], 33);
      gradcheck(() => adaptiveAvgPool2d(x, 1), [x]);
      gradcheck(() => adaptiveAvgPool2d(x, [3, 2]), [x]);
      gradcheck(() => adaptiveAvgPool2d(x, [5, 7]), [x]);
      const y = randLeaf([1, 2, 4, 6], 34);
      gradcheck(() => adaptiveAvgPool2d(y, [2, 3]), [y]);
    });
  });
});

describe('interpolate', () => {
  test('bilinear up and down, with and without alignCorners', () => {
    tidy(() => {
      const x = randLeaf([2, 2, 3, 4], 35);
      gradcheck(() => interpolate(x, [5, 7]), [x]);
      gradcheck(() => interpolate(x, [6, 8], { mode: 'bilinear', alignCorners: true }), [x]);
      gradcheck(() => interpolate(x, [2, 3], { mode: 'bilinear' }), [x]);
      gradcheck(() => interpolate(x, 2, { mode: 'bilinear', alignCorners: true }), [x]);
    });
  });

  test('area (4x4 -> 2x2, 5x5 -> 3x3, upsampling), nearest and bicubic', () => {
    tidy(() => {
      const x = randLeaf([1, 2, 4, 4], 36);
      gradcheck(() => interpolate(x, 2, { mode: 'area' }), [x]);
      gradcheck(() => interpolate(x, [6, 5], { mode: 'area' }), [x]);
      const y = randLeaf([1, 1, 5, 5], 37);
      gradcheck(() => interpolate(y, 3, { mode: 'area' }), [y]);
      gradcheck(() => interpolate(x, [7, 3], { mode: 'nearest' }), [x]);
      gradcheck(() => interpolate(x, [6, 6], { mode: 'bicubic' }), [x]);
      gradcheck(() => interpolate(x, [3, 5], { mode: 'bicubic', alignCorners: true }), [x]);
    });
  });
});

describe('dropout', () => {
  test('train mode with a fixed mask (reseeded), eval mode, p = 0', () => {
    tidy(() => {
      const x = randLeaf([4, 5], 38);
      gradcheck(() => {
        manualSeed(5);
        return dropout(x, 0.4, true);
      }, [x]);
      gradcheck(() => dropout(x, 0.4, false), [x]);
      gradcheck(() => dropout(x, 0, true), [x]);
    });
  });
});
