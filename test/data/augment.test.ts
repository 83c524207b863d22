// CIFAR augmentation (random crop with 4-pixel padding + horizontal flip) against a plain
// JavaScript reference, its padding fill, and determinism for a seed.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, type Tensor } from '../../src/engine/tensor.js';
import {
  Rng,
  applyCropFlip,
  cropFlipAugmenter,
  cropFlipParams,
  paddingFill,
  randomCropFlip,
  type CropFlipParams,
} from '../../src/data/index.js';
import { isolateCache } from './helpers.js';

isolateCache(after);

const [N, C, H, W] = [6, 3, 8, 8];
const src = Float32Array.from({ length: N * C * H * W }, (_, i) => (i % 97) / 10 - 3);

function reference(p: CropFlipParams, padding: number, fill: number[]): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < N; i++)
    for (let c = 0; c < C; c++)
      for (let y = 0; y < H; y++)
        for (let x = 0; x < W; x++) {
          const yy = p.dy[i] + y - padding;
          const xx = p.dx[i] + (p.flip[i] ? W - 1 - x : x) - padding;
          out[((i * C + c) * H + y) * W + x] = yy >= 0 && yy < H && xx >= 0 && xx < W ? src[((i * C + c) * H + yy) * W + xx] : fill[c];
        }
  return out;
}

function close(a: Float32Array, b: Float32Array): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) < 1e-5, `element ${i}: ${a[i]} vs ${b[i]}`);
}

test('crop+flip matches the reference for random parameters, with per-channel fill', () => {
  const x = tensor(src, [N, C, H, W]);
  try {
    const fill = paddingFill({ mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] });
    assert.ok(Math.abs(fill[0] + 0.4914 / 0.2023) < 1e-12);
    for (const seed of [1, 2, 3]) {
      const p = cropFlipParams(N, 4, true, new Rng(seed));
      const y = applyCropFlip(x, p, { padding: 4, fill });
      close(y.dataFloat32(), reference(p, 4, fill));
      assert.deepEqual(y.shape, [N, C, H, W]);
      y.dispose();
    }
    // uniform fill path
    const p = cropFlipParams(N, 2, true, new Rng(9));
    const y = applyCropFlip(x, p, { padding: 2, fill: 0 });
    close(y.dataFloat32(), reference(p, 2, [0, 0, 0]));
    y.dispose();
  } finally {
    x.dispose();
  }
});

test('centre crop without flip is the identity; offsets and flip are exact', () => {
  const x = tensor(src, [N, C, H, W]);
  const ident: CropFlipParams = { dy: new Int32Array(N).fill(4), dx: new Int32Array(N).fill(4), flip: new Uint8Array(N) };
  const flipped: CropFlipParams = { ...ident, flip: new Uint8Array(N).fill(1) };
  const y1 = applyCropFlip(x, ident);
  const y2 = applyCropFlip(x, flipped);
  const y3 = x.flip(3);
  try {
    close(y1.dataFloat32(), src);
    close(y2.dataFloat32(), y3.dataFloat32());
  } finally {
    for (const t of [x, y1, y2, y3]) t.dispose();
  }
});

test('random crop+flip is deterministic for a seed, varies across seeds and batches', () => {
  const x = tensor(src, [N, C, H, W]);
  const run = (seed: number, batches: number): Float32Array[] => {
    const rng = new Rng(seed);
    const outs: Float32Array[] = [];
    for (let b = 0; b < batches; b++) {
      const y: Tensor = randomCropFlip(x, rng);
      outs.push(y.dataFloat32());
      y.dispose();
    }
    return outs;
  };
  try {
    const a = run(11, 2);
    const b = run(11, 2);
    assert.deepEqual(a, b);
    assert.notDeepEqual(a[0], a[1], 'consecutive batches get different crops');
    assert.notDeepEqual(run(12, 1)[0], a[0]);
    const p = cropFlipParams(4000, 4, true, new Rng(1));
    assert.ok(Math.min(...p.dx) === 0 && Math.max(...p.dx) === 8 && Math.max(...p.dy) === 8);
    const flips = p.flip.reduce((s, v) => s + v, 0);
    assert.ok(flips > 1800 && flips < 2200, `flips ${flips}`);
    assert.ok(cropFlipParams(100, 4, false, new Rng(1)).flip.every((v) => v === 0));
  } finally {
    x.dispose();
  }
});

test('cropFlipAugmenter: the same (seed, epoch) replays, another epoch differs', () => {
  const x = tensor(src, [N, C, H, W]);
  const take = (seed: number, epoch: number) => {
    const aug = cropFlipAugmenter(seed, epoch, { padding: 2 });
    const y = aug(x);
    const d = y.dataFloat32();
    y.dispose();
    return d;
  };
  try {
    assert.deepEqual(take(5, 0), take(5, 0));
    assert.notDeepEqual(take(5, 0), take(5, 1));
  } finally {
    x.dispose();
  }
});
