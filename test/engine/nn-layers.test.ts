// nn layers: finite-difference gradient checks of whole modules in float64 (w.r.t. the
// input and every parameter), and Sequential's disposal of intermediates.
import { before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { liveTensors, manualSeed, nn, noGrad, setNumThreads, tensor, tidy } from '../../src/index.js';
import { gradcheck, randLeaf } from '../helpers/gradcheck.js';

// Finite differences run thousands of tiny float64 ops: intra-op threads only add
// synchronisation there (and crawl when other processes hold the cores).
before(() => setNumThreads(1));
beforeEach(() => manualSeed(20240611));

describe('module gradients (float64)', () => {
  test('Linear, with and without bias', () => {
    const m = new nn.Linear(4, 3).to('float64');
    const nb = new nn.Linear(4, 2, { bias: false }).to('float64');
    try {
      tidy(() => {
        const x = randLeaf([5, 4], 1);
        gradcheck(() => m.forward(x), [x, ...m.parameters()]);
        gradcheck(() => nb.forward(x), [x, ...nb.parameters()]);
      });
    } finally {
      m.dispose();
      nb.dispose();
    }
  });

  test('Conv2d: plain, strided + padded, dilated, grouped', () => {
    const layers = [
      new nn.Conv2d(2, 3, 3),
      new nn.Conv2d(2, 2, [3, 2], { stride: 2, padding: 1 }),
      new nn.Conv2d(2, 2, 2, { dilation: 2, padding: 'same', bias: false }),
      new nn.Conv2d(4, 4, 3, { groups: 2, padding: 1, stride: [1, 2] }),
    ].map((m) => m.to('float64'));
    try {
      tidy(() => {
        for (const m of layers) {
          const x = randLeaf([2, m.inChannels, 5, 5], 2);
          gradcheck(() => m.forward(x), [x, ...m.parameters()]);
        }
      });
    } finally {
      for (const m of layers) m.dispose();
    }
  });

  test('BatchNorm2d in train mode and in eval mode', () => {
    const bn = new nn.BatchNorm2d(3).to('float64');
    try {
      tidy(() => {
        // non-trivial affine parameters and running statistics
        noGrad(() => {
          bn.weight!.copy_(tensor([0.5, 1.5, -2], undefined, { dtype: 'float64' }));
          bn.bias!.copy_(tensor([0.1, -0.3, 0.7], undefined, { dtype: 'float64' }));
          bn.runningMean!.copy_(tensor([0.2, -0.1, 0.4], undefined, { dtype: 'float64' }));
          bn.runningVar!.copy_(tensor([0.8, 1.3, 2.1], undefined, { dtype: 'float64' }));
        });
        const x = randLeaf([4, 3, 3, 2], 3, { scale: 1.5, shift: 0.3 });
        bn.train();
        gradcheck(() => bn.forward(x), [x, ...bn.parameters()]);
        bn.eval();
        gradcheck(() => bn.forward(x), [x, ...bn.parameters()]);
        const noAffine = new nn.BatchNorm2d(3, { affine: false, trackRunningStats: false }).to('float64');
        gradcheck(() => noAffine.forward(x), [x]);
      });
    } finally {
      bn.dispose();
    }
  });

  test('Sequential: Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d -> Flatten -> Linear', () => {
    const net = new nn.Sequential(
      new nn.Conv2d(2, 4, 3, { padding: 1 }),
      new nn.BatchNorm2d(4),
      new nn.ReLU(),
      new nn.MaxPool2d(2),
      new nn.Flatten(),
      new nn.Linear(16, 3),
    ).to('float64');
    try {
      tidy(() => {
        const x = randLeaf([3, 2, 4, 4], 4);
        net.train();
        // the conv bias is a per-channel constant that train-mode batch norm subtracts
        // again: its gradient is exactly zero here (non-zero in eval mode below)
        gradcheck(() => net.forward(x), [x, ...net.parameters()], { allowZeroGrad: true });
        const convBias = net.parameters()[1];
        gradcheck(() => net.forward(x), [x, ...net.parameters().filter((p) => p !== convBias)]);
        net.eval();
        gradcheck(() => net.forward(x), [x, ...net.parameters()]);
      });
    } finally {
      net.dispose();
    }
  });

  test('parameter-free layers: AvgPool2d, AdaptiveAvgPool2d, Identity, Flatten, Dropout (eval)', () => {
    tidy(() => {
      const x = randLeaf([2, 3, 4, 6], 5);
      const mods: nn.Module[] = [
        new nn.AvgPool2d(2, { stride: 1 }),
        new nn.AdaptiveAvgPool2d([3, 2]),
        new nn.Identity(),
        new nn.Flatten(),
        new nn.Flatten(0, 2),
        new nn.Dropout(0.3).eval(),
        new nn.Sequential(new nn.AvgPool2d(2), new nn.Identity(), new nn.Flatten()),
      ];
      for (const m of mods) gradcheck(() => m.forward(x), [x]);
    });
  });
});

// running statistics, dtype casts, naming, train/eval and Dropout: test/nn/module.test.ts
describe('Sequential', () => {
  test('Sequential frees its intermediates; the result is the only new handle', () => {
    const net = new nn.Sequential(new nn.Linear(4, 8), new nn.ReLU(), new nn.Linear(8, 2));
    try {
      const x = tensor(new Float32Array(12).fill(0.5), [3, 4]);
      const live = liveTensors();
      const y = net.forward(x);
      assert.equal(liveTensors(), live + 1);
      assert.deepEqual(y.shape, [3, 2]);
      assert.ok(!x.isDisposed, 'the input belongs to the caller');
      y.dispose();
      const empty = new nn.Sequential();
      const z = empty.forward(x);
      assert.notEqual(z, x);
      assert.deepEqual(z.toList(), x.toList());
      z.dispose();
      x.dispose();
      assert.equal(liveTensors(), live - 1);
    } finally {
      net.dispose();
    }
  });
});
