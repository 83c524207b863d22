// Parity models (ParM) trained for a TorchScript F on a tensors file: the checkpoint records
// the SHA-256 of F's file and refuses another F.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed, noGrad, randn, tidy } from '../../src/index.js';
import { packageRoot } from '../../src/util/package-root.js';
import { saveSafetensors } from '../../src/nn/safetensors.js';
import { loadBaseModel } from '../../src/models/base-model.js';
import { TorchScriptModule } from '../../src/models/torchscript.js';
import { loadTensorsFile, splitTensors } from '../../src/data/tensors-file.js';
import { codeFromConfig } from '../../src/codes/index.js';
import { LinearCode } from '../../src/codes/linear.js';
import { loadCodeCheckpoint, type ParityCheckpointMeta } from '../../src/codes/checkpoint.js';
import { trainParity, type ParityTrainingConfig } from '../../src/train/parity-training.js';
import { evaluateCode } from '../../src/eval/code-metrics.js';

const ptFile = join(packageRoot(), 'examples', 'own-model', 'small_cnn.pt');

test('parity training for a TorchScript F on a tensors file beats the default answer, and the checkpoint refuses another F', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'coded-ts-parity-'));
  try {
    // a tensors file: seeded inputs, labels = F's own answers. Plain noise would make F answer
    // one class 99% of the time (a vacuous task); per-channel levels (x10) plus noise spread
    // its answers over 6 classes, the largest 29%.
    const f = TorchScriptModule.load(ptFile).eval();
    manualSeed(5);
    tidy(() =>
      noGrad(() => {
        const inputs = randn([1000, 3, 1, 1])
          .mul(10)
          .expand([1000, 3, 16, 16])
          .add(randn([1000, 3, 16, 16]).mul(0.1))
          .contiguous();
        saveSafetensors(join(tmp, 'data.safetensors'), { inputs, labels: f.forward(inputs).argmax(1) });
      }),
    );
    f.dispose();
    const data = loadTensorsFile(join(tmp, 'data.safetensors'));
    const splits = splitTensors(data.inputs, data.labels!, { seed: 1 });
    data.inputs.dispose();
    data.labels!.dispose();
    assert.deepEqual([splits.train.size, splits.validation.size, splits.test.size], [800, 100, 100]);

    const base = loadBaseModel(ptFile, { inputShape: [3, 16, 16], dataset: 'data.safetensors' });
    assert.equal(base.classes, 10);
    assert.equal(base.identity.sha256.length, 64);
    const code = codeFromConfig({ family: 'addition', k: 2, r: 1 });
    assert.ok(code instanceof LinearCode);
    const cfg: ParityTrainingConfig = {
      code: 'addition',
      k: 2,
      r: 1,
      parityModel: 'mlp:256',
      epochs: 6,
      batchSize: 32,
      lr: 1e-3,
      weightDecay: 1e-5,
      schedule: 'cosine',
      target: 'base',
      seed: 1,
      device: 'cpu',
    };
    const classes = Array.from({ length: 10 }, (_, i) => String(i));
    const res = trainParity(
      cfg,
      code,
      base.model,
      base.identity,
      { channels: 3, height: 16, width: 16, classes: 10 },
      { ...splits, classes },
      join(tmp, 'run'),
    );
    base.model.dispose();
    for (const s of [splits.train, splits.validation]) {
      s.images.dispose();
      s.labels.dispose();
    }
    assert.ok(res.epochs[res.epochs.length - 1].trainLoss < res.epochs[0].trainLoss, 'the parity loss falls');
    // the default answers: 1 / classes, and (stronger here) always F's most frequent answer
    const counts = new Map<number, number>();
    for (const v of splits.test.labels.data()) counts.set(Number(v), (counts.get(Number(v)) ?? 0) + 1);
    const majority = Math.max(...counts.values()) / splits.test.size;
    assert.ok(majority < 0.5, `the task is not trivial (majority answer ${majority})`);
    assert.ok(
      res.test.degraded.accuracy > majority + 0.2 && res.test.degraded.accuracy > 3 * res.test.defaultBaseline,
      `A_d ${res.test.degraded.accuracy} vs majority answer ${majority}, 1/classes ${res.test.defaultBaseline}`,
    );

    // identity: the recorded F loads; a different TorchScript file is refused by its SHA-256
    const w = loadCodeCheckpoint(res.bestCheckpoint, { parity: 'required' });
    assert.equal((w.metadata as ParityCheckpointMeta).base.sha256, base.identity.sha256);
    assert.equal((w.metadata as ParityCheckpointMeta).base.model, 'torchscript');
    const again = evaluateCode({ code: w.code, workers: w.workers, test: splits.test, classes, device: 'cpu', seed: 1 });
    splits.test.images.dispose();
    splits.test.labels.dispose();
    assert.equal(again.degraded.accuracy, res.test.degraded.accuracy, 'the reloaded F and parity model reproduce the test result');
    w.workers.base.dispose();
    for (const p of w.workers.parity ?? []) p.dispose();
    const other = TorchScriptModule.load(ptFile);
    noGrad(() => other.stateDict().get('head.2.bias')!.add_(0.01));
    other.save(join(tmp, 'other.pt'));
    other.dispose();
    copyFileSync(ptFile, join(tmp, 'same.pt'));
    assert.throws(
      () => loadCodeCheckpoint(res.bestCheckpoint, { basePath: join(tmp, 'other.pt'), parity: 'required' }),
      (e: Error) =>
        e.message.includes(join(tmp, 'other.pt')) && /differs \(sha256/.test(e.message) && /retrain it for this base model/.test(e.message),
    );
    const same = loadCodeCheckpoint(res.bestCheckpoint, { basePath: join(tmp, 'same.pt'), parity: 'required' });
    same.workers.base.dispose();
    for (const p of same.workers.parity ?? []) p.dispose();
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('coded train parity --base FILE.pt --data FILE trains on the tensors file; a TorchScript base without --data or --parity-model is refused', async () => {
  const { runParity } = await import('../../src/train/parity-run.js');
  const { readCheckpointMetadata } = await import('../../src/serve/served-model.js');
  const dataFile = join(packageRoot(), 'examples', 'own-model', 'data.safetensors');
  const tmp = mkdtempSync(join(tmpdir(), 'coded-ts-cli-'));
  const cfg = {
    code: 'addition',
    k: 2,
    r: 1,
    epochs: 2,
    batchSize: 16,
    lr: 1e-3,
    weightDecay: 1e-5,
    schedule: 'constant' as const,
    target: 'base' as const,
    seed: 1,
    device: 'cpu' as const,
  };
  const quiet = { resume: false, command: 'test', quiet: true, log: () => {} };
  try {
    await assert.rejects(
      runParity({ base: ptFile, cfg: { ...cfg, parityModel: 'mlp:64' }, ...quiet }),
      (e: Error) => e.message.includes(ptFile) && /pass --data FILE\.safetensors/.test(e.message),
    );
    await assert.rejects(runParity({ base: ptFile, data: dataFile, cfg, ...quiet }), /--parity-model is required for a TorchScript base/);
    await assert.rejects(
      runParity({ base: ptFile, data: dataFile, inputShape: [1, 28, 28], cfg: { ...cfg, parityModel: 'mlp:64' }, ...quiet }),
      /--input-shape 1x28x28 does not match the inputs of/,
    );
    const res = await runParity({
      base: ptFile,
      data: dataFile,
      cfg: { ...cfg, parityModel: 'mlp:64' },
      outDir: join(tmp, 'run'),
      ...quiet,
    });
    assert.equal(res.epochs.length, 2);
    const meta = readCheckpointMetadata(res.bestCheckpoint) as {
      base: { path: string; sha256: string; input: unknown; model: string };
      parity: { model: string };
    };
    assert.equal(meta.base.path, ptFile);
    assert.equal(meta.base.model, 'torchscript');
    assert.deepEqual(meta.base.input, { channels: 3, height: 32, width: 32 });
    assert.equal(meta.parity.model, 'mlp:64');
    // coded eval CKPT --data FILE: the training's test split again, the same result; without --data a clear error
    const { spawnSync } = await import('node:child_process');
    const main = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
    const ev = spawnSync(process.execPath, [main, 'eval', res.bestCheckpoint, '--data', dataFile, '--json'], {
      encoding: 'utf8',
      timeout: 120000,
    });
    assert.equal(ev.status, 0, ev.stderr);
    const e = JSON.parse(ev.stdout.trim().split('\n').pop()!) as { degraded: { accuracy: number }; samples: number };
    assert.equal(e.samples, res.test.samples);
    assert.equal(e.degraded.accuracy, res.test.degraded.accuracy);
    const noData = spawnSync(process.execPath, [main, 'eval', res.bestCheckpoint], { encoding: 'utf8', timeout: 120000 });
    assert.notEqual(noData.status, 0);
    assert.match(noData.stderr, /was trained for the TorchScript base .*small_cnn\.pt: pass --data FILE\.safetensors/);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test("--parity-model base: parity models are copies of a TorchScript F's own module, trained, saved as TorchScript too, and served from the checkpoint", async () => {
  const { runParity } = await import('../../src/train/parity-run.js');
  const { InstanceServer } = await import('../../src/serve/instance.js');
  const { V2GrpcClient } = await import('../../src/serve/client.js');
  const { servedModelFrom } = await import('../../src/serve/served-model.js');
  const dataFile = join(packageRoot(), 'examples', 'own-model', 'data.safetensors');
  const tmp = mkdtempSync(join(tmpdir(), 'coded-ts-own-'));
  const cfg = {
    code: 'addition',
    k: 2,
    r: 1,
    parityModel: 'base',
    epochs: 2,
    batchSize: 16,
    lr: 1e-3,
    weightDecay: 1e-5,
    schedule: 'constant' as const,
    target: 'base' as const,
    seed: 1,
    device: 'cpu' as const,
  };
  try {
    const res = await runParity({
      base: ptFile,
      data: dataFile,
      cfg,
      outDir: join(tmp, 'run'),
      resume: false,
      command: 'test',
      quiet: true,
      log: () => {},
    });
    const lp = loadCodeCheckpoint(res.bestCheckpoint, { base: false, parity: 'required' });
    const exported = TorchScriptModule.load(join(tmp, 'run', 'parity-0.pt')).eval();
    const f = TorchScriptModule.load(ptFile).eval();
    const x = tidy(() => randn([2, 3, 32, 32]).keep());
    try {
      assert.ok(lp.parity[0] instanceof TorchScriptModule, "the parity model is F's own module");
      assert.deepEqual([...lp.parity[0].stateDict().keys()], [...f.stateDict().keys()]);
      const [p, e, b] = tidy(() =>
        noGrad(() => [lp.parity[0].forward(x).dataFloat32(), exported.forward(x).dataFloat32(), f.forward(x).dataFloat32()]),
      );
      assert.deepEqual([...e], [...p], 'the exported TorchScript file computes what the checkpoint holds');
      assert.ok(
        p.some((v, i) => Math.abs(v - b[i]) > 1e-3),
        'trained: the parity model differs from F',
      );
      // an instance serves the parity model from the checkpoint (F's architecture from the recorded base file)
      const model = servedModelFrom(res.bestCheckpoint);
      const s = await InstanceServer.start({ model, httpPort: null, grpcPort: 0 });
      const client = new V2GrpcClient(`127.0.0.1:${s.grpcPort}`);
      try {
        const r = await client.infer(model.name, 'input', x.dataFloat32(), [2, 3, 32, 32], 10000);
        assert.deepEqual([...r.data], [...p]);
      } finally {
        client.close();
        await s.close();
      }
    } finally {
      x.dispose();
      f.dispose();
      exported.dispose();
      for (const m of lp.parity) m.dispose();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
