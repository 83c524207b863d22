import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, tidy, liveTensors } from '../../src/index.js';

test('matmul of known values', () => {
  tidy(() => {
    const a = tensor([
      [1, 2],
      [3, 4],
    ]);
    assert.deepEqual(a.matmul(a).toList(), [7, 10, 15, 22]);
  });
});

test('tidy frees everything it created except the result', () => {
  const before = liveTensors();
  const r = tidy(() => tensor([1, 2, 3]).mul(2).add(1));
  assert.equal(liveTensors(), before + 1);
  assert.deepEqual(r.toList(), [3, 5, 7]);
  r.dispose();
  assert.equal(liveTensors(), before);
});
