import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, liveTensors } from '../../src/index.js';
import { pipe } from '../../src/nn/index.js';

test('pipe applies steps in order, frees every intermediate and never the input', () => {
  const x = tensor([1, 2, 3]);
  const before = liveTensors();
  const y = pipe(
    x,
    (t) => t.mul(2),
    (t) => t.add(1),
    (t) => t.neg(),
  );
  assert.deepEqual(y.toList(), [-3, -5, -7]);
  assert.equal(liveTensors(), before + 1, 'only the result is alive');
  assert.deepEqual(x.toList(), [1, 2, 3]);
  const same = pipe(x);
  assert.notEqual(same, x, 'with no steps the result is a new handle the caller may dispose');
  same.dispose();
  assert.deepEqual(x.toList(), [1, 2, 3]);
  y.dispose();
  x.dispose();
});

test('gradients flow through a pipe although intermediates were freed', () => {
  const x = tensor([1, 2, 3]).requiresGrad_(true);
  const y = pipe(
    x,
    (t) => t.mul(t),
    (t) => t.sum(),
  );
  y.backward();
  assert.deepEqual(x.grad!.toList(), [2, 4, 6]);
  y.dispose();
  x.dispose();
});
