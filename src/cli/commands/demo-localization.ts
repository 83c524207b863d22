// `coded demo localization`: the regression-output experiment (src/train/localization.ts):
// synthetic one-object images from a data seed, a base box regressor, a ParM parity model for
// the addition code, and box IoU (base, degraded mode, default answer) on the test split; one
// run per seed, medians across seeds.
import { parse, intOption, numberOption, UsageError } from '../args.js';
import { runLocalization, type LocalizationResult } from '../../train/localization.js';
import { isModelName, modelNames } from '../../models/registry.js';
import { parseIntList } from './compare.js';

export const usage = `coded demo localization [--seeds LIST] [--data-seed N] [--k K] [--model M] [--epochs E] [--parity-epochs E] [--json]

Regression outputs with a parity model: a synthetic localization dataset (one filled rectangle
per 28x28 noisy image, predict its box; generated from --data-seed), a base box regressor F
(MSE on the corners, Adam), and the ParM parity model of the addition code (k queries, one
parity: F_P(X_1 + ... + X_k) trained toward F(X_1) + ... + F(X_k)). Reports mean box IoU on
the test split: the base model, the reconstructions (degraded mode, every single missing
output), and the default answer (the mean training box). One run per training seed; medians.

Options:
  --seeds LIST        training seeds (default 1,2,3)
  --data-seed N       dataset seed (default 0)
  --k K               queries per coding group (default 2)
  --model M           architecture of F and F_P (default base-mlp; ${modelNames().join(' | ')})
  --epochs E          base-model epochs (default 10)
  --parity-epochs E   parity-model epochs (default: --epochs)
  --json              one JSON object`;

const median = (v: number[]) => {
  const s = [...v].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

export async function demoLocalization(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      seeds: { type: 'string' },
      'data-seed': { type: 'string' },
      k: { type: 'string' },
      model: { type: 'string' },
      epochs: { type: 'string' },
      'parity-epochs': { type: 'string' },
      lr: { type: 'string' },
      json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  if (positionals.length > 0) throw new UsageError(`unexpected argument(s) ${positionals.join(' ')}\n\n${usage}`);
  const seeds = parseIntList(values.seeds ?? '1,2,3', 'seeds', 0);
  const model = values.model ?? 'base-mlp';
  if (!isModelName(model)) throw new UsageError(`--model must be one of ${modelNames().join(', ')}, got '${model}'`);
  const epochs = intOption(values.epochs, 'epochs', 10);
  const parityEpochs = intOption(values['parity-epochs'], 'parity-epochs', epochs);
  const k = intOption(values.k, 'k', 2, { min: 2 });
  const dataSeed = intOption(values['data-seed'], 'data-seed', 0, { min: 0 });
  const lr = numberOption(values.lr, 'lr', 1e-3);
  const say = (s: string) => process.stderr.write(s + '\n');
  const runs: LocalizationResult[] = [];
  for (const seed of seeds) {
    say(`seed ${seed}: training F and F_P (${model}, addition code k = ${k}) on synthetic boxes (data seed ${dataSeed})`);
    const r = runLocalization({ seed, k, model, epochs, parityEpochs, lr, data: { seed: dataSeed }, log: (s) => say(`  ${s}`) });
    say(
      `seed ${seed}: test IoU base ${r.test.base.toFixed(4)}, degraded ${r.test.degraded.toFixed(4)}, default ${r.test.defaultBaseline.toFixed(4)}; ${r.seconds.toFixed(0)} s`,
    );
    runs.push(r);
  }
  const summary = {
    seeds,
    dataSeed,
    model,
    k,
    epochs,
    parityEpochs,
    baseIoU: median(runs.map((r) => r.test.base)),
    degradedIoU: median(runs.map((r) => r.test.degraded)),
    defaultIoU: median(runs.map((r) => r.test.defaultBaseline)),
    testSamples: runs[0].test.samples,
  };
  if (values.json) console.log(JSON.stringify({ ...summary, runs }));
  else {
    console.log(`| seed | base IoU | degraded-mode IoU (parity, k = ${k}) | default answer IoU |\n|---|---|---|---|`);
    for (const r of runs)
      console.log(`| ${r.seed} | ${r.test.base.toFixed(4)} | ${r.test.degraded.toFixed(4)} | ${r.test.defaultBaseline.toFixed(4)} |`);
    console.log(
      `| **median** | **${summary.baseIoU.toFixed(4)}** | **${summary.degradedIoU.toFixed(4)}** | **${summary.defaultIoU.toFixed(4)}** |`,
    );
  }
}
