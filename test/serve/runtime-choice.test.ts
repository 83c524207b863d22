// A model given both as TorchScript and as ONNX: both must answer alike, the faster (timed side
// by side, here on an injected clock) serves, the other is closed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chooseFasterRuntime, siblingModelFile } from '../../src/serve/runtime-choice.js';
import type { ServedModel } from '../../src/serve/served-model.js';
import { packageRoot } from '../../src/util/package-root.js';

/** A model whose forward returns `out` and advances the virtual clock by `costMs`. */
function fake(clock: { t: number }, costMs: number, out: number[]) {
  const state = { loaded: 0, closed: 0, forwards: 0 };
  const m: ServedModel = {
    name: 'm',
    platform: 'fake',
    inputShape: [2, 2],
    sideInputs: [],
    outputShape: [out.length],
    description: 'fake',
    load: async () => void state.loaded++,
    forward: async () => {
      state.forwards++;
      clock.t += costMs;
      return Float32Array.from(out);
    },
    close: async () => void state.closed++,
  };
  return { m, state };
}

test('the faster of two runtimes that answer alike serves; the slower is closed; both medians are reported', async () => {
  const clock = { t: 0 };
  const a = fake(clock, 3, [1, 2, 3]);
  const b = fake(clock, 1, [1, 2, 3.00001]);
  const c = await chooseFasterRuntime(
    [
      { path: 'f.pt', model: a.m },
      { path: 'f.onnx', model: b.m },
    ],
    { device: 'cpu', threads: 1, reps: 10, now: () => clock.t },
  );
  assert.equal(c.chosen.path, 'f.onnx');
  assert.deepEqual(c.times, [
    { path: 'f.pt', medianMs: 3 },
    { path: 'f.onnx', medianMs: 1 },
  ]);
  assert.deepEqual([a.state.closed, b.state.closed], [1, 0]);
  assert.deepEqual([a.state.loaded, b.state.loaded], [1, 1]);
  // 1 comparison + 3 warm-up + 10 timed forwards each
  assert.deepEqual([a.state.forwards, b.state.forwards], [14, 14]);
  assert.match(c.reason, /f\.pt 3\.000 ms, f\.onnx 1\.000 ms; serving f\.onnx/);
});

test('runtimes that answer differently are not timed: the named file serves and the reason says why', async () => {
  const clock = { t: 0 };
  const a = fake(clock, 3, [1, 2, 3]);
  const b = fake(clock, 1, [1, 2, 4]);
  const c = await chooseFasterRuntime(
    [
      { path: 'f.pt', model: a.m },
      { path: 'f.onnx', model: b.m },
    ],
    { device: 'cpu', threads: 1, now: () => clock.t },
  );
  assert.equal(c.chosen.path, 'f.pt');
  assert.deepEqual(c.times, []);
  assert.equal(b.state.closed, 1);
  assert.match(c.reason, /answer differently \(max abs\. difference 1\.00e\+0\): serving f\.pt/);
});

test('siblingModelFile finds the same model in the other format next to it, and nothing otherwise', () => {
  const own = join(packageRoot(), 'examples', 'own-model');
  assert.equal(siblingModelFile(join(own, 'small_cnn.pt')), join(own, 'small_cnn.onnx'));
  assert.equal(siblingModelFile(join(own, 'small_cnn.onnx')), join(own, 'small_cnn.pt'));
  const d = mkdtempSync(join(tmpdir(), 'coded-sibling-'));
  try {
    writeFileSync(join(d, 'm.onnx'), '');
    assert.equal(siblingModelFile(join(d, 'm.onnx')), null);
    writeFileSync(join(d, 'm.pth'), '');
    assert.equal(siblingModelFile(join(d, 'm.onnx')), join(d, 'm.pth'));
    assert.equal(siblingModelFile(join(d, 'model.safetensors')), null);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
