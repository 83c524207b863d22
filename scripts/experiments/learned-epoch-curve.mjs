// Issue 19: a learned-code training run through the product path (trainLearned, as `coded train
// learned`), printing after every epoch the test A_d and recovery of the *current* code (the
// reference code's per-epoch test figures are of its current model, not of the best one), next to
// the validation figures trainLearned records. One JSON line per epoch on stdout.
// node scripts/experiments/learned-epoch-curve.mjs --k 2 --loss mse-base --init reference|xavier|kaiming
//   --seed 1 --epochs 10 [--device cuda] [--data-dir DIR] [--out DIR] [--base CKPT] [--steps N]
// --steps N: stop after N training steps (batches) of epoch 1 and print one JSON line with the mean
// training loss over those steps and the current code's test A_d (for short CPU comparisons with
// reference-peer.py --steps N, which prints the same two figures).
import { parseArgs } from 'node:util';
import { setNumThreads, manualSeed } from '../../dist/src/engine/runtime.js';
import { loadDataset } from '../../dist/src/data/registry.js';
import { LearnedCode } from '../../dist/src/codes/learned.js';
import { loadBase } from '../../dist/src/train/learned-run.js';
import { baseIdentity, learnedCodeConfig, trainLearned } from '../../dist/src/train/learned-training.js';
import { evaluateCode } from '../../dist/src/eval/code-metrics.js';

const { values: v } = parseArgs({
  options: {
    k: { type: 'string', default: '2' },
    loss: { type: 'string', default: 'mse-base' },
    init: { type: 'string', default: 'reference' },
    seed: { type: 'string', default: '1' },
    epochs: { type: 'string', default: '10' },
    device: { type: 'string', default: 'cpu' },
    'data-dir': { type: 'string' },
    out: { type: 'string' },
    base: { type: 'string', default: 'models/fashion-mnist-base-mlp.safetensors' },
    steps: { type: 'string', default: '0' },
  },
});
if (process.env.CODED_NUM_THREADS) setNumThreads(Number(process.env.CODED_NUM_THREADS));
const k = Number(v.k),
  seed = Number(v.seed);
const { model: base, meta } = loadBase(v.base);
const ds = await loadDataset(meta.dataset, { dataDir: v['data-dir'], seed: meta.config?.seed ?? 1, log: () => {} });
const data = { train: ds.train, validation: ds.validation, test: ds.test, classes: meta.classes, input: meta.input };
const cfg = {
  base: v.base,
  dataset: meta.dataset,
  k,
  r: 1,
  encoder: 'conv',
  decoder: 'mlp',
  loss: v.loss,
  epochs: Number(v.epochs),
  batchSize: k === 2 ? 64 : 32,
  lr: 1e-3,
  schedule: 'constant',
  weightDecay: 1e-5,
  optimizers: 'joint',
  trainParts: 'both',
  seed,
  device: v.device,
  ...(v.init === 'reference' ? {} : { encoderOptions: { init: v.init } }),
};
manualSeed(seed);
const code = new LearnedCode(learnedCodeConfig(cfg, data, meta.model));
const tag = { k, loss: v.loss, init: v.init, seed };
const out = v.out ?? `runs/issue19/k${k}-${v.loss}-${v.init}-s${seed}`;
const maxSteps = Number(v.steps);
const stop = new Error('--steps reached');
const stepLosses = [];
const testNow = () => {
  const t = evaluateCode({ code, workers: { base }, test: data.test, classes: data.classes, device: v.device });
  for (const [, m] of code.modules()) m.train();
  return t;
};
try {
  trainLearned(
    cfg,
    code,
    base,
    baseIdentity(v.base, meta),
    data,
    out,
    {},
    {
      onBatch: (_e, _b, _n, loss) => {
        stepLosses.push(loss);
        if (maxSteps > 0 && stepLosses.length >= maxSteps) throw stop;
      },
      onEpoch: (e) => {
        const t = testNow();
        console.log(
          JSON.stringify({
            ...tag,
            epoch: e.epoch,
            trainLoss: e.trainLoss,
            valAd: e.valAccuracy,
            valRecovery: e.valRecovery,
            testAd: t.degraded.accuracy,
            testRecovery: t.degraded.recovery,
            seconds: e.seconds,
          }),
        );
      },
    },
  );
} catch (e) {
  if (e !== stop) throw e;
  const t = testNow();
  const mean = (a) => a.reduce((x, y) => x + y, 0) / a.length;
  console.log(
    JSON.stringify({
      ...tag,
      steps: stepLosses.length,
      trainLoss: mean(stepLosses),
      lastLoss50: mean(stepLosses.slice(-50)),
      testAd: t.degraded.accuracy,
      testRecovery: t.degraded.recovery,
    }),
  );
}
