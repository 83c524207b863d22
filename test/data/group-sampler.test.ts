// The k-group sampler: groups of k distinct samples, no sample twice in an epoch (the
// remainder dropped), coverage, batch sizes, seeded determinism, epochs that differ.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor } from '../../src/engine/tensor.js';
import { GroupSampler, gatherGroups } from '../../src/data/index.js';
import { isolateCache } from './helpers.js';

isolateCache(after);

function collect(s: GroupSampler, epoch: number): number[][] {
  const groups: number[][] = [];
  for (const b of s.batches(epoch)) {
    for (let g = 0; g < b.groups; g++) groups.push(Array.from(b.indices.subarray(g * b.k, (g + 1) * b.k)));
  }
  return groups;
}

test('groups have k distinct samples, none repeated within an epoch, remainder dropped', () => {
  for (const [size, k, B] of [
    [1003, 4, 10],
    [100, 2, 7],
    [10, 3, 1],
    [60000, 5, 64],
  ]) {
    const s = new GroupSampler({ size, k, groupsPerBatch: B, seed: 1 });
    const groups = collect(s, 0);
    assert.equal(groups.length, Math.floor(size / k));
    assert.equal(s.groupsPerEpoch, groups.length);
    const seen = new Set<number>();
    for (const g of groups) {
      assert.equal(g.length, k);
      assert.equal(new Set(g).size, k, 'distinct within a group');
      for (const i of g) {
        assert.ok(i >= 0 && i < size);
        assert.ok(!seen.has(i), `sample ${i} used twice in one epoch`);
        seen.add(i);
      }
    }
    assert.equal(seen.size, Math.floor(size / k) * k, 'all but the remainder are used');
  }
});

test('batches hold B groups (last one partial unless dropped)', () => {
  const s = new GroupSampler({ size: 103, k: 4, groupsPerBatch: 10, seed: 0 });
  const sizes = [...s.batches(0)].map((b) => b.groups);
  assert.deepEqual(sizes, [10, 10, 5]);
  assert.equal(s.batchesPerEpoch, 3);
  const d = new GroupSampler({ size: 103, k: 4, groupsPerBatch: 10, seed: 0, dropLastBatch: true });
  assert.deepEqual(
    [...d.batches(0)].map((b) => b.groups),
    [10, 10],
  );
  assert.throws(() => new GroupSampler({ size: 3, k: 4, groupsPerBatch: 1, seed: 0 }), /larger than the dataset/);
  assert.throws(() => new GroupSampler({ size: 10, k: 0, groupsPerBatch: 1, seed: 0 }), /k must be a positive integer/);
});

test('every sample is covered across epochs; seeded determinism; epochs and seeds differ', () => {
  const s = new GroupSampler({ size: 101, k: 5, groupsPerBatch: 3, seed: 7 });
  assert.deepEqual(collect(s, 0), collect(new GroupSampler({ size: 101, k: 5, groupsPerBatch: 3, seed: 7 }), 0));
  assert.deepEqual(collect(s, 3), collect(s, 3), 'an epoch can be replayed');
  assert.notDeepEqual(collect(s, 0), collect(s, 1));
  assert.notDeepEqual(collect(s, 0), collect(new GroupSampler({ size: 101, k: 5, groupsPerBatch: 3, seed: 8 }), 0));
  const covered = new Set<number>();
  for (let e = 0; e < 10; e++) for (const g of collect(s, e)) for (const i of g) covered.add(i);
  assert.equal(covered.size, 101, 'the dropped remainder differs between epochs');
});

test('gatherGroups returns [G, k, C, H, W] images and [G, k] labels in group order', () => {
  const n = 20;
  const split = {
    images: tensor(
      Float32Array.from({ length: n * 4 }, (_, i) => Math.floor(i / 4)),
      [n, 1, 2, 2],
    ),
    labels: tensor(
      BigInt64Array.from({ length: n }, (_, i) => BigInt(i)),
      [n],
    ),
    size: n,
  };
  try {
    const s = new GroupSampler({ size: n, k: 3, groupsPerBatch: 4, seed: 2 });
    const b = s.batches(0).next().value!;
    const { images, labels } = gatherGroups(split, b);
    assert.deepEqual(images.shape, [4, 3, 1, 2, 2]);
    assert.deepEqual(labels.shape, [4, 3]);
    assert.deepEqual(labels.toList(), Array.from(b.indices));
    assert.deepEqual(images.flatten(2).select(2, 0).flatten().toList(), Array.from(b.indices));
    images.dispose();
    labels.dispose();
  } finally {
    split.images.dispose();
    split.labels.dispose();
  }
});
