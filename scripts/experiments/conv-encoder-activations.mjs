// Diagnose ConvEncoder training: per-layer activation std and dead-ReLU fractions at init
// and after S training steps (kl-base through the frozen base model), plus loss and recovery
// on a fixed batch of validation groups.
// node scripts/experiments/conv-encoder-activations.mjs [--ckpt CODE_CKPT --steps 0] --k 4 --steps 200 --init paper|kaiming (the conv encoder's options.init) [--seed 1] [--base CKPT] [--data-dir DIR]
import { parseArgs } from 'node:util';
import { setNumThreads, manualSeed } from '../../dist/src/engine/runtime.js';
import { tidy } from '../../dist/src/engine/scope.js';
import { noGrad } from '../../dist/src/engine/autograd.js';
import { Adam } from '../../dist/src/engine/optim/adam.js';
import { Conv2d } from '../../dist/src/nn/conv2d.js';
import { loadDataset, disposeDataset } from '../../dist/src/data/registry.js';
import { GroupSampler, gatherGroups } from '../../dist/src/data/group-sampler.js';
import { LearnedCode, allOutputs } from '../../dist/src/codes/learned.js';
import { loadCodeCheckpoint } from '../../dist/src/codes/checkpoint.js';
import { loadBase } from '../../dist/src/train/learned-run.js';
import { learnedCodeConfig, learnedLoss, erasedMask, freeze } from '../../dist/src/train/learned-training.js';

const { values } = parseArgs({
  options: {
    k: { type: 'string', default: '4' },
    steps: { type: 'string', default: '200' },
    init: { type: 'string', default: 'paper' },
    seed: { type: 'string', default: '1' },
    base: { type: 'string', default: 'models/mnist-base-mlp.safetensors' },
    'data-dir': { type: 'string', default: '/work/shared/data' },
    ckpt: { type: 'string' },
    every: { type: 'string', default: '50' },
    lr: { type: 'string', default: '1e-3' },
    wd: { type: 'string', default: '1e-5' },
  },
});
setNumThreads(Number(process.env.CODED_NUM_THREADS ?? 1));
const k = Number(values.k),
  steps = Number(values.steps),
  seed = Number(values.seed),
  every = Number(values.every);
const { model: base, meta } = loadBase(values.base);
manualSeed(seed);
const ds = await loadDataset(meta.dataset, { dataDir: values['data-dir'], seed: meta.config?.seed ?? 1, log: () => {} });
const data = { train: ds.train, validation: ds.validation, test: ds.test, classes: meta.classes, input: meta.input };
const cfg = {
  k,
  r: 1,
  encoder: 'conv',
  decoder: 'mlp',
  loss: 'kl-base',
  batchSize: k === 2 ? 64 : 32,
  lr: Number(values.lr),
  weightDecay: Number(values.wd),
  seed,
  device: 'cpu',
};
manualSeed(seed);
const encoderOptions = values.init === 'paper' ? undefined : { init: values.init };
// --ckpt: inspect a trained code checkpoint instead (stats only, --steps 0)
const code = values.ckpt
  ? loadCodeCheckpoint(values.ckpt, { base: false }).code
  : new LearnedCode(learnedCodeConfig({ ...cfg, ...(encoderOptions ? { encoderOptions } : {}) }, data, meta.model));
freeze(base);
const patterns = code.evaluationPatterns();
const erased = erasedMask(patterns, k).keep();
const opt = new Adam([...code.encoder.parameters(), ...code.decoder.parameters()], { lr: cfg.lr, weightDecay: cfg.weightDecay });
const sampler = new GroupSampler({ size: data.train.size, k, groupsPerBatch: cfg.batchSize, seed });
const vsampler = new GroupSampler({ size: data.validation.size, k, groupsPerBatch: 256, seed: 7 });
const vbatch = vsampler.batches(1).next().value;
const vg = gatherGroups(data.validation, vbatch);
vg.images.keep();
vg.labels.keep();

const f = (x, d = 3) => x.toExponential(d);
function stats(tag) {
  tidy(() =>
    noGrad(() => {
      const [G, kk, C, H, W] = vg.images.shape;
      let x = vg.images.permute(0, 2, 1, 3, 4).reshape([G * C, kk, H, W]);
      const rows = [`  input std ${f(x.std().item())}`];
      const net = code.encoder.net;
      for (let i = 0; i < net.length; i++) {
        const m = net.at(i);
        const y = m.forward(x);
        if (m instanceof Conv2d) {
          rows.push(
            `  L${(i / 2) | 0} conv${i === net.length - 1 ? '(1x1)' : ''} out std ${f(y.std().item())}` + (i < net.length - 1 ? '' : ''),
          );
        } else {
          const zero = y.eq(0).float();
          const elem = zero.mean().item();
          // a channel is dead when it is zero at every position of every image in the batch
          const chDead = zero.mean([0, 2, 3]).eq(1).float().mean().item();
          rows[rows.length - 1] +=
            `   relu std ${f(y.std().item())}  zero ${(100 * elem).toFixed(1)}%  dead ch ${(100 * chDead).toFixed(1)}%`;
        }
        x = y;
      }
      // the parity through F and the decoder
      const par = base.forward(x.reshape([G, 1, C, H, W]).reshape([G, C, H, W])).reshape([G, 1, -1]);
      const dataOut = base.forward(vg.images.reshape([G * kk, C, H, W])).reshape([G, kk, -1]);
      const rec = code.decodePatterns(allOutputs(dataOut, par), patterns); // [P, G, k, m]
      const pred = rec.argmax(3),
        tgt = dataOut.argmax(2).unsqueeze(0);
      const w = erased.reshape([patterns.length, 1, kk]).float();
      const acc = pred.eq(tgt).float().mul(w).sum().item() / (w.sum().item() * G);
      // recovery of each data slot when it is the one missing (single-erasure patterns)
      const hit = pred.eq(tgt).float(); // [P, G, k]
      const perSlot = [];
      patterns.forEach((p, pi) => {
        const miss = p
          .slice(0, kk)
          .map((v, i) => (v ? -1 : i))
          .filter((i) => i >= 0);
        if (miss.length === 1) perSlot[miss[0]] = hit.select(0, pi).select(1, miss[0]).mean().item();
      });
      const loss = learnedLoss(code, base, vg.images, vg.labels, patterns, erased, 'kl-base').item();
      // how much the parity depends on the input: std over groups of F(parity) logits vs F(data)
      rows.push(
        `  F(parity) logit std over groups ${f(par.std(0).mean().item())} (F(data) ${f(dataOut.std(0).mean().item())}); decoder out std ${f(rec.std().item())}`,
      );
      console.log(
        `${tag}: val-batch kl ${loss.toFixed(4)} recovery ${(100 * acc).toFixed(2)}% (per missing slot: ${perSlot.map((v) => (100 * v).toFixed(1)).join(' ')})`,
      );
      console.log(rows.join('\n'));
    }),
  );
}
console.log(`k=${k} init=${values.init} seed=${seed} lr=${cfg.lr} weight decay ${cfg.weightDecay} base ${values.base}`);
stats(values.ckpt ? `checkpoint ${values.ckpt}` : 'step 0');
if (steps === 0) {
  disposeDataset(ds);
  process.exit(0);
}
let step = 0,
  sum = 0,
  n = 0;
const t0 = performance.now();
outer: for (let epoch = 1; ; epoch++) {
  for (const batch of sampler.batches(epoch)) {
    const l = tidy(() => {
      const g = gatherGroups(data.train, batch);
      opt.zeroGrad();
      const loss = learnedLoss(code, base, g.images, g.labels, patterns, erased, 'kl-base');
      loss.backward();
      if (step === 0 || (step + 1) % (every * 2) === 0) {
        // the task gradient of each encoder conv weight vs the L2 term Adam adds (weightDecay * w)
        const convs = [...code.encoder.namedModules()].map(([, m]) => m).filter((m) => m instanceof Conv2d);
        console.log(
          `  step ${step + 1} mean |grad| / mean |wd*w| per encoder conv: ` +
            convs
              .map((c) => {
                const g = c.weight.grad.abs().mean().item(),
                  w = c.weight.abs().mean().item() * cfg.weightDecay;
                return `${f(g, 1)}/${f(w, 1)}`;
              })
              .join(' '),
        );
      }
      opt.step();
      return loss.item();
    });
    sum += l;
    n++;
    step++;
    if (step % every === 0) {
      console.log(`step ${step}: mean train kl ${(sum / n).toFixed(4)} (${((performance.now() - t0) / 1000).toFixed(0)} s)`);
      sum = 0;
      n = 0;
      if (step % (every * 2) === 0 || step === steps) stats(`step ${step}`);
    }
    if (step >= steps) break outer;
  }
}
disposeDataset(ds);
