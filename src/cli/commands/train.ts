// `coded train base`: train a base model F on a dataset, keeping the best-validation
// checkpoint, a JSONL log and resumable state.
import { join } from 'node:path';
import { parse, intOption, numberOption, choiceOption, UsageError } from '../args.js';
import { Progress } from '../progress.js';
import { DATASET_NAMES, DEFAULT_DATASET, datasetInfo, isDatasetName, loadDataset, disposeDataset } from '../../data/registry.js';
import { Rng, deriveSeed } from '../../data/rng.js';
import { randomCropFlip } from '../../data/augment.js';
import { buildModel, isModelName, modelNames } from '../../models/registry.js';
import { manualSeed, cudaAvailable, setDeterministic } from '../../engine/runtime.js';
import { trainBase, type BaseTrainingConfig } from '../../train/base-training.js';
import { refuseBaseOverwrite } from '../../train/run-files.js';
import type { Tensor } from '../../engine/tensor.js';

export const overview = `coded train <target> [options]   (coded train <target> --help for its options)

Targets:
  base        a base model F on a dataset (cross-entropy, best-validation checkpoint)
  parity      the parity models of a ParM code (addition, linear, concat) for a trained base model
  learned     a learned encoder/decoder through the frozen base model
  polynomial  a Lagrange (AICC) code with learned coefficient networks, or a centralized baseline`;

export const usage = `coded train base --model M [options]

Trains a base model F (raw logits out) with cross-entropy, keeps the checkpoint with the
best validation accuracy (5000 samples held out of train, seeded), reports its test accuracy.

Options:
  --dataset D        ${DATASET_NAMES.join(' | ')} (default ${DEFAULT_DATASET})
  --model M          ${modelNames().join(' | ')}
  --epochs N         (default: per model, see below)
  --batch-size B     (default 64 for Adam-trained models, 128 for SGD-trained)
  --optimizer O      adam | sgd (default: adam for logistic-regression, base-mlp, lenet5; sgd otherwise)
  --lr X             (default 1e-3 Adam, 0.05 SGD)
  --weight-decay X   L2 penalty (default 1e-5 Adam, 5e-4 SGD)
  --momentum X       SGD momentum, Nesterov (default 0.9)
  --schedule S       constant | cosine (default cosine: the learning rate decays to 0 over the run)
  --augment A        none | crop | crop-flip: random 4-pixel-padded crops (and horizontal flips)
                     of training batches (default: crop-flip for CIFAR, none otherwise)
  --device D         cpu | cuda (default cpu)
  --seed N           (default 1)
  --deterministic    deterministic libtorch algorithms (and cuDNN): reruns of a seed give identical
                     results on one machine (on the GPU: maybe slower; an op without a deterministic
                     version fails, naming it)
  --out DIR          output directory (default runs/base/<dataset>-<model>)
  --resume           continue from DIR/last.safetensors
  --force            overwrite DIR/best.safetensors when DIR already holds a trained base model
                     (refused otherwise: codes trained for it identify it by its SHA-256)
  --data-dir DIR     where datasets live (default $CODED_DATA or ~/.cache/coded)
  --json             one JSON object with the result on stdout (progress stays on stderr)

Writes DIR/best.safetensors (weights + metadata: dataset, normalisation, model, accuracies,
command), DIR/last.safetensors (resumable state) and DIR/log.jsonl (one line per epoch).`;

const ADAM_MODELS = new Set(['logistic-regression', 'base-mlp', 'lenet5']);
const DEFAULT_EPOCHS: Record<string, number> = {
  'logistic-regression': 20,
  'base-mlp': 40,
  lenet5: 30,
  vgg11: 30,
  resnet18: 30,
  resnet152: 200,
};

export async function train(argv: string[]): Promise<void> {
  const [what, ...rest] = argv;
  if (what === '--help' || what === '-h') return void console.log(overview);
  if (what === undefined) throw new UsageError(`expected a training target\n\n${overview}`);
  if (what === 'parity') return (await import('./parity.js')).trainParityCommand(rest);
  if (what === 'learned') return (await import('./train-learned.js')).trainLearnedCommand(rest);
  if (what === 'polynomial') return (await import('./train-polynomial.js')).trainPolynomialCommand(rest);
  if (what !== 'base') throw new UsageError(`unknown training target '${what}'\n\n${overview}`);
  const { values } = parse(
    rest,
    {
      dataset: { type: 'string' },
      model: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      optimizer: { type: 'string' },
      lr: { type: 'string' },
      'weight-decay': { type: 'string' },
      momentum: { type: 'string' },
      schedule: { type: 'string' },
      augment: { type: 'string' },
      device: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      resume: { type: 'boolean' },
      force: { type: 'boolean' },
      deterministic: { type: 'boolean' },
      'data-dir': { type: 'string' },
      json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  if (values.deterministic) setDeterministic(true);
  const datasetName = values.dataset ?? DEFAULT_DATASET;
  if (!isDatasetName(datasetName)) throw new UsageError(`--dataset must be one of ${DATASET_NAMES.join(', ')}, got '${datasetName}'`);
  if (values.model === undefined) throw new UsageError(`--model is required (${modelNames().join(', ')})`);
  const model = values.model;
  if (!isModelName(model)) throw new UsageError(`--model must be one of ${modelNames().join(', ')}, got '${model}'`);
  // the mlp:... family trains with Base-MLP's defaults
  const defaultsOf = model.startsWith('mlp:') ? 'base-mlp' : model;
  const adam = ADAM_MODELS.has(defaultsOf);
  const optimizer = choiceOption(values.optimizer, 'optimizer', ['adam', 'sgd'] as const, adam ? 'adam' : 'sgd');
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  if (device === 'cuda' && !cudaAvailable())
    throw new UsageError('--device cuda: this build of the addon has no CUDA (build against a CUDA libtorch with LIBTORCH=...)');
  const cfg: BaseTrainingConfig = {
    dataset: datasetName,
    model,
    epochs: intOption(values.epochs, 'epochs', DEFAULT_EPOCHS[defaultsOf] ?? 20),
    batchSize: intOption(values['batch-size'], 'batch-size', optimizer === 'adam' ? 64 : 128),
    optimizer,
    lr: numberOption(values.lr, 'lr', optimizer === 'adam' ? 1e-3 : 0.05),
    weightDecay: numberOption(values['weight-decay'], 'weight-decay', optimizer === 'adam' ? 1e-5 : 5e-4),
    momentum: numberOption(values.momentum, 'momentum', optimizer === 'sgd' ? 0.9 : 0),
    schedule: choiceOption(values.schedule, 'schedule', ['constant', 'cosine'] as const, 'cosine'),
    seed: intOption(values.seed, 'seed', 1, { min: 0 }),
    device,
  };
  const augment = choiceOption(values.augment, 'augment', ['none', 'crop', 'crop-flip'] as const, datasetInfo(datasetName).augmentation);
  const outDir = values.out ?? join('runs', 'base', `${datasetName}-${model}`);
  refuseBaseOverwrite(outDir, { resume: values.resume ?? false, force: values.force ?? false });
  const json = values.json ?? false;
  const say = (s: string) => process.stderr.write(s + '\n');

  manualSeed(cfg.seed);
  const ds = await loadDataset(datasetName, { dataDir: values['data-dir'], seed: cfg.seed, log: say });
  if (ds.validation === null) throw new Error('internal: no validation split');
  const spec = { channels: ds.info.channels, height: ds.info.height, width: ds.info.width, classes: ds.info.classes.length };
  manualSeed(cfg.seed);
  const net = buildModel(model, spec);
  say(
    `training ${model} (${net.numParameters().toLocaleString('en')} parameters) on ${datasetName}: ${ds.train.size} train / ${ds.validation.size} validation / ${ds.test.size} test, ` +
      `${cfg.epochs} epochs, ${cfg.optimizer} lr ${cfg.lr} (${cfg.schedule}), batch ${cfg.batchSize}, ${cfg.device}; output ${outDir}`,
  );
  let bar: Progress | null = null;
  let smooth = NaN;
  const augmentFor =
    augment === 'none'
      ? undefined
      : (epoch: number) => {
          const rng = new Rng(deriveSeed(cfg.seed, 'augment', epoch));
          return (x: Tensor) => randomCropFlip(x, rng, { padding: 4, flip: augment === 'crop-flip', fill: ds.paddingFill });
        };
  try {
    const r = trainBase(
      cfg,
      net,
      {
        train: ds.train,
        validation: ds.validation,
        test: ds.test,
        classes: ds.info.classes,
        normalization: ds.info.normalization,
        input: { channels: spec.channels, height: spec.height, width: spec.width },
        augmentFor,
      },
      outDir,
      { resume: values.resume ?? false },
      {
        command: ['coded', 'train', ...argv].join(' '),
        augment,
        onBatch: (epoch, b, batches, loss) => {
          if (b === 0) {
            bar = new Progress(`epoch ${epoch}/${cfg.epochs}`, batches, { unit: 'batch' });
            smooth = NaN;
          }
          smooth = Number.isNaN(smooth) ? loss : 0.98 * smooth + 0.02 * loss;
          bar!.tick(1, { loss: smooth });
        },
        onEpoch: (e) => {
          (bar as Progress | null)?.finish();
          say(
            `epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}, train acc ${(100 * e.trainAccuracy).toFixed(2)}%, ` +
              `val acc ${(100 * e.valAccuracy).toFixed(2)}%${e.best ? ' (best)' : ''}, ${e.seconds.toFixed(1)} s`,
          );
        },
      },
    );
    if (json) console.log(JSON.stringify({ dataset: datasetName, model, config: cfg, ...r }));
    else {
      console.log(
        `best epoch ${r.bestEpoch}: validation ${(100 * r.bestValAccuracy).toFixed(2)}%, test ${(100 * r.testAccuracy).toFixed(2)}%; ` +
          `${r.seconds.toFixed(0)} s; checkpoint ${r.bestCheckpoint}`,
      );
    }
  } finally {
    disposeDataset(ds);
    net.dispose();
  }
}
