// coded train parity --base FILE.pt --data DIR|FILE.npz: parity training on your own data
// (an image folder, a .npz), the preprocessing recorded in the checkpoint and reused by eval.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import sharp from 'sharp';
import { zipSync } from 'fflate';
import { packageRoot } from '../../src/util/package-root.js';
import { encodeNpy } from '../../src/data/npy.js';
import { Rng } from '../../src/data/rng.js';

const ptFile = join(packageRoot(), 'examples', 'own-model', 'small_cnn.pt');
const cfg = {
  code: 'addition',
  k: 2,
  r: 1,
  parityModel: 'mlp:32',
  epochs: 1,
  batchSize: 8,
  lr: 1e-3,
  weightDecay: 1e-5,
  schedule: 'constant' as const,
  target: 'base' as const,
  seed: 1,
  device: 'cpu' as const,
};
const quiet = { resume: false, command: 'test', quiet: true, log: () => {} };

test('coded train parity on an image folder records its preprocessing; coded eval reads the folder again with it', async () => {
  const { runParity } = await import('../../src/train/parity-run.js');
  const { readCheckpointMetadata } = await import('../../src/serve/served-model.js');
  const tmp = mkdtempSync(join(tmpdir(), 'coded-own-parity-'));
  try {
    const dir = join(tmp, 'images');
    const rng = new Rng(3);
    for (const cls of ['a', 'b', 'c']) {
      mkdirSync(join(dir, cls), { recursive: true });
      for (let i = 0; i < 8; i++) {
        const px = Buffer.from(Array.from({ length: 10 * 10 * 3 }, () => Math.floor(rng.float() * 256)));
        const img = sharp(px, { raw: { width: 10, height: 10, channels: 3 } });
        await (i % 2 === 0 ? img.png() : img.jpeg()).toFile(join(dir, cls, `${i}.${i % 2 === 0 ? 'png' : 'jpg'}`));
      }
    }
    const mean = [0.5, 0.5, 0.5];
    const std = [0.25, 0.25, 0.25];
    await assert.rejects(runParity({ base: ptFile, data: join(tmp, 'none.npz'), cfg, ...quiet }), /none\.npz: no such file or folder/);
    const res = await runParity({ base: ptFile, data: dir, inputShape: [3, 32, 32], mean, std, cfg, outDir: join(tmp, 'run'), ...quiet });
    const meta = readCheckpointMetadata(res.bestCheckpoint) as { base: { preprocessing?: unknown; input: unknown }; classes: string[] };
    assert.deepEqual(meta.base.preprocessing, {
      size: [32, 32],
      channels: 3,
      mean,
      std,
      scale: 1 / 255,
      resize: 'cover',
      source: `image folder ${dir}`,
    });
    assert.deepEqual(meta.base.input, { channels: 3, height: 32, width: 32 });
    const main = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
    const ev = spawnSync(process.execPath, [main, 'eval', res.bestCheckpoint, '--data', dir, '--json'], {
      encoding: 'utf8',
      timeout: 120000,
    });
    assert.equal(ev.status, 0, ev.stderr);
    const e = JSON.parse(ev.stdout.trim().split('\n').pop()!) as { degraded: { accuracy: number }; samples: number };
    assert.equal(e.samples, res.test.samples);
    assert.equal(e.degraded.accuracy, res.test.degraded.accuracy, 'the same test split, read with the recorded preprocessing');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('coded train parity on a .npz tensors file; --mean with a tensors file is refused', async () => {
  const { runParity } = await import('../../src/train/parity-run.js');
  const { readCheckpointMetadata } = await import('../../src/serve/served-model.js');
  const tmp = mkdtempSync(join(tmpdir(), 'coded-own-npz-'));
  try {
    const rng = new Rng(4);
    const n = 24;
    const x = Float32Array.from({ length: n * 3 * 32 * 32 }, () => rng.float() * 2 - 1);
    const f = join(tmp, 'data.npz');
    writeFileSync(f, zipSync({ 'inputs.npy': encodeNpy({ dtype: 'float32', shape: [n, 3, 32, 32], data: x }) }));
    await assert.rejects(
      runParity({ base: ptFile, data: f, mean: [0.5], cfg, ...quiet }),
      /--mean\/--std normalise an image folder; .*data\.npz is a tensors file/,
    );
    const res = await runParity({ base: ptFile, data: f, cfg, outDir: join(tmp, 'run'), ...quiet });
    assert.equal(res.epochs.length, 1);
    const meta = readCheckpointMetadata(res.bestCheckpoint) as { base: { preprocessing?: unknown; dataset: string } };
    assert.equal(meta.base.preprocessing, undefined, 'a tensors file: inputs as given, nothing recorded');
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
