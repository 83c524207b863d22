// `coded train polynomial`: end-to-end training of a Lagrange (AICC) code, or of the
// centralized baselines it is compared with: parses the options and calls trainPolynomial
// (src/train/polynomial-training.ts).
import { join } from 'node:path';
import { parse, intOption, numberOption, choiceOption, UsageError } from '../args.js';
import { epochBars } from '../progress.js';
import { DATASET_NAMES, DEFAULT_DATASET, isDatasetName, loadDataset, disposeDataset } from '../../data/registry.js';
import { manualSeed, cudaAvailable, setDeterministic } from '../../engine/runtime.js';
import type { PolyArch, PolyWorkerDesign } from '../../codes/lagrange.js';
import {
  polynomialRunTag,
  trainPolynomial,
  type PolynomialTrainingConfig,
  type PolynomialTrainingResult,
} from '../../train/polynomial-training.js';

export const usage = `coded train polynomial --worker HB|HS --encoder mlp|cnn --computation mlp|cnn [options]
coded train polynomial --centralized mlp|cnn [options]

Trains a Lagrange code with learned coefficient networks (AICC): encoder degree G, worker
H_B (activation-free network on the encoded image; R = G + 1) or H_S (coefficient maps sent
along; R = G P + 1), N workers at alpha_n = n / (N + 1), decoded at beta_k = k / K.
Loss: cross-entropy of H(E(beta_k)) against the labels; Adam; the best-validation code is kept.
--centralized trains the non-distributable baselines instead (Base-MLP with ReLU, or the
dilated convolution stack then Base-MLP, with ReLU).

Options:
  --dataset D        ${DATASET_NAMES.join(' | ')} (default ${DEFAULT_DATASET})
  --k K              queries per coding group (default 2)
  --n N              workers (default max(K, R) + 1)
  --degree G         encoder degree (default 1)
  --power P          H_S's power (default 1)
  --epochs E         (default 20)
  --batch-size B     coding groups per batch (default 64 for K = 2, 32 otherwise)
  --lr X             Adam learning rate (default 1e-3)
  --base CKPT        base model whose accuracy is reported as A_a by the test evaluation
                     (default models/<dataset>-base-mlp.safetensors)
  --device D         cpu | cuda (default cpu)
  --seed N           (default 1)
  --deterministic    deterministic libtorch algorithms (and cuDNN): reruns of a seed give identical
                     results on one machine (on the GPU: maybe slower; an op without a deterministic
                     version fails, naming it)
  --out DIR          (default runs/polynomial/<dataset>-<config>)
  --resume           continue from DIR/last.safetensors
  --eval-only        no training: the test evaluation of DIR/best.safetensors (e.g. of a run cut short)
  --data-dir DIR     where datasets live
  --json             one JSON object with the result on stdout

Writes DIR/best.safetensors (a code checkpoint for \`coded eval\`), DIR/last.safetensors and DIR/log.jsonl.`;

export async function trainPolynomialCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      dataset: { type: 'string' },
      k: { type: 'string' },
      n: { type: 'string' },
      degree: { type: 'string' },
      power: { type: 'string' },
      worker: { type: 'string' },
      encoder: { type: 'string' },
      computation: { type: 'string' },
      centralized: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      base: { type: 'string' },
      device: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      resume: { type: 'boolean' },
      'eval-only': { type: 'boolean' },
      'data-dir': { type: 'string' },
      json: { type: 'boolean' },
      deterministic: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  if (values.deterministic) setDeterministic(true);
  const dataset = values.dataset ?? DEFAULT_DATASET;
  if (!isDatasetName(dataset)) throw new UsageError(`--dataset must be one of ${DATASET_NAMES.join(', ')}, got '${dataset}'`);
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  if (device === 'cuda' && !cudaAvailable()) throw new UsageError('--device cuda: this build of the addon has no CUDA');
  const centralized =
    values.centralized === undefined ? null : choiceOption(values.centralized, 'centralized', ['mlp', 'cnn'] as const, 'mlp');
  const k = intOption(values.k, 'k', 2, { min: 1 });
  const degree = intOption(values.degree, 'degree', 1, { min: 1 });
  const power = intOption(values.power, 'power', 1, { min: 1 });
  let worker: PolyWorkerDesign = 'HB';
  let encoder: PolyArch = 'cnn';
  let computation: PolyArch = 'cnn';
  if (centralized === null) {
    if (values.worker === undefined || values.encoder === undefined || values.computation === undefined) {
      throw new UsageError(`--worker, --encoder and --computation are required (or --centralized)\n\n${usage}`);
    }
    worker = choiceOption(values.worker, 'worker', ['HB', 'HS'] as const, 'HB');
    encoder = choiceOption(values.encoder, 'encoder', ['mlp', 'cnn'] as const, 'cnn');
    computation = choiceOption(values.computation, 'computation', ['mlp', 'cnn'] as const, 'cnn');
  }
  const R = degree * (worker === 'HS' ? power : 1) + 1;
  const n = intOption(values.n, 'n', Math.max(k, R) + 1, { min: 1 });
  const epochs = intOption(values.epochs, 'epochs', 20, { min: 1 });
  const batchSize = intOption(values['batch-size'], 'batch-size', k === 2 ? 64 : 32, { min: 1 });
  const lr = numberOption(values.lr, 'lr', 1e-3);
  const seed = intOption(values.seed, 'seed', 1, { min: 0 });
  const cfg: PolynomialTrainingConfig = {
    dataset,
    k,
    n,
    degree,
    power,
    worker,
    encoder,
    computation,
    centralized,
    epochs,
    batchSize,
    lr,
    seed,
  };
  const outDir = values.out ?? join('runs', 'polynomial', `${dataset}-${polynomialRunTag(cfg)}`);
  const say = (s: string) => process.stderr.write(s + '\n');
  const command = ['coded', 'train', 'polynomial', ...argv].join(' ');

  manualSeed(seed);
  const ds = await loadDataset(dataset, { dataDir: values['data-dir'], seed, log: say, device });
  let result: PolynomialTrainingResult;
  try {
    if (ds.validation === null) throw new Error('internal: no validation split');
    const data = {
      train: ds.train,
      validation: ds.validation,
      test: ds.test,
      classes: ds.info.classes,
      normalization: ds.info.normalization,
      input: [ds.info.channels, ds.info.height, ds.info.width],
    };
    const bars = epochBars(epochs);
    result = trainPolynomial(cfg, data, outDir, {
      device,
      resume: values.resume ?? false,
      evalOnly: values['eval-only'] ?? false,
      basePath: values.base,
      command,
      log: say,
      onBatch: bars.onBatch,
      onEpoch: () => bars.finish(),
    });
  } finally {
    disposeDataset(ds);
  }
  const { epochs: _e, bestCheckpoint, ...summary } = result;
  const out: Record<string, unknown> = { ...summary, command };
  if (values.json) console.log(JSON.stringify(out));
  else
    console.log(
      `${result.code}: best epoch ${result.bestEpoch}, validation ${(100 * result.bestValAccuracy).toFixed(2)}%, test ${(100 * result.testAccuracy).toFixed(2)}%; ${result.seconds.toFixed(0)} s; ${bestCheckpoint}`,
    );
}
