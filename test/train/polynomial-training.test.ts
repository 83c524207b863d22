// Polynomial (Lagrange / AICC) training as a library function: on tiny synthetic data, a few
// epochs lower the loss, write the run directory, and a resumed run continues exactly as an
// uninterrupted one; the best checkpoint loads through the one code loader.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed } from '../../src/index.js';
import { buildModel } from '../../src/models/index.js';
import { loadDataset, disposeDataset } from '../../src/data/registry.js';
import { readCheckpoint, saveCheckpoint } from '../../src/nn/checkpoint.js';
import { loadCodeCheckpoint } from '../../src/codes/checkpoint.js';
import { trainPolynomial, type PolynomialTrainingConfig } from '../../src/train/polynomial-training.js';

const cfg = (epochs: number, centralized: 'mlp' | null = null): PolynomialTrainingConfig => ({
  dataset: 'synthetic',
  k: 2,
  n: 3,
  degree: 1,
  power: 1,
  worker: 'HB',
  encoder: 'mlp',
  computation: 'mlp',
  centralized,
  epochs,
  batchSize: 32,
  lr: 3e-3,
  seed: 3,
});

async function run(dir: string, base: string, c: PolynomialTrainingConfig, resume = false) {
  const ds = await loadDataset('synthetic', { seed: 3 });
  try {
    return trainPolynomial(
      c,
      {
        train: ds.train,
        validation: ds.validation!,
        test: ds.test,
        classes: ds.info.classes,
        normalization: ds.info.normalization,
        input: [ds.info.channels, ds.info.height, ds.info.width],
      },
      dir,
      { resume, basePath: base },
    );
  } finally {
    disposeDataset(ds);
  }
}

/** A synthetic base checkpoint (random weights): the test evaluation's A_a comes from it. */
function baseCheckpoint(dir: string): string {
  manualSeed(1);
  const input = { channels: 1, height: 8, width: 8 };
  const m = buildModel('base-mlp', { ...input, classes: 10 });
  const path = join(dir, 'base.safetensors');
  saveCheckpoint(path, m, {
    kind: 'base',
    dataset: 'synthetic',
    model: 'base-mlp',
    input,
    classes: Array.from({ length: 10 }, (_, i) => String(i)),
  });
  m.dispose();
  return path;
}

function tensors(path: string): Map<string, number[]> {
  const ck = readCheckpoint(path);
  const out = new Map([...ck.state, ...ck.extra].map(([k, t]) => [k, t.toList()]));
  for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
  return out;
}

test('polynomial training lowers the loss over a few epochs, logs each, and its best checkpoint loads as a code', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'poly-train-'));
  try {
    const base = baseCheckpoint(dir);
    const r = await run(join(dir, 'run'), base, cfg(3));
    assert.equal(r.epochs.length, 3);
    assert.ok(r.epochs[2].trainLoss < r.epochs[0].trainLoss, `loss ${r.epochs.map((e) => e.trainLoss.toFixed(3)).join(' -> ')}`);
    assert.ok(r.bestValAccuracy > 0.15, `validation accuracy ${r.bestValAccuracy}`);
    assert.equal(
      readFileSync(join(dir, 'run', 'log.jsonl'), 'utf8')
        .trim()
        .split('\n').length,
      3,
    );
    assert.equal(typeof r.testDirect, 'number');
    assert.ok(r.byStragglers!.length > 0);
    const l = loadCodeCheckpoint(r.bestCheckpoint, { basePath: base });
    try {
      assert.equal(l.code.family, 'lagrange');
      assert.equal(l.workers.workers?.get('H')?.length, 1);
    } finally {
      l.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a resumed polynomial run (1 epoch, then 2) ends with the same weights and optimizer state as 2 epochs straight', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'poly-resume-'));
  try {
    const base = baseCheckpoint(dir);
    await run(join(dir, 'straight'), base, cfg(2));
    await run(join(dir, 'resumed'), base, cfg(1));
    const r = await run(join(dir, 'resumed'), base, cfg(2), true);
    assert.equal(r.epochs.length, 2);
    const a = tensors(join(dir, 'straight', 'last.safetensors'));
    const b = tensors(join(dir, 'resumed', 'last.safetensors'));
    assert.deepEqual([...a.keys()].sort(), [...b.keys()].sort());
    assert.ok(
      [...a.keys()].some((k) => k.startsWith('optim0.')),
      'optimizer state under optim0.',
    );
    for (const [k, v] of a) assert.deepEqual(b.get(k), v, k);
    // a different configuration does not resume
    await assert.rejects(run(join(dir, 'resumed'), base, { ...cfg(3), lr: 1e-2 }, true), /trained with another configuration/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the centralized baseline trains through the same run skeleton', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'poly-central-'));
  try {
    const r = await run(join(dir, 'run'), join(dir, 'unused.safetensors'), cfg(2, 'mlp'));
    assert.equal(r.code, 'centralized-mlp');
    assert.equal(r.epochs.length, 2);
    assert.ok(r.testAccuracy > 0.15, `test accuracy ${r.testAccuracy}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
