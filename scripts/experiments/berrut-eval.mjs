// Berrut codes on a shipped base model: A_d per straggler count for K = 2, 4 and N = K+1..K+3
// (issue 6). Usage: node scripts/experiments/berrut-eval.mjs BASE_CKPT [--data-dir DIR] [--ks 2,4] [--out FILE.json]
import { writeFileSync } from 'node:fs';
import { readCheckpoint } from '../../dist/src/nn/checkpoint.js';
import { buildModel } from '../../dist/src/models/registry.js';
import { loadDataset, disposeDataset } from '../../dist/src/data/registry.js';
import { BerrutCode } from '../../dist/src/codes/index.js';
import { evaluateCode } from '../../dist/src/eval/code-metrics.js';
import { noGrad } from '../../dist/src/engine/autograd.js';

const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : def;
};
const ckpt = args[0];
if (!ckpt) {
  console.error('usage: berrut-eval.mjs BASE_CKPT [--data-dir DIR] [--ks 2,4] [--extra 3] [--out FILE]');
  process.exit(2);
}
const ks = opt('--ks', '2,4').split(',').map(Number);
const extra = Number(opt('--extra', '3'));
const ck = readCheckpoint(ckpt);
const meta = ck.metadata;
const model = buildModel(meta.model, { ...meta.input, classes: meta.classes.length });
model.loadStateDict(ck.state);
model.eval();
const ds = await loadDataset(meta.dataset, { dataDir: opt('--data-dir'), validation: 0, log: (s) => process.stderr.write(s + '\n') });
const rows = [];
for (const k of ks)
  for (let n = k + 1; n <= k + extra; n++) {
    const code = new BerrutCode({ k, n });
    const t0 = performance.now();
    const e = noGrad(() => evaluateCode({ code, workers: { base: model }, test: ds.test, classes: meta.classes.length }));
    const row = {
      dataset: meta.dataset,
      model: meta.model,
      k,
      n,
      baseAccuracy: e.baseAccuracy,
      degraded: e.degraded.accuracy,
      byMissing: e.byMissing.map((m) => ({ missing: m.missing, patterns: m.patterns, accuracy: m.accuracy, recovery: m.recovery })),
      seconds: (performance.now() - t0) / 1000,
    };
    rows.push(row);
    console.log(
      `${meta.dataset} K=${k} N=${n}: A_a ${(100 * e.baseAccuracy).toFixed(2)}; A_d by stragglers ` +
        row.byMissing.map((m) => `${m.missing}: ${(100 * m.accuracy).toFixed(2)}`).join(', ') +
        ` (${row.seconds.toFixed(1)} s)`,
    );
  }
const out = opt('--out');
if (out) writeFileSync(out, JSON.stringify(rows, null, 1));
disposeDataset(ds);
model.dispose();
