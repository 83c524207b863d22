// `coded train learned`: train a learned code (encoder + decoder, optionally jointly with parity
// models run on the parity queries) through a frozen base model, or run a sweep of such
// trainings from a JSON config: parses the options and calls runLearned / runLearnedSweep
// (src/train/learned-run.ts).
import { basename, join } from 'node:path';
import { parse, intOption, numberOption, choiceOption, UsageError } from '../args.js';
import { epochBars } from '../progress.js';
import { isForwardOnlyBase, noGradientsMessage } from '../../serve/forward-only-base.js';
import { pct } from '../../train/sweep.js';
import { ENCODER_INITS, encoderInitNamed } from '../../models/conv-encoder.js';
import { cudaAvailable, setDeterministic } from '../../engine/runtime.js';
import { decoderNames, encoderNames } from '../../codes/learned.js';
import '../../codes/index.js';
import {
  LOSSES,
  isParityModelChoice,
  parityModelChoices,
  type LearnedLoss,
  type LearnedTrainingConfig,
} from '../../train/learned-training.js';
import { runLearned, runLearnedSweep } from '../../train/learned-run.js';

export const usage = `coded train learned --base CKPT --k K [options]
coded train learned --config SWEEP.json [--data-dir DIR] [--device D]

Trains a learned code (Kosaian et al., "Learning a Code"): an encoder makes r parity queries from k
queries, the frozen base model F runs on all k + r, and a decoder reconstructs the missing
outputs. Every erasure pattern of 1..r missing outputs (except all-parity ones) is trained in
one vectorised pass; the loss is taken on the erased slots only. The checkpoint with the best
validation recovery accuracy is kept and evaluated on the test set (\`coded eval\` reads it).

With --parity-model, the parity queries are run by r parity models F_P[0..r-1] (one per parity
slot, as in ParM) instead of F, trained jointly with the encoder and decoder (Kosaian et al.,
"Learning-Based Coded Computation", section VI-C); F stays frozen on the k originals. The checkpoint then holds the parity models too, so
\`coded eval\` uses them and \`coded serve instance --model CKPT --parity-index J\` serves F_P[J].

Options:
  --base CKPT        base-model checkpoint from \`coded train base\` (names dataset and model)
  --k K              queries per coding group
  --r R              parity queries (default 1)
  --encoder E        ${encoderNames().join(' | ')} (default mlp)
  --decoder D        ${decoderNames().join(' | ')} (default mlp)
  --encoder-init I   ${ENCODER_INITS.join(' | ')}: ConvEncoder initialisation (default reference: the
                     reference code's, Xavier-uniform with the ReLU gain sqrt 2, biases zero, as every
                     encoder/decoder linear layer gets N(0, 0.01); xavier: gain 1, our earlier default
                     (also accepted as 'paper'); kaiming: He-normal, fan in). Recorded in the
                     checkpoint's code config (encoderOptions.init, absent for reference), so --resume and
                     eval rebuild the same encoder. docs/FIDELITY.md compares them.
  --loss L           ${LOSSES.join(' | ')} (default kl-base)
  --epochs N         (default 20)
  --batch-size B     coding groups per batch (default 64 for k = 2, 32 otherwise)
  --lr X             Adam learning rate (default 1e-3)
  --schedule S       constant | cosine: learning rate over the run (default constant, as in the paper)
  --weight-decay X   L2 penalty (default 1e-5)
  --optimizers O     joint | separate: one Adam for everything trained, or one per part (default joint)
  --train P          both | encoder | decoder: which parts are trained (default both; parity
                     models, if any, are always trained)
  --parity-model M   none (default: F runs the parity queries) | base (F's architecture,
                     initialised with a copy of F's weights; F itself stays frozen) | an
                     architecture, freshly initialised:
                     ${parityModelChoices().slice(2).join(' | ')}
                     (with --optimizers separate the parity models get their own Adam)
  --device D         cpu | cuda (default cpu)
  --seed N           (default 1)
  --deterministic    deterministic libtorch algorithms (and cuDNN): reruns of a seed give identical
                     results on one machine (on the GPU: maybe slower; an op without a deterministic
                     version fails, naming it)
  --out DIR          (default runs/learned/<base>-k<K>-r<R>-<encoder>-<loss>[-fp-<M>])
  --resume           continue from DIR/last.safetensors
  --data-dir DIR     where datasets live
  --time-limit S     stop after the epoch during which S seconds have passed, then evaluate as usual
  --json             one JSON object with the result on stdout
  --config FILE      a sweep (see src/codes/README.md): the grid's combinations are trained in turn and
                     FILE's "out" directory gets results.md and results.json

Writes DIR/best.safetensors (a code checkpoint: config, encoder/decoder weights, parity models'
weights if any, the base checkpoint's path and sha256, validation and test metrics),
DIR/last.safetensors (resumable, optimizer state included) and DIR/log.jsonl (one line per epoch).`;

export async function trainLearnedCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      base: { type: 'string' },
      k: { type: 'string' },
      r: { type: 'string' },
      encoder: { type: 'string' },
      decoder: { type: 'string' },
      loss: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      'weight-decay': { type: 'string' },
      schedule: { type: 'string' },
      optimizers: { type: 'string' },
      train: { type: 'string' },
      device: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      resume: { type: 'boolean' },
      'data-dir': { type: 'string' },
      json: { type: 'boolean' },
      config: { type: 'string' },
      'time-limit': { type: 'string' },
      'encoder-init': { type: 'string' },
      'parity-model': { type: 'string' },
      deterministic: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  if (values.deterministic) setDeterministic(true);
  if (values.device === 'cuda' && !cudaAvailable()) throw new UsageError('--device cuda: this build of the addon has no CUDA');
  if (values.config !== undefined) {
    const rows = await runLearnedSweep(values.config, values['data-dir'], values.device);
    if (values.json) console.log(JSON.stringify(rows));
    else console.log(`sweep done: ${join(rows.out, 'results.md')}`);
    return;
  }
  if (values.base === undefined)
    throw new UsageError(
      `--base is required (a checkpoint from \`coded train base\`, e.g. models/fashion-mnist-base-mlp.safetensors)\n\n${usage}`,
    );
  if (isForwardOnlyBase(values.base))
    throw new UsageError(noGradientsMessage(values.base, 'learned codes, which train their encoder and decoder through F, cannot use it'));
  if (values.k === undefined) throw new UsageError('--k is required');
  const k = intOption(values.k, 'k', 2);
  const r = intOption(values.r, 'r', 1);
  const encoder = choiceOption(values.encoder, 'encoder', encoderNames(), 'mlp');
  const decoder = choiceOption(values.decoder, 'decoder', decoderNames(), 'mlp');
  const loss = choiceOption(values.loss, 'loss', LOSSES, 'kl-base') as LearnedLoss;
  const parityModel = values['parity-model'] ?? 'none';
  if (!isParityModelChoice(parityModel))
    throw new UsageError(`--parity-model must be one of ${parityModelChoices().join(', ')}, got '${parityModel}'`);
  const encoderInit = choiceOption(
    values['encoder-init'] === undefined ? undefined : (encoderInitNamed(values['encoder-init']) ?? values['encoder-init']),
    'encoder-init',
    ENCODER_INITS,
    'reference',
  );
  if (values['encoder-init'] !== undefined && encoder !== 'conv')
    throw new UsageError(`--encoder-init applies to --encoder conv, not '${encoder}'`);
  const cfg: Omit<LearnedTrainingConfig, 'dataset'> = {
    base: values.base,
    k,
    r,
    encoder,
    decoder,
    loss,
    epochs: intOption(values.epochs, 'epochs', 20),
    batchSize: intOption(values['batch-size'], 'batch-size', k === 2 ? 64 : 32),
    lr: numberOption(values.lr, 'lr', 1e-3),
    schedule: choiceOption(values.schedule, 'schedule', ['constant', 'cosine'] as const, 'constant'),
    weightDecay: numberOption(values['weight-decay'], 'weight-decay', 1e-5),
    optimizers: choiceOption(values.optimizers, 'optimizers', ['joint', 'separate'] as const, 'joint'),
    trainParts: choiceOption(values.train, 'train', ['both', 'encoder', 'decoder'] as const, 'both'),
    seed: intOption(values.seed, 'seed', 1, { min: 0 }),
    device: choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu'),
  };
  if (parityModel !== 'none') cfg.parityModel = parityModel;
  // the default (reference) init leaves the config without encoderOptions, as before, so old checkpoints resume
  if (encoderInit !== 'reference') cfg.encoderOptions = { init: encoderInit };
  if (values['time-limit'] !== undefined) {
    cfg.timeLimit = numberOption(values['time-limit'], 'time-limit', 0);
    if (!(cfg.timeLimit > 0)) throw new UsageError(`--time-limit must be a positive number of seconds, got ${values['time-limit']}`);
  }
  if (!(cfg.lr > 0)) throw new UsageError(`--lr must be positive, got ${cfg.lr}`);
  if (!(cfg.weightDecay >= 0)) throw new UsageError(`--weight-decay must be >= 0, got ${cfg.weightDecay}`);
  const outDir =
    values.out ??
    join(
      'runs',
      'learned',
      `${basename(values.base).replace(/\.safetensors$/, '')}-k${k}-r${r}-${encoder}-${loss}${parityModel !== 'none' ? `-fp-${parityModel}` : ''}`,
    );
  const r0 = await runLearned({
    cfg,
    outDir,
    dataDir: values['data-dir'],
    resume: values.resume ?? false,
    command: ['coded', 'train', 'learned', ...argv].join(' '),
    quiet: false,
    bars: epochBars(cfg.epochs),
  });
  const t = r0.test;
  if (values.json)
    console.log(
      JSON.stringify({
        config: cfg,
        dataset: r0.dataset,
        model: r0.model,
        bestEpoch: r0.bestEpoch,
        stoppedEarly: r0.stoppedEarly,
        bestValRecovery: r0.bestValRecovery,
        seconds: r0.seconds,
        checkpoint: r0.bestCheckpoint,
        epochs: r0.epochs,
        test: t,
      }),
    );
  else {
    console.log(
      `${r0.stoppedEarly !== null ? `time limit: stopped after epoch ${r0.stoppedEarly}; ` : ''}best epoch ${r0.bestEpoch}: validation recovery ${pct(r0.bestValRecovery)}; test recovery ${pct(t.degraded.recovery)}, A_d ${pct(t.degraded.accuracy)}, ` +
        `A_a ${pct(t.baseAccuracy)} (${t.degraded.count} reconstructions over ${t.patterns.length} patterns); ${r0.seconds.toFixed(0)} s; checkpoint ${r0.bestCheckpoint}`,
    );
  }
}
