// Finite-difference gradient checks (float64) for shape / indexing ops, reductions and
// softmax-type functions.
import { before, beforeEach, describe, test } from 'node:test';
import {
  cat,
  logSoftmax,
  manualSeed,
  maskedFill,
  pad,
  scatter,
  setNumThreads,
  softmax,
  stack,
  tensor,
  tidy,
  where,
} from '../../src/index.js';
import { distinctLeaf, gradcheck, randLeaf, uniformLeaf } from '../helpers/gradcheck.js';

// Finite differences run thousands of tiny float64 ops: intra-op threads only add
// synchronisation there (and crawl when other processes hold the cores).
before(() => setNumThreads(1));
beforeEach(() => manualSeed(20240611));

const idx = (v: number[], shape?: number[]) => tensor(v, shape, { dtype: 'int64' });

describe('shape ops', () => {
  test('reshape, view, flatten', () => {
    tidy(() => {
      const x = randLeaf([2, 3, 4], 1);
      gradcheck(() => x.reshape(4, 6), [x]);
      gradcheck(() => x.reshape([-1, 2]), [x]);
      gradcheck(() => x.view(6, 4), [x]);
      gradcheck(() => x.flatten(), [x]);
      gradcheck(() => x.flatten(1), [x]);
      gradcheck(() => x.flatten(0, 1), [x]);
      // a reshape of a non-contiguous view copies: the gradient must still flow
      gradcheck(() => x.transpose(0, 2).reshape(-1), [x]);
    });
  });

  test('permute, transpose, squeeze, unsqueeze, flip', () => {
    tidy(() => {
      const x = randLeaf([2, 1, 3], 2);
      gradcheck(() => x.permute(2, 0, 1), [x]);
      gradcheck(() => x.permute([1, 2, 0]), [x]);
      gradcheck(() => x.transpose(0, 2), [x]);
      gradcheck(() => x.transpose(-1, -3), [x]);
      gradcheck(() => x.squeeze(), [x]);
      gradcheck(() => x.squeeze(1), [x]);
      gradcheck(() => x.unsqueeze(0), [x]);
      gradcheck(() => x.flip(0, 2), [x]);
    });
  });

  test('cat and stack along several dims', () => {
    tidy(() => {
      const a = randLeaf([2, 3], 3);
      const b = randLeaf([2, 1], 4);
      const c = randLeaf([2, 3], 5);
      gradcheck(() => cat([a, b, c], 1), [a, b, c]);
      gradcheck(() => cat([a, c], 0), [a, c]);
      gradcheck(() => cat([a, a.mul(2)], -1), [a]);
      gradcheck(() => stack([a, c]), [a, c]);
      gradcheck(() => stack([a, c], 2), [a, c]);
      gradcheck(() => stack([a, c, a], 1), [a, c]);
    });
  });

  test('narrow, slice (with step), select, split', () => {
    tidy(() => {
      const x = randLeaf([4, 5], 6);
      gradcheck(() => x.narrow(1, 1, 3), [x]);
      gradcheck(() => x.narrow(0, 2, 2), [x]);
      gradcheck(() => x.slice(1, 0, 5, 2), [x]);
      gradcheck(() => x.slice(0, 1, 4), [x]);
      gradcheck(() => x.slice(1, -3, 5), [x]);
      gradcheck(() => x.select(0, 2), [x]);
      gradcheck(() => x.select(1, -1), [x]);
      gradcheck(() => {
        const [p, q] = x.split([1, 3], 0);
        return p.mul(q.sum(0, true));
      }, [x]);
    });
  });

  test('indexSelect (repeated indices accumulate) and gather', () => {
    tidy(() => {
      const x = randLeaf([4, 3], 7);
      gradcheck(() => x.indexSelect(0, idx([3, 0, 3, 1])), [x]);
      gradcheck(() => x.indexSelect(1, idx([2, 2, 0])), [x]);
      gradcheck(() => x.indexSelect(0, tensor([1, 1], undefined, { dtype: 'int32' })), [x]);
      gradcheck(() => x.gather(1, idx([0, 2, 2, 1, 0, 0, 1, 2], [4, 2])), [x]);
      gradcheck(() => x.gather(0, idx([3, 0, 1, 1, 2, 3], [2, 3])), [x]);
    });
  });

  test('expand and repeat', () => {
    tidy(() => {
      const x = randLeaf([3, 1], 8);
      gradcheck(() => x.expand(3, 4), [x]);
      gradcheck(() => x.expand([2, 3, 2]), [x]);
      gradcheck(() => x.expand(-1, 5), [x]);
      gradcheck(() => x.repeat(2, 3), [x]);
    });
  });

  test('where, maskedFill, scatter, pad', () => {
    tidy(() => {
      const a = randLeaf([2, 3], 9);
      const b = randLeaf([2, 3], 10);
      const cond = tensor([1, 0, 1, 0, 0, 1], [2, 3], { dtype: 'bool' });
      gradcheck(() => where(cond, a, b), [a, b]);
      gradcheck(() => maskedFill(a, cond, 3), [a]);
      const src = randLeaf([2, 3], 11);
      const index = idx([0, 1, 2, 2, 0, 1], [2, 3]);
      const base = randLeaf([2, 4], 12);
      gradcheck(() => scatter(base, 1, index.narrow(1, 0, 3), src), [base, src]);
      gradcheck(() => scatter(base, 1, index, src, { add: true }), [base, src]);
      const img = randLeaf([1, 2, 3, 4], 13);
      gradcheck(() => pad(img, [1, 2, 0, 1]), [img]);
      gradcheck(() => pad(img, [1, 1, 2, 1], { mode: 'constant', value: 0.5 }), [img]);
      gradcheck(() => pad(img, [2, 1, 1, 2], { mode: 'reflect' }), [img]);
      gradcheck(() => pad(img, [1, 2, 2, 1], { mode: 'replicate' }), [img]);
    });
  });
});

describe('reductions', () => {
  test('sum and mean: all, one dim, several dims, keepdim', () => {
    tidy(() => {
      const x = randLeaf([2, 3, 4], 14);
      gradcheck(() => x.sum(), [x]);
      gradcheck(() => x.sum(1), [x]);
      gradcheck(() => x.sum([0, 2]), [x]);
      gradcheck(() => x.sum(-1, true), [x]);
      gradcheck(() => x.mean(), [x]);
      gradcheck(() => x.mean(0), [x]);
      gradcheck(() => x.mean([1, 2], true), [x]);
    });
  });

  test('max / min (amax, amin) over all elements and over dims, without ties', () => {
    tidy(() => {
      const x = distinctLeaf([3, 4, 2], 15);
      gradcheck(() => x.max(), [x]);
      gradcheck(() => x.max(1), [x]);
      gradcheck(() => x.max([0, 2], true), [x]);
      gradcheck(() => x.min(), [x]);
      gradcheck(() => x.min(-1), [x]);
      gradcheck(() => x.maxWithIndices(1).values, [x]);
      gradcheck(() => x.minWithIndices(0, true).values, [x]);
      gradcheck(() => x.topk(2, { dim: 1 }).values, [x]);
      gradcheck(() => x.sort(1, true).values, [x]);
    });
  });

  test('logsumexp over all elements and over dims', () => {
    tidy(() => {
      const x = randLeaf([3, 4], 16, { scale: 2 });
      gradcheck(() => x.logsumexp(), [x]);
      gradcheck(() => x.logsumexp(undefined, true), [x]);
      gradcheck(() => x.logsumexp(1), [x]);
      gradcheck(() => x.logsumexp(0, true), [x]);
      gradcheck(() => x.logsumexp([0, 1]), [x]);
    });
  });

  test('variance, std, prod, cumsum', () => {
    tidy(() => {
      const x = randLeaf([3, 4], 17);
      gradcheck(() => x.variance(), [x]);
      gradcheck(() => x.variance(1, { unbiased: false, keepdim: true }), [x]);
      gradcheck(() => x.std(), [x]);
      gradcheck(() => x.std(0), [x]);
      const p = uniformLeaf([3, 4], 18, 0.5, 1.5);
      gradcheck(() => p.prod(), [p]);
      gradcheck(() => p.prod(1), [p]);
      gradcheck(() => x.cumsum(1), [x]);
    });
  });
});

describe('softmax family', () => {
  test('softmax and logSoftmax along each dim', () => {
    tidy(() => {
      const x = randLeaf([2, 3, 4], 19, { scale: 2 });
      gradcheck(() => x.softmax(), [x]);
      gradcheck(() => x.softmax(1), [x]);
      gradcheck(() => softmax(x, 0), [x]);
      gradcheck(() => x.logSoftmax(), [x]);
      gradcheck(() => x.logSoftmax(1), [x]);
      gradcheck(() => logSoftmax(x, 0), [x]);
    });
  });
});
