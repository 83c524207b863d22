import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildModel } from '../../src/models/index.js';
import { saveCheckpoint } from '../../src/nn/checkpoint.js';
import {
  baseStem,
  parseParitySweep,
  paritySweepRuns,
  runParitySweep,
  type ParitySweep,
  type ParitySweepRow,
} from '../../src/train/parity-run.js';
import { parseSweep } from '../../src/train/learned-run.js';

const repoFile = (p: string) => new URL(`../../../${p}`, import.meta.url);

/** An (untrained) logistic-regression base checkpoint for the synthetic dataset (8x8 grey, 10 classes). */
function syntheticBase(dir: string, name = 'synthetic-lr.safetensors'): string {
  const input = { channels: 1, height: 8, width: 8 };
  const model = buildModel('logistic-regression', { ...input, classes: 10 });
  const path = join(dir, name);
  try {
    saveCheckpoint(path, model, {
      kind: 'base',
      dataset: 'synthetic',
      model: 'logistic-regression',
      input,
      classes: Array.from({ length: 10 }, (_, i) => `c${i}`),
      config: { seed: 1 },
    });
  } finally {
    model.dispose();
  }
  return path;
}

function writeConfig(dir: string, config: unknown): string {
  const p = join(dir, 'sweep.json');
  writeFileSync(p, JSON.stringify(config));
  return p;
}

test('a parity sweep config with several problems lists each of them (unknown key, wrong type, missing epochs)', async () => {
  const text = JSON.stringify({ out: 'runs/x', base: ['b.safetensors'], code: ['addition'], k: '2', lerning_rate: 0.1 });
  await assert.rejects(parseParitySweep(text, 'bad.json'), (e: Error) => {
    assert.match(e.message, /^bad\.json does not match the sweep schema/);
    assert.match(e.message, /\/lerning_rate: Unexpected property/);
    assert.match(e.message, /\/k: Expected array/);
    assert.match(e.message, /\/epochs: Expected required property/);
    return true;
  });
  await assert.rejects(parseParitySweep(JSON.stringify({ out: 'o', epochs: 1, base: ['b'], code: ['sum'], k: [1] })), (e: Error) => {
    assert.match(e.message, /\/code\/0/);
    assert.match(e.message, /\/k\/0: Expected integer to be greater or equal to 2/);
    return true;
  });
  await assert.rejects(parseParitySweep('{"out": ', 'cut.json'), /cut\.json: not valid JSON/);
  await assert.rejects(
    parseParitySweep(
      JSON.stringify({ out: 'o', epochs: 1, base: ['b'], code: ['linear'], k: [2], parityModel: ['resnet1000'] }),
      'pm.json',
    ),
    /pm\.json: unknown parity model 'resnet1000'/,
  );
});

test('the learned sweep config still lists its schema problems, and both example configs are valid', async () => {
  await assert.rejects(parseSweep(JSON.stringify({ out: 'o', base: ['b'], k: [2], r: 'one', extra: true }), 'l.json'), (e: Error) => {
    assert.match(e.message, /^l\.json does not match the sweep schema/);
    assert.match(e.message, /\/extra: Unexpected property/);
    assert.match(e.message, /\/r: Expected array/);
    assert.match(e.message, /\/epochs: Expected required property/);
    return true;
  });
  const learned = await parseSweep(readFileSync(repoFile('examples/learned-sweep.json'), 'utf8'));
  assert.ok(learned.base.length > 0);
  const parity = await parseParitySweep(readFileSync(repoFile('examples/parity-sweep.json'), 'utf8'));
  const { runs, skipped } = paritySweepRuns(parity, () => 'base-mlp');
  assert.ok(runs.length > 0 && skipped.length > 0);
});

test('combinations a code cannot take are skipped with the reason; run names follow the grid', () => {
  const s: ParitySweep = {
    out: 'o',
    epochs: 1,
    base: ['models/a.safetensors'],
    code: ['addition', 'linear', 'concat'],
    k: [2, 3],
    r: [1, 2],
    target: ['base', 'labels'],
  };
  const { runs, skipped } = paritySweepRuns(s, () => 'base-mlp');
  // 3 codes x 2 k x 2 r x 2 targets = 24; addition and concat with r = 2: 2 x 2 x 2 = 8 skipped
  assert.equal(runs.length, 16);
  assert.equal(skipped.length, 8);
  assert.ok(skipped.every((x) => /-(addition|concat)-k\d-r2-/.test(x.name) && /r = 1/.test(x.reason)));
  assert.ok(runs.every((x) => x.r === 1 || x.code === 'linear'));
  assert.deepEqual(
    runs.slice(0, 2).map((x) => x.name),
    ['a-addition-k2-r1-base-mlp-base', 'a-addition-k2-r1-base-mlp-labels'],
  );
  assert.ok(runs.some((x) => x.name === 'a-linear-k3-r2-base-mlp-labels'));
  // a base from `coded train base` is named by its run directory
  assert.equal(baseStem('runs/base/mnist-lenet5/best.safetensors'), 'mnist-lenet5');
  assert.equal(baseStem('runs/base/mnist-lenet5/last.safetensors'), 'mnist-lenet5-last');
  assert.throws(() => paritySweepRuns({ ...s, base: ['x/m.safetensors', 'y/m.safetensors'] }, () => 'base-mlp'), /both write to/);
});

test('a sweep whose whole grid is invalid stops with a clear error before training', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-psweep-'));
  try {
    const base = syntheticBase(dir);
    const cfg = writeConfig(dir, { out: join(dir, 'out'), epochs: 1, base: [base], code: ['addition', 'concat'], k: [2], r: [2, 3] });
    await assert.rejects(runParitySweep(cfg, { log: () => {} }), /no combination of the sweep can be trained \(4 skipped/);
    assert.equal(existsSync(join(dir, 'out')), false);
    const missing = writeConfig(dir, {
      out: join(dir, 'out'),
      epochs: 1,
      base: [join(dir, 'nope.safetensors')],
      code: ['addition'],
      k: [2],
    });
    await assert.rejects(runParitySweep(missing, { log: () => {} }), /nope\.safetensors/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a parity sweep on the synthetic dataset trains each combination and writes results.json and results.md', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-psweep-'));
  const log: string[] = [];
  try {
    const base = syntheticBase(dir);
    const out = join(dir, 'out');
    const cfg = writeConfig(dir, {
      out,
      epochs: 1,
      base: [base],
      code: ['addition', 'concat'],
      k: [2],
      r: [1, 2],
      batchSize: 64,
      lr: 1e-2,
    });
    const rows = await runParitySweep(cfg, { log: (s) => log.push(s) });
    assert.deepEqual(
      rows.map((x) => x.run),
      ['synthetic-lr-addition-k2-r1-logistic-regression-base', 'synthetic-lr-concat-k2-r1-logistic-regression-base'],
    );
    assert.equal(log.filter((l) => /skipping synthetic-lr-(addition|concat)-k2-r2-/.test(l)).length, 2, log.join('\n'));
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as ParitySweepRow[];
    assert.equal(json.length, 2);
    for (const x of json) {
      assert.equal(x.error, undefined);
      assert.equal(x.dataset, 'synthetic');
      assert.equal(x.baseModel, 'logistic-regression');
      assert.equal(x.bestEpoch, 1);
      for (const v of [x.valDegradedAccuracy, x.testBaseAccuracy, x.testDegradedAccuracy, x.testRecovery])
        assert.ok(typeof v === 'number' && v >= 0 && v <= 1);
      assert.ok(existsSync(x.checkpoint!));
      assert.ok(existsSync(join(out, x.run, 'test-eval.json')));
    }
    const md = readFileSync(join(out, 'results.md'), 'utf8').trim().split('\n');
    assert.equal(md.length, 4);
    assert.equal(
      md[0],
      '| run | dataset | base model | code | k | r | parity model | epochs (best) | val A_d | test A_a | test A_d | test recovery | seconds |',
    );
    assert.match(
      md[2],
      /^\| synthetic-lr-addition-k2-r1-logistic-regression-base \| synthetic \| logistic-regression \| addition \| 2 \| 1 \| logistic-regression \| 1 \(1\) \| \d+\.\d\d% \|/,
    );
    assert.match(md[3], /\| concat \| 2 \| 1 \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a failed run of a parity sweep is recorded with its error and the sweep goes on', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-psweep-'));
  try {
    mkdirSync(join(dir, 'lr'));
    const base = syntheticBase(join(dir, 'lr'), 'best.safetensors');
    const out = join(dir, 'out');
    // LeNet-5 takes 28x28 images only: building it for the 8x8 synthetic images throws
    const cfg = writeConfig(dir, {
      out,
      epochs: 1,
      base: [base],
      code: ['addition'],
      k: [2],
      parityModel: ['lenet5', 'logistic-regression'],
    });
    const rows = await runParitySweep(cfg, { log: () => {} });
    assert.deepEqual(
      rows.map((x) => x.run),
      ['lr-addition-k2-r1-lenet5-base', 'lr-addition-k2-r1-logistic-regression-base'],
    );
    assert.match(rows[0].error!, /lenet5/);
    assert.equal(rows[0].testDegradedAccuracy, null);
    assert.equal(rows[1].error, undefined);
    assert.equal(typeof rows[1].testDegradedAccuracy, 'number');
    const json = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as ParitySweepRow[];
    assert.match(json[0].error!, /lenet5/);
    const md = readFileSync(join(out, 'results.md'), 'utf8').trim().split('\n');
    assert.equal(md.length, 4);
    assert.match(md[2], /\| 1 \(failed: .*lenet5.*\) \| — \| — \| — \| — \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
