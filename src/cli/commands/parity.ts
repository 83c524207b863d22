// `coded train parity ...` (parity-model training for the addition, linear and concat codes)
// and `coded eval CODE_CKPT` (the shared code evaluation of a parity-code checkpoint). The
// `train` and `eval` entries of the command table route here for these forms and to the
// base-model commands otherwise.
import { join } from 'node:path';
import { parse, intOption, numberOption, choiceOption, UsageError } from '../args.js';
import { Progress } from '../progress.js';
import { isDatasetName, loadDataset, disposeDataset } from '../../data/registry.js';
import { manualSeed, cudaAvailable } from '../../engine/runtime.js';
import { modelNames } from '../../models/registry.js';
import { codeFromConfig } from '../../codes/index.js';
import { LinearCode } from '../../codes/linear.js';
import { loadBaseCheckpoint, loadParityWorkers } from '../../codes/parity-models.js';
import { trainParity, type ParityTrainingConfig } from '../../train/parity-training.js';
import { evaluateCode, formatCodeEvaluation, writeOverallAccuracyPlot } from '../../eval/code-metrics.js';

export const trainUsage = `coded train parity --base CKPT --code addition|linear|concat --k K [options]

Trains the r parity models of a ParM code for a trained base model (frozen): targets are what
the decoder expects (sum_i a_ji F(X_i), from base outputs computed once), MSE loss, Adam; the
checkpoint with the best validation degraded-mode accuracy A_d is kept and evaluated on the
test set with every erasure pattern.

Options:
  --base CKPT        base checkpoint from \`coded train base\` (e.g. models/fashion-mnist-base-mlp.safetensors)
  --code C           addition (r = 1) | linear (Cauchy coefficients, any r) | concat (image tiling, r = 1)
  --k K              queries per coding group (>= 2)
  --r R              parity models (default 1; only linear takes R > 1)
  --parity-model M   parity architecture (default: the base model's; ${modelNames().join(' | ')})
  --epochs N         (default 20)
  --batch-size B     coding groups per batch (default 64 for k = 2, 32 otherwise)
  --lr X             Adam learning rate (default 1e-3)
  --weight-decay X   L2 penalty (default 1e-5)
  --schedule S       constant | cosine (default cosine)
  --target T         base (default: the base model's outputs) | labels (one-hot true labels)
  --device D         cpu | cuda (default cpu)
  --seed N           (default 1)
  --out DIR          output directory (default runs/parity/<dataset>-<model>-<code>-k<K>-r<R>)
  --resume           continue from DIR/last.safetensors
  --data-dir DIR     where datasets live
  --json             one JSON object with the result on stdout

Writes DIR/best.safetensors (code + parity weights + base identity), DIR/last.safetensors
(resumable), DIR/log.jsonl, DIR/test-eval.json, DIR/test-eval.md and DIR/overall-accuracy.{svg,png}.`;

export async function trainParityCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    base: { type: 'string' }, code: { type: 'string' }, k: { type: 'string' }, r: { type: 'string' }, 'parity-model': { type: 'string' },
    epochs: { type: 'string' }, 'batch-size': { type: 'string' }, lr: { type: 'string' }, 'weight-decay': { type: 'string' },
    schedule: { type: 'string' }, target: { type: 'string' }, device: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' },
    resume: { type: 'boolean' }, 'data-dir': { type: 'string' }, json: { type: 'boolean' },
  }, trainUsage);
  if (values.help) return void console.log(trainUsage);
  if (values.base === undefined) throw new UsageError(`--base is required\n\n${trainUsage}`);
  if (values.code === undefined) throw new UsageError(`--code is required (addition, linear, concat)\n\n${trainUsage}`);
  const codeName = choiceOption(values.code, 'code', ['addition', 'linear', 'concat'] as const, 'addition');
  if (values.k === undefined) throw new UsageError('--k is required');
  const k = intOption(values.k, 'k', 2, { min: 2 });
  const r = intOption(values.r, 'r', 1, { min: 1 });
  if (codeName !== 'linear' && r !== 1) throw new UsageError(`--code ${codeName} has r = 1; use --code linear for r = ${r}`);
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  if (device === 'cuda' && !cudaAvailable()) throw new UsageError('--device cuda: this build of the addon has no CUDA');
  const say = (s: string) => process.stderr.write(s + '\n');
  const base = loadBaseCheckpoint(values.base);
  const parityModel = values['parity-model'] ?? base.meta.model;
  if (!modelNames().includes(parityModel)) {
    base.model.dispose();
    throw new UsageError(`--parity-model must be one of ${modelNames().join(', ')}, got '${parityModel}'`);
  }
  const cfg: ParityTrainingConfig = {
    code: codeName, k, r, parityModel,
    epochs: intOption(values.epochs, 'epochs', 20),
    batchSize: intOption(values['batch-size'], 'batch-size', k === 2 ? 64 : 32),
    lr: numberOption(values.lr, 'lr', 1e-3),
    weightDecay: numberOption(values['weight-decay'], 'weight-decay', 1e-5),
    schedule: choiceOption(values.schedule, 'schedule', ['constant', 'cosine'] as const, 'cosine'),
    target: choiceOption(values.target, 'target', ['base', 'labels'] as const, 'base'),
    seed: intOption(values.seed, 'seed', 1, { min: 0 }),
    device,
  };
  const code = codeFromConfig({ family: codeName, k, r });
  if (!(code instanceof LinearCode)) throw new Error(`internal: ${codeName} is not a parity-model code`);
  const dataset = base.meta.dataset;
  if (!isDatasetName(dataset)) throw new Error(`${values.base}: unknown dataset '${dataset}' in metadata`);
  const outDir = values.out ?? join('runs', 'parity', `${dataset}-${base.meta.model}-${codeName}-k${k}-r${r}`);
  manualSeed(cfg.seed);
  const ds = await loadDataset(dataset, { dataDir: values['data-dir'], seed: cfg.seed, log: say });
  let bar: Progress | null = null;
  let smooth = NaN;
  try {
    if (ds.validation === null) throw new Error('internal: no validation split');
    say(`training ${r} ${parityModel} parity model(s) for ${code.name} on ${dataset} (base ${values.base}, test accuracy ${((base.meta.testAccuracy ?? NaN) * 100).toFixed(2)}%): ` +
      `${cfg.epochs} epochs, batch ${cfg.batchSize} groups, Adam lr ${cfg.lr} (${cfg.schedule}), L2 ${cfg.weightDecay}, targets ${cfg.target}; output ${outDir}`);
    const res = trainParity(cfg, code, base.model, base.identity, { ...base.meta.input, classes: base.meta.classes.length },
      { train: ds.train, validation: ds.validation, test: ds.test, classes: base.meta.classes }, outDir, { resume: values.resume ?? false }, {
        command: ['coded', 'train', 'parity', ...argv].join(' '),
        onBatch: (epoch, b, batches, loss) => {
          if (b === 0) {
            bar = new Progress(`epoch ${epoch}/${cfg.epochs}`, batches, { unit: 'batch', enabled: true });
            smooth = NaN;
          }
          smooth = Number.isNaN(smooth) ? loss : 0.98 * smooth + 0.02 * loss;
          bar!.tick(1, { mse: smooth });
        },
        onEpoch: (e) => {
          (bar as Progress | null)?.finish();
          say(`epoch ${e.epoch}: train mse ${e.trainLoss.toFixed(4)}, validation A_d ${(100 * e.valDegradedAccuracy).toFixed(2)}%, ` +
            `recovery ${(100 * e.valRecovery).toFixed(2)}%${e.best ? ' (best)' : ''}, ${e.seconds.toFixed(1)} s`);
        },
      });
    const { writeFileSync } = await import('node:fs');
    writeFileSync(join(outDir, 'test-eval.json'), JSON.stringify(res.test, null, 2) + '\n');
    writeFileSync(join(outDir, 'test-eval.md'), formatCodeEvaluation(res.test) + '\n');
    await writeOverallAccuracyPlot(res.test, join(outDir, 'overall-accuracy'));
    if (values.json) console.log(JSON.stringify({ config: cfg, base: values.base, ...res }));
    else {
      console.log(`best epoch ${res.bestEpoch}: validation A_d ${(100 * res.bestValDegradedAccuracy).toFixed(2)}%; test A_a ${(100 * res.test.baseAccuracy).toFixed(2)}%, ` +
        `A_d ${(100 * res.test.degraded.accuracy).toFixed(2)}%, recovery ${(100 * res.test.degraded.recovery).toFixed(2)}%; ${res.seconds.toFixed(0)} s; checkpoint ${res.bestCheckpoint}`);
    }
  } finally {
    disposeDataset(ds);
    base.model.dispose();
  }
}

export const evalUsage = `coded eval CODE_CKPT [--base CKPT] [--data-dir DIR] [--device cpu|cuda] [--seed N] [--plot PREFIX] [--json]
coded eval base CKPT ...   (base-model accuracy)

Evaluates a code checkpoint (e.g. from \`coded train parity\`) on its base model's test set,
grouped into coding groups of k: A_a, degraded-mode accuracy A_d over every erasure pattern,
recovery accuracy, top-5, per pattern and by number of missing outputs, A_o(f), recovery by
base correctness, ranks of wrong reconstructions. Prints a markdown report (or JSON);
--plot PREFIX also writes PREFIX.svg and PREFIX.png of A_o versus f. The base checkpoint is
the one recorded in the code checkpoint unless --base is given; it must be the same file
(SHA-256) the parity models were trained for.`;

export async function evalCodeCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    base: { type: 'string' }, 'data-dir': { type: 'string' }, device: { type: 'string' }, seed: { type: 'string' },
    plot: { type: 'string' }, json: { type: 'boolean' },
  }, evalUsage);
  if (values.help) return void console.log(evalUsage);
  if (positionals.length !== 1) throw new UsageError(`expected one code checkpoint path\n\n${evalUsage}`);
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  const { code, workers, metadata, base } = loadParityWorkers(positionals[0], values.base);
  try {
    const dataset = base.meta.dataset;
    if (!isDatasetName(dataset)) throw new Error(`unknown dataset '${dataset}' in the base checkpoint`);
    workers.base.to(device);
    for (const m of workers.parity ?? []) m.to(device);
    const ds = await loadDataset(dataset, { dataDir: values['data-dir'], validation: 0, log: (s) => process.stderr.write(s + '\n') });
    try {
      const e = evaluateCode({ code, workers, test: ds.test, classes: base.meta.classes, device, seed: intOption(values.seed, 'seed', 1, { min: 0 }) });
      if (values.plot) await writeOverallAccuracyPlot(e, values.plot);
      if (values.json) console.log(JSON.stringify({ checkpoint: positionals[0], base: metadata.base, ...e }));
      else console.log(`${positionals[0]}: parity models (${metadata.parity.model}) for base ${metadata.base.path} (${metadata.base.model} on ${metadata.base.dataset})\n\n${formatCodeEvaluation(e)}`);
    } finally {
      disposeDataset(ds);
    }
  } finally {
    workers.base.dispose();
    for (const m of workers.parity ?? []) m.dispose();
  }
}


/** `coded eval ...`: `eval base CKPT` to the base-model command, `eval CODE_CKPT` (or `eval code CODE_CKPT`) here. */
export async function evalRouter(argv: string[]): Promise<void> {
  const [what] = argv;
  if (what === undefined || what === '--help' || what === '-h') {
    console.log(`${evalUsage}\n\n${(await import('./evaluate.js')).usage}`);
    return;
  }
  if (what === 'base') return (await import('./evaluate.js')).evaluate(argv);
  const rest = what === 'code' ? argv.slice(1) : argv;
  // learned codes (coded train learned) have no parity models: their own loader
  const learned = await import('./eval-learned.js');
  if (rest.some((a) => learned.isLearnedCheckpoint(a))) return learned.evalLearnedCommand(rest);
  return evalCodeCommand(rest);
}
