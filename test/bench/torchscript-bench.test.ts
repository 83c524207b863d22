// The TorchScript benchmark's schedule (src/bench/torchscript.ts): timed blocks run the cases
// ABBA (forward, reversed, ...), so no case is always measured first; its usage names the options.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { caseOrder, formatTorchScriptRows, TORCHSCRIPT_BENCH_USAGE } from '../../src/bench/torchscript.js';

test('the TorchScript benchmark interleaves its cases ABBA: no case is first in every round, and every case has the same mean position', () => {
  const n = 6;
  const rounds = Array.from({ length: 4 }, (_, r) => caseOrder(n, r));
  assert.deepEqual(rounds[0], [0, 1, 2, 3, 4, 5]);
  assert.deepEqual(rounds[1], [5, 4, 3, 2, 1, 0]);
  assert.deepEqual(rounds[2], rounds[0]);
  for (const order of rounds) assert.deepEqual([...order].sort(), [0, 1, 2, 3, 4, 5], 'every case once per round');
  assert.ok(new Set(rounds.map((o) => o[0])).size > 1, 'the first case changes between rounds');
  for (let c = 0; c < n; c++) {
    const mean = rounds.reduce((s, o) => s + o.indexOf(c), 0) / rounds.length;
    assert.equal(mean, (n - 1) / 2, `case ${c}: mean position ${mean}`);
  }
  for (const opt of ['--reps', '--warmup-seconds', '--block-seconds', '--json', '--help'])
    assert.ok(TORCHSCRIPT_BENCH_USAGE.includes(opt), opt);
});

test("the TorchScript benchmark's table has one line per case with both ratios", () => {
  const t = formatTorchScriptRows([
    {
      model: 'base-mlp',
      batch: 64,
      forwardsPerBlock: 75,
      blocks: 5,
      warmupForwards: 73,
      oursMs: 0.5,
      pytorchMs: 0.52,
      ratio: 1.04,
      onnxMs: 0.4,
      onnxRatio: 0.8,
    },
  ]).split('\n');
  assert.equal(t.length, 3);
  assert.match(t[0], /\| model \| batch \| ours \(ms\) \| PyTorch \(ms\) \|/);
  assert.equal(t[2], '| base-mlp | 64 | 0.500 | 0.520 | 0.400 | 1.04 | 0.80 | 75 x 5 |');
});
