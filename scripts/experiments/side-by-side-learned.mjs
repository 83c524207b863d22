// Issue 19, the side-by-side check: runs our learned-code training step (learnedLoss + Adam,
// the product path) from the initial weights and on the batches that
// scripts/experiments/reference-peer.py --dump DIR wrote with the reference implementation, and
// prints our loss and encoder gradient norms next to the reference's, step by step.
// At the end: our test A_d and recovery with the test images grouped in file order (as the peer
// groups them) and with evaluateCode's seeded grouping.
// node scripts/experiments/side-by-side-learned.mjs DIR [--k 2] [--device cuda] [--data-dir DIR] [--every 50]
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { tidy } from '../../dist/src/engine/scope.js';
import { tensor } from '../../dist/src/engine/tensor.js';
import { Adam } from '../../dist/src/engine/optim/adam.js';
import { loadSafetensors } from '../../dist/src/nn/safetensors.js';
import { loadDataset, disposeDataset } from '../../dist/src/data/registry.js';
import { LearnedCode } from '../../dist/src/codes/learned.js';
import { loadBase } from '../../dist/src/train/learned-run.js';
import { learnedCodeConfig, learnedLoss, erasedMask, freeze } from '../../dist/src/train/learned-training.js';
import { allOutputs } from '../../dist/src/codes/learned.js';
import { noGrad } from '../../dist/src/engine/autograd.js';
import { evaluateCode } from '../../dist/src/eval/code-metrics.js';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    k: { type: 'string', default: '2' },
    base: { type: 'string', default: 'models/fashion-mnist-base-mlp.safetensors' },
    device: { type: 'string', default: 'cpu' },
    'data-dir': { type: 'string' },
    every: { type: 'string', default: '1' },
  },
});
const device = values.device,
  every = Number(values.every);
const dir = positionals[0];
const k = Number(values.k);
const { model: base, meta } = loadBase(values.base);
freeze(base);
const ds = await loadDataset(meta.dataset, { validation: 0, dataDir: values['data-dir'], device, log: () => {} });
base.to(device); // train = the 60000 images in file order
const data = { train: ds.train, validation: ds.test, test: ds.test, classes: meta.classes, input: meta.input };
const code = new LearnedCode(learnedCodeConfig({ k, r: 1, encoder: 'conv', decoder: 'mlp', loss: 'mse-base' }, data, meta.model));
const init = loadSafetensors(`${dir}/init.safetensors`).tensors;
for (const [name, mod] of code.modules()) {
  const sd = new Map();
  for (const [key, t] of init) if (key.startsWith(`${name}.`)) sd.set(key.slice(name.length + 1), t);
  mod.loadStateDict(sd);
  mod.to(device);
}
const batches = JSON.parse(readFileSync(`${dir}/batches.json`, 'utf8'));
const ref = JSON.parse(readFileSync(`${dir}/reference.json`, 'utf8'));
const patterns = code.evaluationPatterns();
const erased = erasedMask(patterns, k, device).keep();
const params = [...code.encoder.parameters(), ...code.decoder.parameters()];
const opt = new Adam(params, { lr: 1e-3, weightDecay: 1e-5 });
const encParams = [...code.encoder.parameters()];
const e = (x) => x.toExponential(3);
batches.forEach((ids, step) => {
  tidy(() => {
    const idx = tensor(Int32Array.from(ids), [ids.length], { dtype: 'int64', device });
    const x = ds.train.images.indexSelect(0, idx).reshape([ids.length / k, k, 1, 28, 28]);
    const y = ds.train.labels.indexSelect(0, idx).reshape([ids.length / k, k]);
    opt.zeroGrad();
    const loss = learnedLoss(code, base, x, y, patterns, erased, 'mse-base');
    loss.backward();
    const ours = encParams.filter((_, i) => i % 2 === 0).map((p) => p.grad.square().sum().sqrt().item());
    const theirs = ref[step].encoderGradNorms.filter((_, i) => i % 2 === 0);
    const worst = Math.max(...ours.map((g, i) => Math.abs(g - theirs[i]) / theirs[i]));
    if (step < 5 || (step + 1) % every === 0)
      console.log(
        `step ${step + 1}: loss ours ${loss.item().toFixed(4)} reference ${ref[step].loss.toFixed(4)} (rel. diff ${e(Math.abs(loss.item() - ref[step].loss) / ref[step].loss)}); encoder conv grad norms ours ${ours.map(e).join(' ')}; largest rel. diff to the reference's ${e(worst)}`,
      );
    opt.step();
  });
});
// test: groups of consecutive test images (the peer's grouping), then evaluateCode's
const fileOrder = tidy(() =>
  noGrad(() => {
    const n = ds.test.size - (ds.test.size % k);
    const x = ds.test.images.narrow(0, 0, n).reshape([n / k, k, 1, 28, 28]);
    const y = ds.test.labels.narrow(0, 0, n).reshape([n / k, k]);
    const outs = base.forward(x.reshape([n, 1, 28, 28])).reshape([n / k, k, -1]);
    const par = base.forward(code.parities(x).reshape([n / k, 1, 28, 28])).reshape([n / k, 1, -1]);
    const rec = code.decodePatterns(allOutputs(outs, par), patterns).argmax(3); // [P, G, k]
    const w = erased.reshape([patterns.length, 1, k]).to('float32');
    const count = w.sum().item() * (n / k);
    return {
      ad: rec.eq(y.unsqueeze(0)).to('float32').mul(w).sum().item() / count,
      recovery: rec.eq(outs.argmax(2).unsqueeze(0)).to('float32').mul(w).sum().item() / count,
    };
  }),
);
const ev = evaluateCode({ code, workers: { base }, test: ds.test, classes: meta.classes, device });
console.log(
  `RESULT side-by-side ours: ${batches.length} steps, test A_d ${(100 * fileOrder.ad).toFixed(2)}% recovery ${(100 * fileOrder.recovery).toFixed(2)}% (file-order groups); evaluateCode (seeded groups): A_d ${(100 * ev.degraded.accuracy).toFixed(2)}% recovery ${(100 * ev.degraded.recovery).toFixed(2)}%`,
);
disposeDataset(ds);
