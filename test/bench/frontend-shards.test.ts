// Several frontend processes per mode: each owns every F-th instance of every pool, and the
// planner predicts one shard (1/F of the instances at 1/F of the rate).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shardOf, type ExperimentSpec } from '../../src/bench/serving-experiment.js';
import { scenarioFor } from '../../src/bench/predict.js';

test('instances are dealt out to frontends in turn: every instance in exactly one shard, shard sizes differ by at most one', () => {
  const xs = Array.from({ length: 18 }, (_, i) => `10.0.0.${i}:9000`);
  for (const F of [1, 2, 3, 4, 5]) {
    const shards = Array.from({ length: F }, (_, s) => shardOf(xs, s, F));
    assert.deepEqual(shards.flat().sort(), [...xs].sort());
    const sizes = shards.map((s) => s.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `F=${F}: ${sizes}`);
  }
});

test('the prediction for F frontends simulates one of them: 1/F of the instances at 1/F of the rate', () => {
  const spec = {
    base: 12,
    parity: 6,
    rate: 270,
    queries: 1000,
    warmup: 10,
    seed: 1,
    stragglers: { slowProb: 0, slowMs: 0 },
    sloMs: 1000,
    decodeDeadlineMs: 10,
    maxWaitMs: 5,
    parityDelayMs: 0,
    hedgeMs: 10,
    fallback: true,
    concurrency: 1,
    shape: [4],
    code: { family: 'addition', k: 2, r: 1 },
    frontends: 3,
  } as unknown as ExperimentSpec;
  const s = scenarioFor(spec, 'coded', { kind: 'constant', ms: 1 } as never);
  assert.deepEqual([s.base, s.parity, s.rate], [4, 2, 90]);
  const one = scenarioFor({ ...spec, frontends: 1 }, 'coded', { kind: 'constant', ms: 1 } as never);
  assert.deepEqual([one.base, one.parity, one.rate], [12, 6, 270]);
});
