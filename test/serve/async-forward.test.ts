import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { AsyncForward, tensor, tidy, noGrad, manualSeed } from '../../src/index.js';
import { saveCheckpoint } from '../../src/nn/index.js';
import build from '../fixtures/mlp-model.js';

const fixture = fileURLToPath(new URL('../fixtures/mlp-model.js', import.meta.url));

test('async forward matches the synchronous forward of the same checkpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-af-'));
  try {
    manualSeed(3);
    const model = build({ width: 32 });
    const ckpt = join(dir, 'm.safetensors');
    saveCheckpoint(ckpt, model, { test: true });
    const input = Float32Array.from({ length: 3 * 16 }, (_, i) => Math.sin(i));
    const expected = tidy(() =>
      noGrad(() =>
        model
          .eval()
          .forward(tensor(input, [3, 16]))
          .dataFloat32(),
      ),
    );
    const af = await AsyncForward.create({ module: fixture, options: { width: 32 }, checkpoint: ckpt, threads: 1 });
    try {
      const r = await af.forward(input, [3, 16]);
      assert.deepEqual(r.shape, [3, 4]);
      for (let i = 0; i < expected.length; i++) assert.ok(Math.abs(r.data[i] - expected[i]) < 1e-5);
    } finally {
      await af.close();
      model.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the event loop keeps running while a forward pass computes', async () => {
  const af = await AsyncForward.create({ module: fixture, options: { width: 1024, depth: 6 }, threads: 1 });
  try {
    const input = new Float32Array(512 * 16).fill(0.5);
    // several heavy passes queued back to back. The event loop's own accounting says how long it
    // ran JavaScript (active) and how long it waited for events (idle): a forward pass computed on
    // the main thread would be active time; computed on the worker, the loop idles meanwhile. Both
    // stretch alike on a busy machine, so the comparison does not depend on its speed.
    const before = performance.eventLoopUtilization();
    await Promise.all([0, 1, 2, 3].map(() => af.forward(input, [512, 16])));
    const u = performance.eventLoopUtilization(before);
    assert.ok(
      u.idle > u.active,
      `the event loop was busy ${u.active.toFixed(1)} ms and idle only ${u.idle.toFixed(1)} ms while the forward passes ran`,
    );
  } finally {
    await af.close();
  }
});

test('bad input is rejected with a clear error and the worker keeps serving', async () => {
  const af = await AsyncForward.create({ module: fixture, threads: 1 });
  try {
    await assert.rejects(af.forward(new Float32Array(10), [2, 16]), /does not match shape/);
    await assert.rejects(af.forward(new Float32Array(2 * 7), [2, 7]), /libtorch: .*shapes cannot be multiplied/);
    const ok = await af.forward(new Float32Array(16), [1, 16]);
    assert.deepEqual(ok.shape, [1, 4]);
  } finally {
    await af.close();
  }
});

test('a module without a model builder fails to load with a clear error', async () => {
  await assert.rejects(AsyncForward.create({ module: fixture, export: 'nope' }), /no exported function 'nope'/);
});
