// Several frontend processes per mode: each owns every F-th instance of every pool, and the
// planner simulates each on its own share (1/F of the rate) and merges their answers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { shardOf, shareSizes, type ExperimentSpec } from '../../src/bench/serving-experiment.js';
import { scenarioFor } from '../../src/bench/predict.js';
import { frontendShares, shareSize } from '../../src/plan/frontend-shares.js';

test('instances are dealt out to frontends in turn: every instance in exactly one shard, shard sizes differ by at most one', () => {
  const xs = Array.from({ length: 18 }, (_, i) => `10.0.0.${i}:9000`);
  for (const F of [1, 2, 3, 4, 5]) {
    const shards = Array.from({ length: F }, (_, s) => shardOf(xs, s, F));
    assert.deepEqual(shards.flat().sort(), [...xs].sort());
    const sizes = shards.map((s) => s.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `F=${F}: ${sizes}`);
  }
});

test('the prediction for F frontends simulates each on its own share: 6 parity over 4 frontends are 2, 2, 1, 1, at 1/F of the rate', () => {
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
    frontends: 4,
  } as unknown as ExperimentSpec;
  const service = { kind: 'dist', dist: { kind: 'const', ms: 1 }, label: 'const:1' } as never;
  const coded = scenarioFor(spec, 'coded', service);
  assert.deepEqual([coded.base, coded.parity, coded.rate], [12, 6, 270], 'the scenario is the whole deployment');
  const shares = frontendShares(coded, 4);
  assert.deepEqual(
    shares.map((s) => [s.base, s.parity, s.rate]),
    [
      [3, 2, 67.5],
      [3, 2, 67.5],
      [3, 1, 67.5],
      [3, 1, 67.5],
    ],
  );
  // the same counts as the instances the bench deals out
  const parity = Array.from({ length: 6 }, (_, i) => i);
  assert.deepEqual(
    shares.map((s) => s.parity),
    [0, 1, 2, 3].map((s) => shardOf(parity, s, 4).length),
  );
  assert.equal(new Set(shares.map((s) => s.seed)).size, 4, 'each frontend draws its own arrivals');
  assert.equal(shares[0].seed, coded.seed);
  // equal resources: 18 replicas dealt out
  assert.deepEqual(
    frontendShares(scenarioFor(spec, 'equal-resources', service), 4).map((s) => [s.base, s.parity]),
    [
      [5, 0],
      [5, 0],
      [4, 0],
      [4, 0],
    ],
  );
  // the bench report says what each frontend owns
  const names = (n: number) => Array.from({ length: n }, (_, i) => `10.0.0.${i}:9000`);
  const dealt = [0, 1, 2, 3].map((f) => ({
    pools: { base: { instances: shardOf(names(12), f, 4) }, parity: [{ instances: shardOf(names(6), f, 4) }] },
  }));
  assert.equal(shareSizes(dealt), '3 base + 2 parity, 3 + 2, 3 + 1, 3 + 1');
  assert.equal(shareSizes([0, 1, 2, 3].map((f) => ({ pools: { base: { instances: shardOf(names(18), f, 4) } } }))), '5 base, 5, 4, 4');
  assert.throws(() => frontendShares(coded, 7), /7 frontends need at least 7 instances in every pool/);
  assert.deepEqual(
    [0, 1, 2, 3, 4].map((s) => shareSize(3, s, 5)),
    [1, 1, 1, 0, 0],
  );
});
