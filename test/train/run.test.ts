// The training-run skeleton's optimizer state: one naming written, the older namings read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, tidy, nn } from '../../src/index.js';
import { Adam } from '../../src/engine/optim/adam.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { optimizerState, restoreOptimizers } from '../../src/train/run.js';

function stepped(): { net: InstanceType<typeof nn.Linear>; opt: Adam } {
  manualSeed(2);
  const net = new nn.Linear(3, 2);
  const opt = new Adam(net.parameters(), { lr: 1e-2 });
  for (let i = 0; i < 3; i++) {
    tidy(() => {
      opt.zeroGrad();
      net
        .forward(randn([4, 3]))
        .square()
        .mean()
        .backward();
      opt.step();
    });
  }
  return { net, opt };
}

test('optimizer state is saved as "optimizers" + "optim<i>." and restored from it and from the older namings ("optim." and bare names)', () => {
  const { net, opt } = stepped();
  try {
    const s = optimizerState([opt]);
    assert.equal(s.meta.length, 1);
    assert.ok([...s.tensors.keys()].every((k) => k.startsWith('optim0.')));
    const want = opt.stateDict();
    const bare = new Map(Object.entries(want.tensors));
    const layouts: [Record<string, unknown>, Map<string, Tensor>][] = [
      [{ optimizers: s.meta }, s.tensors],
      [{ optimizer: s.meta[0] }, new Map([...bare].map(([k, t]) => [`optim.${k}`, t]))],
      [{ optimizer: s.meta[0] }, bare],
    ];
    for (const [meta, extra] of layouts) {
      const fresh = new Adam(net.parameters(), { lr: 1e-2 });
      try {
        restoreOptimizers([fresh], meta, extra);
        const got = fresh.stateDict();
        assert.deepEqual(got.steps, want.steps);
        for (const [k, t] of Object.entries(want.tensors)) assert.deepEqual(got.tensors[k].toList(), t.toList(), k);
      } finally {
        fresh.dispose();
      }
    }
  } finally {
    opt.dispose();
    net.dispose();
  }
});
