import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed, liveTensors } from '../../src/index.js';
import { buildModel } from '../../src/models/index.js';
import { loadDataset, disposeDataset } from '../../src/data/registry.js';
import { readCheckpoint } from '../../src/nn/checkpoint.js';
import { trainBase, files, type BaseTrainingConfig } from '../../src/train/base-training.js';

const cfg = (epochs: number): BaseTrainingConfig => ({
  dataset: 'synthetic',
  model: 'base-mlp',
  epochs,
  batchSize: 32,
  optimizer: 'adam',
  lr: 1e-3,
  weightDecay: 1e-5,
  momentum: 0,
  schedule: 'constant',
  seed: 5,
  device: 'cpu',
});

async function run(dir: string, epochs: number, resume = false) {
  const ds = await loadDataset('synthetic', { seed: 5 });
  const spec = { channels: ds.info.channels, height: ds.info.height, width: ds.info.width, classes: ds.info.classes.length };
  manualSeed(5);
  const model = buildModel('base-mlp', spec);
  try {
    return trainBase(
      cfg(epochs),
      model,
      {
        train: ds.train,
        validation: ds.validation!,
        test: ds.test,
        classes: ds.info.classes,
        normalization: ds.info.normalization,
        input: spec,
      },
      dir,
      { resume },
    );
  } finally {
    model.dispose();
    disposeDataset(ds);
  }
}

function weights(path: string): Map<string, number[]> {
  const ck = readCheckpoint(path);
  const out = new Map([...ck.state].map(([k, t]) => [k, t.toList()]));
  for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
  return out;
}

test('training learns the synthetic task, logs every epoch and records metadata in the checkpoint', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-train-'));
  try {
    const before = liveTensors();
    const r = await run(dir, 3);
    assert.equal(liveTensors(), before, 'training leaked tensors');
    assert.ok(r.testAccuracy > 0.8, `test accuracy ${r.testAccuracy}`);
    const lines = readFileSync(files(dir).log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    assert.deepEqual(
      lines.map((l) => l.epoch),
      [1, 2, 3],
    );
    const meta = readCheckpoint(files(dir).best).metadata as Record<string, unknown>;
    assert.equal(meta.kind, 'base');
    assert.equal(meta.dataset, 'synthetic');
    assert.equal(meta.model, 'base-mlp');
    assert.equal(meta.testAccuracy, r.testAccuracy);
    assert.equal(meta.epoch, r.bestEpoch);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('resuming after an interruption gives the same weights as an uninterrupted run', async () => {
  const a = mkdtempSync(join(tmpdir(), 'coded-train-a-'));
  const b = mkdtempSync(join(tmpdir(), 'coded-train-b-'));
  try {
    await run(a, 3);
    await run(b, 1);
    const resumed = await run(b, 3, true);
    assert.equal(resumed.resumedFrom, 2);
    const wa = weights(files(a).last);
    const wb = weights(files(b).last);
    for (const [k, v] of wa) {
      const u = wb.get(k)!;
      const maxDiff = v.reduce((m, x, i) => Math.max(m, Math.abs(x - u[i])), 0);
      assert.ok(maxDiff < 1e-5, `${k} differs by ${maxDiff}`);
    }
    const lines = readFileSync(files(b).log, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).epoch);
    assert.deepEqual(lines, [1, 2, 3]);
  } finally {
    rmSync(a, { recursive: true, force: true });
    rmSync(b, { recursive: true, force: true });
  }
});

test('resuming without a previous run says what is missing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-train-none-'));
  try {
    await assert.rejects(run(dir, 2, true), /--resume: .*last\.safetensors does not exist/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
