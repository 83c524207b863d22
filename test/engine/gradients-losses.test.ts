// Finite-difference gradient checks (float64) for the losses, every reduction.
import { before, beforeEach, describe, test } from 'node:test';
import {
  bceWithLogits,
  crossEntropy,
  klDiv,
  l1Loss,
  manualSeed,
  mseLoss,
  nllLoss,
  setNumThreads,
  tensor,
  tidy,
  type Reduction,
} from '../../src/index.js';
import { gradcheck, randLeaf, uniformLeaf } from '../helpers/gradcheck.js';

// Finite differences run thousands of tiny float64 ops: intra-op threads only add
// synchronisation there (and crawl when other processes hold the cores).
before(() => setNumThreads(1));
beforeEach(() => manualSeed(20240611));

const reductions: Reduction[] = ['mean', 'sum', 'none'];
const labels = (v: number[]) => tensor(v, undefined, { dtype: 'int64' });

describe('regression losses', () => {
  test('mseLoss w.r.t. input and target', () => {
    tidy(() => {
      const a = randLeaf([3, 4], 1);
      const b = randLeaf([3, 4], 2);
      for (const r of reductions) gradcheck(() => mseLoss(a, b, { reduction: r }), [a, b]);
      gradcheck(() => mseLoss(a, b), [a, b]);
    });
  });

  test('l1Loss away from the kink', () => {
    tidy(() => {
      const a = randLeaf([3, 4], 3);
      const b = a
        .detach()
        .add(
          tensor(
            Float64Array.from({ length: 12 }, (_, i) => (i % 2 ? 0.3 : -0.4) * (1 + i / 10)),
            [3, 4],
          ),
        )
        .requiresGrad_(true);
      for (const r of reductions) gradcheck(() => l1Loss(a, b, { reduction: r }), [a, b]);
    });
  });

  test('bceWithLogits w.r.t. logits and soft targets', () => {
    tidy(() => {
      const x = randLeaf([4, 3], 4, { scale: 2 });
      const t = uniformLeaf([4, 3], 5, 0.05, 0.95);
      for (const r of reductions) gradcheck(() => bceWithLogits(x, t, { reduction: r }), [x, t]);
    });
  });
});

describe('klDiv', () => {
  test("every reduction including 'batchmean', w.r.t. log-probabilities and target", () => {
    tidy(() => {
      const logits = randLeaf([3, 5], 6);
      const p = uniformLeaf([3, 5], 7, 0.05, 1);
      // input: log-probabilities computed in the graph; target: positive weights
      for (const r of ['batchmean', 'sum', 'mean', 'none'] as const) {
        gradcheck(() => klDiv(logits.logSoftmax(1), p, { reduction: r }), [logits, p]);
      }
      gradcheck(() => klDiv(logits.logSoftmax(1), p), [logits, p]);
    });
  });

  test('logTarget = true', () => {
    tidy(() => {
      const input = randLeaf([2, 4], 8);
      const logTarget = randLeaf([2, 4], 9);
      for (const r of ['batchmean', 'sum', 'none'] as const) {
        gradcheck(() => klDiv(input, logTarget, { reduction: r, logTarget: true }), [input, logTarget]);
      }
    });
  });
});

describe('crossEntropy', () => {
  test('class indices, every reduction', () => {
    tidy(() => {
      const logits = randLeaf([5, 4], 10, { scale: 2 });
      const y = labels([0, 3, 1, 3, 2]);
      for (const r of reductions) gradcheck(() => crossEntropy(logits, y, { reduction: r }), [logits]);
    });
  });

  test('label smoothing', () => {
    tidy(() => {
      const logits = randLeaf([5, 4], 11, { scale: 2 });
      const y = labels([2, 0, 1, 1, 3]);
      for (const r of reductions) gradcheck(() => crossEntropy(logits, y, { reduction: r, labelSmoothing: 0.1 }), [logits]);
      gradcheck(() => crossEntropy(logits, y, { labelSmoothing: 0.35 }), [logits]);
    });
  });

  test('class weights, ignoreIndex, spatial [N, C, H, W] input', () => {
    tidy(() => {
      const logits = randLeaf([4, 3], 12);
      const weight = tensor([0.5, 2, 1], undefined, { dtype: 'float64' });
      const y = labels([2, 0, 1, 2]);
      gradcheck(() => crossEntropy(logits, y, { weight }), [logits]);
      gradcheck(() => crossEntropy(logits, y, { weight, labelSmoothing: 0.2 }), [logits]);
      gradcheck(() => crossEntropy(logits, labels([2, -100, 1, -100])), [logits]);
      gradcheck(() => crossEntropy(logits, labels([2, 0, 1, 0]), { ignoreIndex: 0 }), [logits]);
      const img = randLeaf([2, 3, 2, 2], 13);
      const map = tensor([0, 1, 2, 2, 1, 1, 0, 2], [2, 2, 2], { dtype: 'int64' });
      gradcheck(() => crossEntropy(img, map), [img]);
    });
  });

  test('class-probability targets', () => {
    tidy(() => {
      const logits = randLeaf([3, 4], 14);
      const probs = uniformLeaf([3, 4], 15, 0.1, 1).detach();
      const q = probs.div(probs.sum(1, true));
      gradcheck(() => crossEntropy(logits, q), [logits]);
      gradcheck(() => crossEntropy(logits, q, { labelSmoothing: 0.1, reduction: 'sum' }), [logits]);
    });
  });
});

describe('nllLoss', () => {
  test('every reduction, weights and ignoreIndex, through logSoftmax', () => {
    tidy(() => {
      const x = randLeaf([5, 3], 16);
      const y = labels([0, 2, 1, 1, 2]);
      for (const r of reductions) gradcheck(() => nllLoss(x, y, { reduction: r }), [x]);
      gradcheck(() => nllLoss(x.logSoftmax(1), y), [x]);
      const weight = tensor([1, 0.5, 3], undefined, { dtype: 'float64' });
      gradcheck(() => nllLoss(x, y, { weight }), [x]);
      gradcheck(() => nllLoss(x, y, { ignoreIndex: 2 }), [x]);
    });
  });
});
