import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, tidy, randn, manualSeed } from '../../src/index.js';
import { AdditionCode } from '../../src/codes/index.js';
import { fileSha256 } from '../../src/codes/parity-models.js';
import { loadCodeCheckpoint, type ParityCheckpointMeta } from '../../src/codes/checkpoint.js';
import { saveCheckpoint } from '../../src/nn/checkpoint.js';
import { LogisticRegression } from '../../src/models/logistic-regression.js';
import { trainParity, type ParityTrainingConfig } from '../../src/train/parity-training.js';
import type { Split } from '../../src/data/split.js';

function split(n: number, seed: number): Split {
  manualSeed(seed);
  return tidy(() => {
    const images = randn([n, 1, 4, 4]).keep();
    const labels = tensor(
      Array.from({ length: n }, (_, i) => i % 3),
      [n],
      { dtype: 'int64' },
    ).keep();
    return { images, labels, size: n };
  });
}

/** A small addition-code parity configuration on the fixture, with per-test overrides. */
function config(over: Partial<ParityTrainingConfig>): ParityTrainingConfig {
  return {
    code: 'addition',
    k: 2,
    r: 1,
    parityModel: 'logistic-regression',
    epochs: 2,
    batchSize: 8,
    lr: 2e-2,
    weightDecay: 0,
    schedule: 'constant',
    target: 'base',
    seed: 1,
    device: 'cpu',
    ...over,
  };
}

/** A logistic-regression base checkpoint on random 4x4 images, and the data for parity training. */
function withFixture(
  sizes: [number, number],
  seeds: [number, number, number],
  body: (f: {
    dir: string;
    base: LogisticRegression;
    data: { train: Split; validation: Split; test: Split; classes: string[] };
    identity: Parameters<typeof trainParity>[3];
    input: { channels: number; height: number; width: number };
  }) => void,
): void {
  const dir = mkdtempSync(join(tmpdir(), 'coded-ptrain-'));
  const base = new LogisticRegression(16, 3);
  const data = {
    train: split(sizes[0], seeds[0]),
    validation: split(sizes[1], seeds[1]),
    test: split(sizes[1], seeds[2]),
    classes: ['a', 'b', 'c'],
  };
  try {
    const basePath = join(dir, 'base.safetensors');
    const input = { channels: 1, height: 4, width: 4 };
    saveCheckpoint(basePath, base, { kind: 'base', dataset: 'synthetic', model: 'logistic-regression', input, classes: data.classes });
    const identity = {
      path: basePath,
      sha256: fileSha256(basePath),
      dataset: 'synthetic',
      model: 'logistic-regression',
      input,
      classes: 3,
    };
    body({ dir, base, data, identity, input });
  } finally {
    base.dispose();
    for (const s of [data.train, data.validation, data.test]) {
      s.images.dispose();
      s.labels.dispose();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

test('parity training: best checkpoint, JSONL log, resume, and a loadable code', () => {
  withFixture([120, 40], [1, 2, 3], ({ dir, base, data, identity, input }) => {
    const cfg = config({ lr: 1e-2, weightDecay: 1e-5 });
    const out = join(dir, 'run');
    const r1 = trainParity(cfg, new AdditionCode(2), base, identity, { ...input, classes: 3 }, data, out);
    assert.equal(r1.epochs.length, 2);
    assert.ok(r1.epochs[1].trainLoss < r1.epochs[0].trainLoss, 'the MSE goes down');
    assert.equal(readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').length, 2);
    assert.ok(existsSync(r1.bestCheckpoint));
    assert.equal(r1.test.samples, 40);
    const r2 = trainParity({ ...cfg, epochs: 3 }, new AdditionCode(2), base, identity, { ...input, classes: 3 }, data, out, {
      resume: true,
    });
    assert.equal(r2.resumedFrom, 3);
    assert.equal(r2.epochs.length, 3);
    assert.equal(readFileSync(join(out, 'log.jsonl'), 'utf8').trim().split('\n').length, 3);
    assert.throws(
      () =>
        trainParity({ ...cfg, k: 3, epochs: 4 }, new AdditionCode(3), base, identity, { ...input, classes: 3 }, data, out, {
          resume: true,
        }),
      /not this configuration/,
    );
    const lw = loadCodeCheckpoint(r2.bestCheckpoint, { parity: 'required' });
    assert.equal(lw.code.name, 'addition(k=2, r=1)');
    assert.equal(typeof (lw.metadata as unknown as { testDegradedAccuracy: number }).testDegradedAccuracy, 'number');
    lw.workers.base.dispose();
    for (const m of lw.workers.parity!) m.dispose();
  });
});

test('parity training with decoder-aware losses (kl-decoded, xent-decoded) augmented queries and weight averaging (--ema): the loss goes down; target labels is refused', () => {
  withFixture([160, 40], [4, 5, 6], ({ dir, base, data, identity, input }) => {
    const cfg = config({ epochs: 4 });
    for (const [loss, temperature] of [
      ['kl-decoded', 1],
      ['kl-decoded', 2],
      ['xent-decoded', 1],
    ] as const) {
      const r = trainParity(
        { ...cfg, loss, temperature },
        new AdditionCode(2),
        base,
        identity,
        { ...input, classes: 3 },
        data,
        join(dir, `${loss}-${temperature}`),
      );
      const l = r.epochs.map((e) => e.trainLoss);
      assert.ok(l.every(Number.isFinite) && l[3] < l[0], `${loss} (T ${temperature}): ${l.join(', ')}`);
    }
    assert.throws(
      () =>
        trainParity(
          { ...cfg, loss: 'kl-decoded', temperature: 0 },
          new AdditionCode(2),
          base,
          identity,
          { ...input, classes: 3 },
          data,
          join(dir, 'bad0'),
        ),
      /temperature must be > 0/,
    );
    assert.throws(
      () =>
        trainParity(
          { ...cfg, loss: 'kl-decoded', target: 'labels' },
          new AdditionCode(2),
          base,
          identity,
          { ...input, classes: 3 },
          data,
          join(dir, 'bad'),
        ),
      /needs target 'base'/,
    );
    // --ema: validation sees the weight average; with a decay of ~1 the average stays at the initial
    // weights, so every epoch validates the same model while training moves the raw weights
    const still = trainParity(
      { ...cfg, ema: 1 - 1e-12 },
      new AdditionCode(2),
      base,
      identity,
      { ...input, classes: 3 },
      data,
      join(dir, 'ema'),
    );
    assert.equal(new Set(still.epochs.map((e) => e.valDegradedAccuracy)).size, 1, 'validation did not use the averaged weights');
    assert.ok(still.epochs[3].trainLoss < still.epochs[0].trainLoss);
    const moving = trainParity(
      { ...cfg, ema: 0.5 },
      new AdditionCode(2),
      base,
      identity,
      { ...input, classes: 3 },
      data,
      join(dir, 'ema2'),
    );
    assert.ok(new Set(moving.epochs.map((e) => e.valDegradedAccuracy)).size > 1);
    assert.throws(
      () =>
        trainParity({ ...cfg, ema: 0.5 }, new AdditionCode(2), base, identity, { ...input, classes: 3 }, data, join(dir, 'ema2'), {
          resume: true,
        }),
      /does not restore the weight average/,
    );
    assert.throws(
      () => trainParity({ ...cfg, ema: 1 }, new AdditionCode(2), base, identity, { ...input, classes: 3 }, data, join(dir, 'ema3')),
      /ema must be a decay in \(0, 1\)/,
    );
    // augmented queries: base outputs computed on the fly; the loss still goes down
    const ra = trainParity(
      { ...cfg, loss: 'kl-decoded', augment: 'crop-flip' },
      new AdditionCode(2),
      base,
      identity,
      { ...input, classes: 3 },
      { ...data, paddingFill: 0 },
      join(dir, 'aug'),
    );
    assert.ok(ra.epochs[3].trainLoss < ra.epochs[0].trainLoss);
    assert.throws(
      () =>
        trainParity(
          { ...cfg, augment: 'crop', target: 'labels' },
          new AdditionCode(2),
          base,
          identity,
          { ...input, classes: 3 },
          data,
          join(dir, 'bad2'),
        ),
      /need target 'base'/,
    );
  });
});

test('parity training with a parametric MLP parity model (mlp:W:dropout=P): the checkpoint records the architecture and loads back', () => {
  withFixture([120, 40], [7, 8, 9], ({ dir, base, data, identity, input }) => {
    const cfg = config({ parityModel: 'mlp:12,6:dropout=0.2', epochs: 3, lr: 1e-2, weightDecay: 1e-5, loss: 'kl-decoded', temperature: 2 });
    const r = trainParity(cfg, new AdditionCode(2), base, identity, { ...input, classes: 3 }, data, join(dir, 'mlp'));
    assert.ok(r.epochs.every((e) => Number.isFinite(e.trainLoss)));
    const lw = loadCodeCheckpoint(r.bestCheckpoint, { parity: 'required' });
    try {
      assert.equal((lw.metadata as ParityCheckpointMeta).parity.model, 'mlp:12,6:dropout=0.2');
      assert.equal(lw.workers.parity![0].numParameters(), 16 * 12 + 12 + 12 * 6 + 6 + 6 * 3 + 3);
    } finally {
      lw.workers.base.dispose();
      for (const m of lw.workers.parity!) m.dispose();
    }
  });
});

test('--label-weight mixes the true labels into kl-decoded: weight 0 is kl-decoded, weight 1 is xent-decoded, in between differs; misuse is refused', () => {
  withFixture([96, 32], [10, 11, 12], ({ dir, base, data, identity, input }) => {
    const cfg = config({ loss: 'kl-decoded', temperature: 2 });
    const run = (c: Partial<ParityTrainingConfig>, name: string) =>
      trainParity({ ...cfg, ...c }, new AdditionCode(2), base, identity, { ...input, classes: 3 }, data, join(dir, name)).epochs.map(
        (e) => e.trainLoss,
      );
    const kl = run({}, 'kl');
    const xent = run({ loss: 'xent-decoded', temperature: 1 }, 'xent');
    assert.deepEqual(run({ labelWeight: 0 }, 'w0'), kl);
    const w1 = run({ labelWeight: 1 }, 'w1');
    w1.forEach((l, i) => assert.ok(Math.abs(l - xent[i]) < 1e-9 * Math.max(1, Math.abs(l)), `weight 1 ${l} vs xent ${xent[i]}`));
    const half = run({ labelWeight: 0.5 }, 'w05');
    assert.ok(half.every(Number.isFinite) && Math.abs(half[0] - kl[0]) > 1e-6 && Math.abs(half[0] - xent[0]) > 1e-6);
    assert.throws(() => run({ labelWeight: 1.5 }, 'bad1'), /label weight must be in \[0, 1\]/);
    assert.throws(() => run({ loss: 'mse', labelWeight: 0.5 }, 'bad2'), /use --loss kl-decoded/);
  });
});
