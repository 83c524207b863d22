// Issue 19: writes what our learned-code training run of a seed draws, for
// reference-peer.py --draws DIR (the reference's modules and step on *our* draws):
//   DIR/init.safetensors  the initial weights of the default learned code (ConvEncoder + MLPDecoder)
//                         after manualSeed(seed), as learned-epoch-curve.mjs and `coded train
//                         learned` build it (our tensor names)
//   DIR/batches.json      epoch 1's batches of coding groups from our GroupSampler (seeded as
//                         trainLearned's), as indices into the 60000 official training images
// node scripts/experiments/learned-draws.mjs --seed 1 [--k 2] [--out DIR] [--data-dir DIR] [--base CKPT]
import { parseArgs } from 'node:util';
import { mkdirSync, writeFileSync } from 'node:fs';
import { manualSeed } from '../../dist/src/engine/runtime.js';
import { loadDataset, disposeDataset } from '../../dist/src/data/registry.js';
import { GroupSampler } from '../../dist/src/data/group-sampler.js';
import { LearnedCode } from '../../dist/src/codes/learned.js';
import { loadBase } from '../../dist/src/train/learned-run.js';
import { learnedCodeConfig } from '../../dist/src/train/learned-training.js';
import { saveSafetensors } from '../../dist/src/nn/safetensors.js';

const { values: v } = parseArgs({
  options: {
    k: { type: 'string', default: '2' },
    seed: { type: 'string', default: '1' },
    out: { type: 'string' },
    'data-dir': { type: 'string' },
    base: { type: 'string', default: 'models/fashion-mnist-base-mlp.safetensors' },
  },
});
const k = Number(v.k),
  seed = Number(v.seed);
const out = v.out ?? `runs/issue19/draws-k${k}-s${seed}`;
const { model: base, meta } = loadBase(v.base);
const ds = await loadDataset(meta.dataset, { dataDir: v['data-dir'], seed: meta.config?.seed ?? 1, log: () => {} });
const data = { train: ds.train, validation: ds.validation, test: ds.test, classes: meta.classes, input: meta.input };
const cfg = { k, r: 1, encoder: 'conv', decoder: 'mlp', loss: 'mse-base', seed };
manualSeed(seed);
const code = new LearnedCode(learnedCodeConfig(cfg, data, meta.model));
mkdirSync(out, { recursive: true });
const tensors = new Map();
for (const [name, m] of code.modules()) for (const [key, t] of m.stateDict()) tensors.set(`${name}.${key}`, t);
saveSafetensors(`${out}/init.safetensors`, tensors);
const sampler = new GroupSampler({ size: data.train.size, k, groupsPerBatch: k === 2 ? 64 : 32, seed });
const batches = [...sampler.batches(1)].map((b) => Array.from(b.indices, (i) => ds.trainIndices[i]));
writeFileSync(`${out}/batches.json`, JSON.stringify(batches));
console.log(`${out}: ${tensors.size} tensors, ${batches.length} batches (${batches.reduce((a, b) => a + b.length, 0)} images)`);
for (const [, m] of code.modules()) m.dispose();
disposeDataset(ds);
base.dispose();
