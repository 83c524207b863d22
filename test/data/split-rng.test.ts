// Seeded generator, validation hold-out (deterministic, disjoint, right sizes), subsets and
// seeded shuffling.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor } from '../../src/engine/tensor.js';
import {
  Rng,
  deriveSeed,
  seededPermutation,
  shuffleSplit,
  subsetSplit,
  takeRaw,
  concatRaw,
  validationIndices,
  type RawImages,
} from '../../src/data/index.js';
import { isolateCache } from './helpers.js';

isolateCache(after);

test('Rng: deterministic per seed, different across seeds, uniform enough', () => {
  const a = new Rng(42);
  const b = new Rng(42);
  const c = new Rng(43);
  const xs = Array.from({ length: 100 }, () => a.nextU32());
  assert.deepEqual(
    xs,
    Array.from({ length: 100 }, () => b.nextU32()),
  );
  assert.notDeepEqual(
    xs,
    Array.from({ length: 100 }, () => c.nextU32()),
  );
  const r = new Rng(7);
  const counts = new Array(10).fill(0);
  for (let i = 0; i < 20000; i++) counts[r.int(10)]++;
  for (const n of counts) assert.ok(n > 1800 && n < 2200, `bucket ${n}`);
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < 20000; i++) {
    const v = r.normal();
    s += v;
    s2 += v * v;
  }
  assert.ok(Math.abs(s / 20000) < 0.05 && Math.abs(s2 / 20000 - 1) < 0.05);
  assert.notEqual(deriveSeed(1, 'a', 0), deriveSeed(1, 'a', 1));
  assert.notEqual(deriveSeed(1, 'a', 0), deriveSeed(2, 'a', 0));
  assert.equal(deriveSeed(1, 'a', 0), deriveSeed(1, 'a', 0));
});

test('seeded permutation: a permutation, reproducible, seed-dependent', () => {
  const p = seededPermutation(1000, 5, 'x');
  assert.deepEqual(
    Array.from(p).sort((a, b) => a - b),
    Array.from({ length: 1000 }, (_, i) => i),
  );
  assert.deepEqual(p, seededPermutation(1000, 5, 'x'));
  assert.notDeepEqual(p, seededPermutation(1000, 6, 'x'));
  assert.notDeepEqual(p, seededPermutation(1000, 5, 'y'));
});

test('validation hold-out: right sizes, disjoint, covering, deterministic for a seed', () => {
  const n = 60000;
  const h = validationIndices(n, 5000, 1);
  assert.equal(h.validation.length, 5000);
  assert.equal(h.train.length, 55000);
  const seen = new Uint8Array(n);
  for (const i of h.train) seen[i]++;
  for (const i of h.validation) seen[i]++;
  assert.ok(
    seen.every((v) => v === 1),
    'every index exactly once',
  );
  for (let i = 1; i < h.validation.length; i++) assert.ok(h.validation[i] > h.validation[i - 1], 'sorted');
  assert.deepEqual(validationIndices(n, 5000, 1), h);
  const other = validationIndices(n, 5000, 2);
  assert.notDeepEqual(other.validation, h.validation);
  // spread over the whole training set, not a contiguous block
  assert.ok(h.validation[0] < 100 && h.validation[4999] > n - 100);
  assert.throws(() => validationIndices(100, 100, 0), /validation size/);
  assert.throws(() => validationIndices(100, -1, 0), /validation size/);
});

test('raw subsets and concatenation keep images with their labels', () => {
  const raw: RawImages = {
    images: Uint8Array.from({ length: 5 * 4 }, (_, i) => Math.floor(i / 4) * 10),
    labels: Uint8Array.from([0, 1, 2, 3, 4]),
    count: 5,
    channels: 1,
    height: 2,
    width: 2,
  };
  const t = takeRaw(raw, [4, 0, 2]);
  assert.deepEqual(Array.from(t.labels), [4, 0, 2]);
  assert.deepEqual(Array.from(t.images), [40, 40, 40, 40, 0, 0, 0, 0, 20, 20, 20, 20]);
  const c = concatRaw([t, takeRaw(raw, [1])]);
  assert.equal(c.count, 4);
  assert.deepEqual(Array.from(c.labels), [4, 0, 2, 1]);
  assert.throws(() => takeRaw(raw, [5]), /out of range/);
});

test('subset and seeded shuffle of a tensor split keep pairs aligned', () => {
  const n = 50;
  const split = {
    images: tensor(
      Float32Array.from({ length: n * 2 }, (_, i) => Math.floor(i / 2)),
      [n, 1, 1, 2],
    ),
    labels: tensor(
      BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
      [n],
    ),
    size: n,
  };
  const s1 = shuffleSplit(split, 3, 0);
  const s2 = shuffleSplit(split, 3, 0);
  const s3 = shuffleSplit(split, 3, 1);
  try {
    const l1 = s1.labels.toList();
    assert.deepEqual(l1, s2.labels.toList());
    assert.notDeepEqual(l1, s3.labels.toList());
    assert.notDeepEqual(
      l1,
      Array.from({ length: n }, (_, i) => i),
    );
    assert.deepEqual(
      [...l1].sort((a, b) => a - b),
      Array.from({ length: n }, (_, i) => i),
    );
    const img = s1.images.flatten(1).select(1, 1).toList();
    assert.deepEqual(img, l1, 'each image moves with its label');
    const sub = subsetSplit(split, [7, 3]);
    assert.equal(sub.size, 2);
    assert.deepEqual(sub.labels.toList(), [7, 3]);
    for (const s of [s1, s2, s3, sub]) {
      s.images.dispose();
      s.labels.dispose();
    }
  } finally {
    split.images.dispose();
    split.labels.dispose();
  }
});
