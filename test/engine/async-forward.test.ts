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
    const expected = tidy(() => noGrad(() => model.eval().forward(tensor(input, [3, 16])).dataFloat32()));
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
    let ticks = 0;
    const timer = setInterval(() => ticks++, 1);
    const started = performance.now();
    // several heavy passes queued back to back; a synchronous forward would starve the timer
    await Promise.all([0, 1, 2, 3].map(() => af.forward(input, [512, 16])));
    clearInterval(timer);
    const elapsed = performance.now() - started;
    if (elapsed > 20) assert.ok(ticks > 0, `timer never fired during ${elapsed.toFixed(0)} ms of forward passes`);
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
