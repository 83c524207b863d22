// Issue 19: why learned ConvEncoder codes trained slower than the reference code. Trains a
// learned code for S steps with a chosen ConvEncoder init and MSE reduction over the m outputs
// ('sum': the reference's MaskedLoss and ours since issue 19; 'mean': ours before), printing at
// chosen steps the task gradient of each encoder convolution next to the L2 term Adam adds to it
// (weightDecay * w), and at the end the test A_d / recovery of the current code (the reference
// code reports the current model's test accuracy after each epoch).
// node scripts/experiments/learned-loss-scale.mjs --init reference|xavier|kaiming --reduction sum|mean
//   [--k 2] [--steps 429] [--seed 1] [--wd 1e-5] [--base models/fashion-mnist-base-mlp.safetensors] [--data-dir DIR]
import { parseArgs } from 'node:util';
import { setNumThreads, manualSeed } from '../../dist/src/engine/runtime.js';
import { tidy } from '../../dist/src/engine/scope.js';
import { Adam } from '../../dist/src/engine/optim/adam.js';
import { Conv2d } from '../../dist/src/nn/conv2d.js';
import { loadDataset, disposeDataset } from '../../dist/src/data/registry.js';
import { GroupSampler, gatherGroups } from '../../dist/src/data/group-sampler.js';
import { LearnedCode } from '../../dist/src/codes/learned.js';
import { loadBase } from '../../dist/src/train/learned-run.js';
import { learnedCodeConfig, learnedLoss, erasedMask, freeze } from '../../dist/src/train/learned-training.js';
import { evaluateCode } from '../../dist/src/eval/code-metrics.js';

const { values } = parseArgs({
  options: {
    k: { type: 'string', default: '2' },
    steps: { type: 'string', default: '429' },
    init: { type: 'string', default: 'reference' },
    reduction: { type: 'string', default: 'sum' },
    seed: { type: 'string', default: '1' },
    wd: { type: 'string', default: '1e-5' },
    base: { type: 'string', default: 'models/fashion-mnist-base-mlp.safetensors' },
    'data-dir': { type: 'string' },
    report: { type: 'string', default: '1,10,100' },
  },
});
if (process.env.CODED_NUM_THREADS) setNumThreads(Number(process.env.CODED_NUM_THREADS));
const k = Number(values.k),
  steps = Number(values.steps),
  seed = Number(values.seed),
  wd = Number(values.wd);
const report = new Set(values.report.split(',').map(Number));
const { model: base, meta } = loadBase(values.base);
const ds = await loadDataset(meta.dataset, { dataDir: values['data-dir'], seed: meta.config?.seed ?? 1, log: () => {} });
const data = { train: ds.train, validation: ds.validation, test: ds.test, classes: meta.classes, input: meta.input };
const m = meta.classes.length;
const cfg = {
  k,
  r: 1,
  encoder: 'conv',
  decoder: 'mlp',
  loss: 'mse-base',
  batchSize: k === 2 ? 64 : 32,
  lr: 1e-3,
  weightDecay: wd,
  seed,
  device: 'cpu',
};
manualSeed(seed);
const code = new LearnedCode(
  learnedCodeConfig({ ...cfg, ...(values.init === 'reference' ? {} : { encoderOptions: { init: values.init } }) }, data, meta.model),
);
freeze(base);
const patterns = code.evaluationPatterns();
const erased = erasedMask(patterns, k).keep();
const opt = new Adam([...code.encoder.parameters(), ...code.decoder.parameters()], { lr: cfg.lr, weightDecay: wd });
const sampler = new GroupSampler({ size: data.train.size, k, groupsPerBatch: cfg.batchSize, seed });
const convs = [...code.encoder.namedModules()].map(([, mod]) => mod).filter((mod) => mod instanceof Conv2d);
const e = (x) => x.toExponential(1);
console.log(
  `k=${k} init=${values.init} reduction=${values.reduction} seed=${seed} wd=${wd} steps=${steps} (${sampler.batchesPerEpoch} per epoch)`,
);
let step = 0,
  sum = 0;
const t0 = performance.now();
outer: for (let epoch = 1; ; epoch++) {
  manualSeed(seed * 100003 + epoch);
  for (const batch of sampler.batches(epoch)) {
    const l = tidy(() => {
      const g = gatherGroups(data.train, batch);
      opt.zeroGrad();
      let loss = learnedLoss(code, base, g.images, g.labels, patterns, erased, 'mse-base');
      if (values.reduction === 'mean') loss = loss.div(m);
      loss.backward();
      if (report.has(step + 1)) {
        console.log(
          `  step ${step + 1}: loss ${loss.item().toFixed(3)}; mean |grad| / mean |wd*w| per encoder conv: ` +
            convs.map((c) => `${e(c.weight.grad.abs().mean().item())}/${e(c.weight.abs().mean().item() * wd)}`).join(' '),
        );
      }
      opt.step();
      return loss.item();
    });
    sum += l;
    step++;
    if (step >= steps) break outer;
  }
}
const test = evaluateCode({ code, workers: { base }, test: data.test, classes: data.classes, seed: 1 });
const encW = convs.map((c) => e(c.weight.abs().mean().item())).join(' ');
console.log(
  `RESULT init=${values.init} reduction=${values.reduction} seed=${seed} steps=${steps}: mean train loss ${(sum / step).toFixed(3)}, test A_d ${(100 * test.degraded.accuracy).toFixed(2)}%, recovery ${(100 * test.degraded.recovery).toFixed(2)}%; encoder mean |W| per conv ${encW}; ${((performance.now() - t0) / 1000).toFixed(0)} s`,
);
disposeDataset(ds);
