// Joint training of a learned code with parity models (`coded train learned --parity-model`,
// seed 002 section VI-C): training, checkpoints, evaluation, serving and option errors.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tidy, randn, manualSeed, noGrad, dispose, type Tensor } from '../../src/index.js';
import { LearnedCode, computeAll, saveCode, type LearnedCodeConfig } from '../../src/codes/index.js';
import { parityTensors } from '../../src/codes/parity-models.js';
import { buildModel } from '../../src/models/registry.js';
import { loadBaseCheckpoint } from '../../src/models/base-checkpoint.js';
import { Module } from '../../src/nn/module.js';
import { saveCheckpoint } from '../../src/nn/checkpoint.js';
import { loadDataset, disposeDataset } from '../../src/data/registry.js';
import { evaluateCode } from '../../src/eval/code-metrics.js';
import {
  baseIdentity,
  buildJointParityModels,
  learnedCodeConfig,
  resolveParityModel,
  trainLearned,
  type LearnedTrainingConfig,
} from '../../src/train/learned-training.js';
import { trainLearnedCommand } from '../../src/cli/commands/train-learned.js';
import { parseSweep } from '../../src/train/learned-run.js';
import { evalCodeCommand } from '../../src/cli/commands/eval.js';
import { loadCodeCheckpoint, type ParityCheckpointMeta } from '../../src/codes/checkpoint.js';
import { servedModelFrom } from '../../src/serve/served-model.js';
import buildServed from '../../src/serve/model-builder.js';

// the synthetic dataset's default shape (what the CLI loads for a base checkpoint on 'synthetic')
const input = { channels: 1, height: 8, width: 8 };
const CLASSES = 10;
const classes = Array.from({ length: CLASSES }, (_, i) => `c${i}`);

let dir = '';
let basePath = '';
/** best.safetensors of a CLI run with --parity-model base, r = 2 (one epoch) */
let jointCkpt = '';
let cliResult: { config: { parityModel?: string }; checkpoint: string; test: { degraded: { count: number; recovery: number } } };

/** Run a CLI command, returning what it printed with console.log. */
async function captureLog(fn: () => Promise<void>): Promise<string> {
  const lines: string[] = [];
  const orig = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.map(String).join(' '));
  try {
    await fn();
  } finally {
    console.log = orig;
  }
  return lines.join('\n');
}

const values = (t: Tensor) => Float32Array.from(t.contiguous().data() as Float32Array);
const maxDiff = (a: Tensor, b: Tensor) => tidy(() => a.sub(b).abs().max().item());

before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'coded-joint-'));
  // a base-mlp with O(1) weights (the paper init's ~0.01 give nearly flat outputs)
  manualSeed(11);
  const base = buildModel('base-mlp', { ...input, classes: CLASSES });
  noGrad(() => {
    for (const t of base.parameters()) t.uniform_(-0.2, 0.2);
  });
  basePath = join(dir, 'synthetic-base-mlp.safetensors');
  saveCheckpoint(basePath, base, { kind: 'base', dataset: 'synthetic', model: 'base-mlp', input, classes, config: { seed: 1 } });
  base.dispose();
  const out = await captureLog(() =>
    trainLearnedCommand([
      '--base',
      basePath,
      '--k',
      '2',
      '--r',
      '2',
      '--parity-model',
      'base',
      '--epochs',
      '1',
      '--out',
      join(dir, 'cli'),
      '--json',
    ]),
  );
  cliResult = JSON.parse(out);
  jointCkpt = cliResult.checkpoint;
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test('joint training (--parity-model base): encoder, decoder and every F_P move, F stays bit-identical; resume restores F_P and its Adam', async () => {
  const ds = await loadDataset('synthetic', { synthetic: { trainSize: 300, testSize: 60 }, validation: 60 });
  const { model: base, meta } = loadBaseCheckpoint(basePath);
  try {
    const id = baseIdentity(basePath, meta);
    const data = { train: ds.train, validation: ds.validation!, test: ds.test, classes, input };
    const tc: LearnedTrainingConfig = {
      dataset: 'synthetic',
      base: basePath,
      k: 2,
      r: 2,
      encoder: 'mlp',
      decoder: 'mlp',
      loss: 'kl-base',
      epochs: 2,
      batchSize: 16,
      lr: 1e-3,
      weightDecay: 1e-5,
      optimizers: 'separate',
      trainParts: 'both',
      seed: 1,
      device: 'cpu',
      parityModel: 'base',
    };
    const mk = () => new LearnedCode(learnedCodeConfig(tc, data, 'base-mlp'));
    const fBefore = base.parameters().map(values);
    manualSeed(7);
    const c1 = mk();
    assert.equal(c1.name, 'learned(k=2, r=2, encoder=mlp, decoder=mlp, parity=base-mlp)');
    const encBefore = c1.encoder.parameters().map(values);
    const decBefore = c1.decoder.parameters().map(values);
    const full = trainLearned(tc, c1, base, id, data, join(dir, 'full'));
    assert.equal(full.epochs.length, 2);
    assert.ok(full.test.degraded.count > 0);
    // F: bit-identical; encoder and decoder: moved
    base.parameters().forEach((p, i) => assert.deepEqual(values(p), fBefore[i], 'F changed during joint training'));
    assert.ok(
      c1.encoder.parameters().some((p, i) => values(p).some((v, j) => v !== encBefore[i][j])),
      'the encoder did not move',
    );
    assert.ok(
      c1.decoder.parameters().some((p, i) => values(p).some((v, j) => v !== decBefore[i][j])),
      'the decoder did not move',
    );
    // F_P[j]: started as copies of F, moved away from it; the checkpoint records them as a parity code does
    const lp = loadCodeCheckpoint(join(dir, 'full', 'last.safetensors'), { base: false, parity: 'required', keepExtra: true });
    assert.equal(lp.parity.length, 2);
    assert.deepEqual((lp.metadata as ParityCheckpointMeta).parity, { model: 'base-mlp', input: { ...input, classes: CLASSES }, count: 2 });
    assert.equal((lp.metadata as ParityCheckpointMeta).base.sha256, id.sha256);
    assert.equal((lp.metadata as unknown as { training: LearnedTrainingConfig }).training.parityModel, 'base');
    assert.equal(
      (lp.metadata as unknown as { optimizers: unknown[] }).optimizers.length,
      3,
      'separate: one Adam each for encoder, decoder and F_P',
    );
    for (const pm of lp.parity) {
      assert.ok(pm.parameters().every((p, i) => p.shape.join() === base.parameters()[i].shape.join()));
      assert.ok(
        pm.parameters().some((p, i) => values(p).some((v, j) => v !== fBefore[i][j])),
        'a parity model did not move away from F',
      );
    }
    dispose([...lp.extra.values()]);
    for (const m of [...lp.parity, ...lp.code.modules().values()]) m.dispose();

    // one epoch, then resume to two: every tensor of last.safetensors (code, F_P, optimizer state) as two epochs straight
    manualSeed(7);
    const c2 = mk();
    trainLearned({ ...tc, epochs: 1 }, c2, base, id, data, join(dir, 'resumed'));
    const c3 = mk();
    const resumed = trainLearned(tc, c3, base, id, data, join(dir, 'resumed'), { resume: true });
    assert.equal(resumed.resumedFrom, 2);
    const a = loadCodeCheckpoint(join(dir, 'full', 'last.safetensors'), { base: false, parity: 'none', keepExtra: true });
    const b = loadCodeCheckpoint(join(dir, 'resumed', 'last.safetensors'), { base: false, parity: 'none', keepExtra: true });
    const keys = [...a.extra.keys()].sort();
    assert.deepEqual(keys, [...b.extra.keys()].sort());
    assert.ok(keys.some((k) => k.startsWith('parity.1.')) && keys.some((k) => k.startsWith('optim2.')), keys.join(', '));
    for (const k of keys) assert.deepEqual(values(a.extra.get(k)!), values(b.extra.get(k)!), k);
    for (const [name, m] of a.code.modules()) {
      const other = b.code.modules().get(name)!.stateDict();
      for (const [key, t] of m.stateDict()) assert.deepEqual(values(t), values(other.get(key)!), `${name}.${key}`);
    }
    // a joint run is not resumed as a plain one
    const plain = new LearnedCode(learnedCodeConfig({ ...tc, parityModel: undefined }, data));
    assert.throws(
      () => trainLearned({ ...tc, parityModel: undefined, epochs: 3 }, plain, base, id, data, join(dir, 'resumed'), { resume: true }),
      /holds learned\(.*parity=base-mlp\), not learned\(k=2, r=2, encoder=mlp, decoder=mlp\)/,
    );
    for (const c of [c1, c2, c3, a.code, b.code, plain]) for (const [, m] of c.modules()) m.dispose();
    dispose([...a.extra.values(), ...b.extra.values()]);
  } finally {
    base.dispose();
    disposeDataset(ds);
  }
});

test('a joint code checkpoint round-trips: the loaded code and parity models compute the same outputs', () => {
  manualSeed(3);
  const base = buildModel('base-mlp', { ...input, classes: CLASSES });
  const cfg: LearnedCodeConfig = {
    family: 'learned',
    k: 3,
    r: 2,
    encoder: 'conv',
    decoder: 'mlp',
    input,
    outputs: CLASSES,
    encoderOptions: { hidden: 4 },
    parityModel: 'base-mlp',
  };
  const code = new LearnedCode(cfg);
  const { parity, meta } = buildJointParityModels({ parityModel: 'base-mlp' }, code, base);
  noGrad(() => {
    for (const m of parity) for (const t of m.parameters()) t.uniform_(-0.3, 0.3);
  });
  const path = join(dir, 'roundtrip.safetensors');
  saveCode(path, code, { parity: meta, base: { path: basePath, sha256: 'x' } }, parityTensors(parity));
  const back = loadCodeCheckpoint(path, { base: false, parity: 'required', keepExtra: true });
  try {
    assert.equal(back.code.name, code.name);
    assert.equal(back.parity.length, 2);
    tidy(() => {
      const x = randn([4, 3, ...Object.values(input)]);
      const q = code.encode(x);
      assert.deepEqual(
        q.map((c) => c.fn),
        [{ kind: 'base' }, { kind: 'base' }, { kind: 'base' }, { kind: 'parity', index: 0 }, { kind: 'parity', index: 1 }],
      );
      const o1 = computeAll(code, { base, parity }, x);
      const o2 = computeAll(back.code, { base, parity: back.parity }, x);
      o1.forEach((t, i) => assert.deepEqual(values(t), values(o2[i]), `output ${i}`));
      for (const p of code.evaluationPatterns()) {
        const d1 = code.decode(o1.map((t, i) => (p[i] ? t : null)));
        const d2 = back.code.decode(o2.map((t, i) => (p[i] ? t : null)));
        d1.outputs.forEach((t, i) => assert.deepEqual(values(t), values(d2.outputs[i])));
      }
    });
  } finally {
    dispose([...back.extra.values()]);
    for (const m of [base, ...parity, ...back.parity, ...code.modules().values(), ...back.code.modules().values()]) m.dispose();
  }
});

class Counting extends Module {
  rows = 0;
  constructor(private readonly inner: Module) {
    super();
  }
  forward(x: Tensor): Tensor {
    this.rows += x.shape[0];
    return this.inner.forward(x);
  }
}

test('evaluating a joint checkpoint runs the parity queries on its parity models, not on F; `coded eval` reports it', async () => {
  assert.equal(cliResult.config.parityModel, 'base');
  assert.ok(existsSync(jointCkpt));
  const l = loadCodeCheckpoint(jointCkpt);
  const ds = await loadDataset('synthetic', { validation: 0 });
  try {
    assert.equal(l.code.name, 'learned(k=2, r=2, encoder=mlp, decoder=mlp, parity=base-mlp)');
    const parity = l.workers.parity!;
    assert.equal(parity.length, 2);
    const cb = new Counting(l.workers.base);
    const cp = parity.map((m) => new Counting(m));
    const e = evaluateCode({ code: l.code, workers: { base: cb, parity: cp }, test: ds.test, classes, seed: 1 });
    // F only on the k originals of each group; F_P[j] on parity query j of each group
    assert.equal(cb.rows, e.groups * 2);
    for (const c of cp) assert.equal(c.rows, e.groups);
    // the same numbers as the training run's test evaluation (the same checkpoint and test split)
    assert.equal(e.degraded.count, cliResult.test.degraded.count);
    assert.equal(e.degraded.recovery, cliResult.test.degraded.recovery);
    // without its parity models the code cannot be evaluated; F in their place gives other reconstructions
    assert.throws(
      () => evaluateCode({ code: l.code, workers: { base: l.workers.base }, test: ds.test, classes }),
      /no model for worker function F_P\[0\]/,
    );
    tidy(() => {
      const x = ds.test.images.narrow(0, 0, 20).reshape([10, 2, ...Object.values(input)]);
      const withFP = computeAll(l.code, l.workers, x);
      const withF = computeAll(l.code, { base: l.workers.base, parity: [l.workers.base, l.workers.base] }, x);
      assert.ok(maxDiff(withFP[2], withF[2]) > 1e-6 && maxDiff(withFP[3], withF[3]) > 1e-6, 'F_P computes what F computes');
      const avail = [false, true, true, false];
      assert.ok(
        maxDiff(
          l.code.decode(withFP.map((t, i) => (avail[i] ? t : null))).outputs[0],
          l.code.decode(withF.map((t, i) => (avail[i] ? t : null))).outputs[0],
        ) > 1e-6,
      );
    });
    // the CLI: `coded eval CKPT --json`
    const out = JSON.parse(await captureLog(() => evalCodeCommand([jointCkpt, '--json']))) as {
      parity: { model: string; count: number };
      code: string;
      degraded: { count: number; recovery: number };
    };
    assert.deepEqual({ model: out.parity.model, count: out.parity.count }, { model: 'base-mlp', count: 2 });
    assert.equal(out.code, l.code.name);
    assert.equal(out.degraded.recovery, e.degraded.recovery);
  } finally {
    l.dispose();
    disposeDataset(ds);
  }
});

test('an instance serves parity model J of a joint checkpoint (--parity-index J); plain learned codes are refused', () => {
  const m1 = servedModelFrom(jointCkpt, undefined, 1);
  assert.equal(m1.name, 'best-parity1');
  assert.deepEqual(m1.inputShape, [1, 8, 8]);
  assert.deepEqual(m1.outputShape, [CLASSES]);
  assert.match(m1.description, /parity model 1 \(base-mlp\) of learned\(k=2, r=2\) for synthetic/);
  assert.equal(servedModelFrom(jointCkpt).name, 'best-parity0');
  assert.throws(() => servedModelFrom(jointCkpt, undefined, 2), /has 2 parity model\(s\).*out of range/);
  // what the instance's worker thread builds: exactly F_P[1] of the checkpoint
  const served = buildServed({ kind: 'parity', path: jointCkpt, index: 1 });
  const lp = loadCodeCheckpoint(jointCkpt, { base: false, parity: 'required', keepExtra: true });
  try {
    tidy(() =>
      noGrad(() => {
        const x = randn([5, 1, 8, 8]);
        assert.deepEqual(values(served.forward(x)), values(lp.parity[1].forward(x)));
        assert.ok(maxDiff(served.forward(x), lp.parity[0].forward(x)) > 0, 'served the wrong parity model');
      }),
    );
  } finally {
    served.dispose();
    dispose([...lp.extra.values()]);
    for (const m of [...lp.parity, ...lp.code.modules().values()]) m.dispose();
  }
  // a learned code that runs F on its parities has no parity model to serve
  const plain = new LearnedCode({ family: 'learned', k: 2, r: 1, encoder: 'mlp', decoder: 'mlp', input, outputs: CLASSES });
  const plainPath = join(dir, 'plain.safetensors');
  saveCode(plainPath, plain, { base: { path: basePath, sha256: 'x' } });
  for (const [, m] of plain.modules()) m.dispose();
  assert.throws(() => servedModelFrom(plainPath, undefined, 0), /code checkpoint without parity models/);
});

test('bad --parity-model values give clear errors listing the valid ones', async () => {
  await assert.rejects(
    trainLearnedCommand(['--base', basePath, '--k', '2', '--parity-model', 'nonsense']),
    /--parity-model must be one of none, base, logistic-regression, base-mlp, lenet5, .*got 'nonsense'/,
  );
  // an architecture that does not take the base model's inputs: refused before any data is loaded
  await assert.rejects(
    trainLearnedCommand(['--base', basePath, '--k', '2', '--parity-model', 'lenet5']),
    /parity model 'lenet5' does not take the base model's 1x8x8 inputs/,
  );
  assert.throws(() => resolveParityModel('nope', 'base-mlp'), /unknown parity model 'nope' \(valid: none, base, logistic-regression/);
  assert.throws(() => resolveParityModel('base', 'my-own-net'), /architecture 'my-own-net' is not in the model zoo/);
  assert.equal(resolveParityModel('base', 'lenet5'), 'lenet5');
  assert.equal(resolveParityModel('none', 'lenet5'), undefined);
  assert.equal(
    resolveParityModel('mlp:64,32:dropout=0.1', 'base-mlp'),
    'mlp:64,32:dropout=0.1',
    'the mlp:... family is a valid parity architecture',
  );
  assert.throws(() => resolveParityModel('mlp:64,x', 'base-mlp'), /unknown parity model 'mlp:64,x'/);
  await assert.rejects(
    parseSweep(JSON.stringify({ out: 'x', epochs: 1, base: ['b'], k: [2], parityModel: ['none', 'nonsense'] })),
    /unknown parityModel 'nonsense' \(none, base, logistic-regression/,
  );
  const s = await parseSweep(JSON.stringify({ out: 'x', epochs: 1, base: ['b'], k: [2], parityModel: ['none', 'base', 'lenet5'] }));
  assert.deepEqual(s.parityModel, ['none', 'base', 'lenet5']);
  assert.deepEqual(
    (await parseSweep(JSON.stringify({ out: 'x', epochs: 1, base: ['b'], k: [2], parityModel: ['mlp:32,16'] }))).parityModel,
    ['mlp:32,16'],
  );
  assert.throws(
    () => new LearnedCode({ family: 'learned', k: 2, r: 1, encoder: 'mlp', decoder: 'mlp', input, outputs: CLASSES, parityModel: 'nope' }),
    /unknown parityModel 'nope' \(an architecture: logistic-regression/,
  );
});
