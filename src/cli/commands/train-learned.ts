// `coded train learned`: train a learned code (encoder + decoder, optionally jointly with parity
// models run on the parity queries) through a frozen base model, or run a sweep of such
// trainings from a JSON config and write one results table.
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { parse, intOption, numberOption, choiceOption, UsageError } from '../args.js';
import { epochBars } from '../progress.js';
import { checkpointStem, commonSweepFields, parseSweepConfig, pct, writeSweepResults, type SweepColumn, type TypeBuilder } from '../sweep.js';
import { isDatasetName, loadDataset, disposeDataset } from '../../data/registry.js';
import { loadBaseCheckpoint } from '../../models/base-checkpoint.js';
import { isForwardOnlyBase, noGradientsMessage } from '../../serve/forward-only-base.js';
import { ENCODER_INITS, LEGACY_ENCODER_INITS, encoderInitNamed, type EncoderInit } from '../../models/conv-encoder.js';
import type { Module } from '../../nn/module.js';
import { manualSeed, cudaAvailable, setDeterministic } from '../../engine/runtime.js';
import { LearnedCode, decoderNames, encoderNames } from '../../codes/learned.js';
import '../../codes/index.js';
import {
  LOSSES, baseIdentity, learnedCodeConfig, isParityModelChoice, parityModelChoices, resolveParityModel, trainLearned,
  type LearnedLoss, type LearnedTrainingConfig, type LearnedTrainingResult,
} from '../../train/learned-training.js';

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

// the sweep schema (typebox is loaded only for sweeps, so single runs need no node_modules at run time)
function sweepSchema(Type: TypeBuilder) {
  return Type.Object({
  ...commonSweepFields(Type),
  k: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 }),
  r: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 })),
  encoder: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
  decoder: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
  loss: Type.Optional(Type.Array(Type.Union(LOSSES.map((l) => Type.Literal(l))), { minItems: 1 })),
  train: Type.Optional(Type.Array(Type.Union([Type.Literal('both'), Type.Literal('encoder'), Type.Literal('decoder')]), { minItems: 1 })),
  parityModel: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
  optimizers: Type.Optional(Type.Union([Type.Literal('joint'), Type.Literal('separate')])),
  lr: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  schedule: Type.Optional(Type.Union([Type.Literal('constant'), Type.Literal('cosine')])),
  weightDecay: Type.Optional(Type.Number({ minimum: 0 })),
  timeLimit: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
  encoderInit: Type.Optional(Type.Union([...ENCODER_INITS, ...Object.keys(LEGACY_ENCODER_INITS)].map((i) => Type.Literal(i)))),
  }, { additionalProperties: false });
}

export interface Sweep {
  out: string;
  dataDir?: string;
  device?: 'cpu' | 'cuda';
  seed?: number;
  epochs: number;
  timeLimit?: number;
  base: string[];
  k: number[];
  r?: number[];
  encoder?: string[];
  decoder?: string[];
  loss?: LearnedLoss[];
  train?: ('both' | 'encoder' | 'decoder')[];
  /** --parity-model values to compare: none, base or an architecture (default [none]) */
  parityModel?: string[];
  optimizers?: 'joint' | 'separate';
  lr?: number;
  schedule?: 'constant' | 'cosine';
  weightDecay?: number;
  /** ConvEncoder initialisation for the conv runs (default reference; legacy 'paper' = xavier) */
  encoderInit?: EncoderInit | 'paper';
}

/** Parse and validate a sweep config, with every schema error listed. */
export async function parseSweep(text: string, path = 'sweep config'): Promise<Sweep> {
  const s = await parseSweepConfig<Sweep>(text, path, sweepSchema);
  for (const e of s.encoder ?? []) if (!encoderNames().includes(e)) throw new Error(`${path}: unknown encoder '${e}' (${encoderNames().join(', ')})`);
  for (const d of s.decoder ?? []) if (!decoderNames().includes(d)) throw new Error(`${path}: unknown decoder '${d}' (${decoderNames().join(', ')})`);
  for (const p of s.parityModel ?? []) if (!isParityModelChoice(p)) throw new Error(`${path}: unknown parityModel '${p}' (${parityModelChoices().join(', ')})`);
  return s;
}

interface BaseMeta {
  kind?: string;
  dataset?: string;
  model?: string;
  input?: { channels: number; height: number; width: number };
  classes?: string[];
  testAccuracy?: number;
  config?: { seed?: number };
}

/** Rebuild a base model from a `coded train base` checkpoint (the shared loader). */
export function loadBase(path: string): { model: Module; meta: BaseMeta & { dataset: string; model: string; input: { channels: number; height: number; width: number }; classes: string[] } } {
  if (isForwardOnlyBase(path)) throw new UsageError(noGradientsMessage(path, 'learned codes, which train their encoder and decoder through F, cannot use it'));
  const { model, meta } = loadBaseCheckpoint(path);
  return { model, meta: meta as never };
}

export interface RunOptions {
  cfg: Omit<LearnedTrainingConfig, 'dataset'>;
  outDir: string;
  dataDir?: string;
  resume: boolean;
  command: string;
  quiet: boolean;
}

/** Train one learned code; returns the result and a one-line summary. */
export async function runLearned(o: RunOptions): Promise<LearnedTrainingResult & { dataset: string; model: string }> {
  const say = (s: string) => process.stderr.write(s + '\n');
  const { model: base, meta } = loadBase(o.cfg.base);
  if (!isDatasetName(meta.dataset)) throw new Error(`${o.cfg.base}: unknown dataset '${meta.dataset}' in metadata`);
  const cfg: LearnedTrainingConfig = { ...o.cfg, dataset: meta.dataset };
  if (cfg.parityModel === 'none') delete cfg.parityModel;
  let parityArch: string | undefined;
  try {
    parityArch = resolveParityModel(cfg.parityModel, meta.model, meta.input);
  } catch (e) {
    base.dispose();
    throw new UsageError(`--parity-model: ${(e as Error).message}`);
  }
  const id = baseIdentity(cfg.base, meta);
  manualSeed(cfg.seed);
  // the same validation hold-out as base training (seed 1 by default), so F never saw it
  const baseSeed = meta.config?.seed ?? 1;
  const ds = await loadDataset(meta.dataset, { dataDir: o.dataDir, seed: baseSeed, log: say });
  let code: LearnedCode | null = null;
  try {
    if (ds.validation === null) throw new Error('internal: no validation split');
    const data = { train: ds.train, validation: ds.validation, test: ds.test, classes: meta.classes, input: meta.input };
    manualSeed(cfg.seed);
    code = new LearnedCode(learnedCodeConfig(cfg, data, meta.model));
    const params = [...code.modules().values()].reduce((a, m) => a + m.numParameters(), 0);
    const pm = parityArch === undefined ? '' : ` with ${cfg.r} ${parityArch} parity model(s) (${cfg.parityModel === 'base' ? "initialised from F's weights" : 'fresh'})`;
    say(`training ${code.name} (${params.toLocaleString('en')} encoder/decoder parameters)${pm} for ${meta.model} on ${meta.dataset} (${basename(cfg.base)}), ` +
      `loss ${cfg.loss}, ${cfg.epochs} epochs, batch ${cfg.batchSize} groups, Adam lr ${cfg.lr}${cfg.schedule === 'cosine' ? ' (cosine)' : ''} L2 ${cfg.weightDecay}, ${cfg.device}; output ${o.outDir}`);
    const bars = epochBars(cfg.epochs, { enabled: !o.quiet });
    const r = trainLearned(cfg, code, base, id, data, o.outDir, { resume: o.resume }, {
      command: o.command,
      onBatch: bars.onBatch,
      onEpoch: (e) => {
        bars.finish();
        say(`epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}, val recovery ${(100 * e.valRecovery).toFixed(2)}%, val A_d ${(100 * e.valAccuracy).toFixed(2)}%` +
          `${e.best ? ' (best)' : ''}, ${e.seconds.toFixed(1)} s`);
      },
    });
    return { ...r, dataset: meta.dataset, model: meta.model };
  } finally {
    disposeDataset(ds);
    base.dispose();
    if (code) for (const [, m] of code.modules()) m.dispose();
  }
}

/** One run of a learned sweep, as results.json records it. */
export interface LearnedSweepRow {
  run: string; dataset: string; model: string; k: number; r: number; encoder: string; decoder: string; loss: LearnedLoss; train: string; parityModel: string;
  epochs: number; bestEpoch: number; valRecovery: number; testRecovery: number; testDegradedAccuracy: number; baseAccuracy: number; seconds: number; checkpoint: string;
}

/** results.md of a learned sweep */
const LEARNED_COLUMNS: SweepColumn<LearnedSweepRow>[] = [
  { header: 'run', cell: (x) => x.run }, { header: 'dataset', cell: (x) => x.dataset }, { header: 'model', cell: (x) => x.model },
  { header: 'k', cell: (x) => `${x.k}` }, { header: 'r', cell: (x) => `${x.r}` }, { header: 'encoder', cell: (x) => x.encoder }, { header: 'loss', cell: (x) => x.loss },
  { header: 'parity model', cell: (x) => x.parityModel }, { header: 'epochs (best)', cell: (x) => `${x.epochs} (${x.bestEpoch})` }, { header: 'val recovery', cell: (x) => pct(x.valRecovery) },
  { header: 'test recovery', cell: (x) => pct(x.testRecovery) }, { header: 'test A_d', cell: (x) => pct(x.testDegradedAccuracy) },
  { header: 'A_a', cell: (x) => pct(x.baseAccuracy) }, { header: 'seconds', cell: (x) => x.seconds.toFixed(0) },
];

async function runSweep(path: string, dataDirFlag: string | undefined, deviceFlag: string | undefined, json: boolean): Promise<void> {
  const s = await parseSweep(readFileSync(path, 'utf8'), path);
  const device = choiceOption(deviceFlag, 'device', ['cpu', 'cuda'] as const, s.device ?? 'cpu');
  const rows: LearnedSweepRow[] = [];
  mkdirSync(s.out, { recursive: true });
  const combos: Omit<LearnedTrainingConfig, 'dataset'>[] = [];
  for (const base of s.base) for (const k of s.k) for (const r of s.r ?? [1]) for (const encoder of s.encoder ?? ['mlp'])
    for (const decoder of s.decoder ?? ['mlp']) for (const loss of s.loss ?? ['kl-base']) for (const trainParts of s.train ?? ['both'])
      for (const parityModel of s.parityModel ?? ['none']) {
        const c: Omit<LearnedTrainingConfig, 'dataset'> = {
          base, k, r, encoder, decoder, loss, trainParts, epochs: s.epochs, batchSize: k === 2 ? 64 : 32, lr: s.lr ?? 1e-3, schedule: s.schedule ?? 'constant',
          weightDecay: s.weightDecay ?? 1e-5, optimizers: s.optimizers ?? 'joint', seed: s.seed ?? 1, device, timeLimit: s.timeLimit,
        };
        if (parityModel !== 'none') c.parityModel = parityModel;
        const init = encoderInitNamed(s.encoderInit ?? 'reference');
        if (encoder === 'conv' && init !== undefined && init !== 'reference') c.encoderOptions = { init };
        combos.push(c);
      }
  process.stderr.write(`sweep ${path}: ${combos.length} runs\n`);
  for (const [i, c] of combos.entries()) {
    const name = `${checkpointStem(c.base)}-k${c.k}-r${c.r}-${c.encoder}-${c.decoder}-${c.loss}-${c.trainParts}${c.parityModel ? `-fp-${c.parityModel}` : ''}`;
    process.stderr.write(`[${i + 1}/${combos.length}] ${name}\n`);
    const res = await runLearned({ cfg: c, outDir: join(s.out, name), dataDir: dataDirFlag ?? s.dataDir, resume: false, command: `coded train learned --config ${path}`, quiet: true });
    rows.push({
      run: name, dataset: res.dataset, model: res.model, k: c.k, r: c.r, encoder: c.encoder, decoder: c.decoder, loss: c.loss, train: c.trainParts, parityModel: c.parityModel ?? 'none',
      epochs: c.epochs, bestEpoch: res.bestEpoch, valRecovery: res.bestValRecovery, testRecovery: res.test.degraded.recovery,
      testDegradedAccuracy: res.test.degraded.accuracy, baseAccuracy: res.test.baseAccuracy, seconds: res.seconds, checkpoint: res.bestCheckpoint,
    });
    writeSweepResults(s.out, rows, LEARNED_COLUMNS);
  }
  if (json) console.log(JSON.stringify(rows));
  else console.log(`sweep done: ${join(s.out, 'results.md')}`);
}

export async function trainLearnedCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    base: { type: 'string' }, k: { type: 'string' }, r: { type: 'string' }, encoder: { type: 'string' }, decoder: { type: 'string' },
    loss: { type: 'string' }, epochs: { type: 'string' }, 'batch-size': { type: 'string' }, lr: { type: 'string' }, 'weight-decay': { type: 'string' }, schedule: { type: 'string' },
    optimizers: { type: 'string' }, train: { type: 'string' }, device: { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' },
    resume: { type: 'boolean' }, 'data-dir': { type: 'string' }, json: { type: 'boolean' }, config: { type: 'string' }, 'time-limit': { type: 'string' }, 'encoder-init': { type: 'string' },
    'parity-model': { type: 'string' }, deterministic: { type: 'boolean' },
  }, usage);
  if (values.help) return void console.log(usage);
  if (values.deterministic) setDeterministic(true);
  if (values.device === 'cuda' && !cudaAvailable()) throw new UsageError('--device cuda: this build of the addon has no CUDA');
  if (values.config !== undefined) return runSweep(values.config, values['data-dir'], values.device, values.json ?? false);
  if (values.base === undefined) throw new UsageError(`--base is required (a checkpoint from \`coded train base\`, e.g. models/fashion-mnist-base-mlp.safetensors)\n\n${usage}`);
  if (values.k === undefined) throw new UsageError('--k is required');
  const k = intOption(values.k, 'k', 2);
  const r = intOption(values.r, 'r', 1);
  const encoder = choiceOption(values.encoder, 'encoder', encoderNames(), 'mlp');
  const decoder = choiceOption(values.decoder, 'decoder', decoderNames(), 'mlp');
  const loss = choiceOption(values.loss, 'loss', LOSSES, 'kl-base') as LearnedLoss;
  const parityModel = values['parity-model'] ?? 'none';
  if (!isParityModelChoice(parityModel)) throw new UsageError(`--parity-model must be one of ${parityModelChoices().join(', ')}, got '${parityModel}'`);
  const encoderInit = choiceOption(values['encoder-init'] === undefined ? undefined : (encoderInitNamed(values['encoder-init']) ?? values['encoder-init']), 'encoder-init', ENCODER_INITS, 'reference');
  if (values['encoder-init'] !== undefined && encoder !== 'conv') throw new UsageError(`--encoder-init applies to --encoder conv, not '${encoder}'`);
  const cfg: Omit<LearnedTrainingConfig, 'dataset'> = {
    base: values.base, k, r, encoder, decoder, loss,
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
  const outDir = values.out ?? join('runs', 'learned', `${basename(values.base).replace(/\.safetensors$/, '')}-k${k}-r${r}-${encoder}-${loss}${parityModel !== 'none' ? `-fp-${parityModel}` : ''}`);
  const r0 = await runLearned({ cfg, outDir, dataDir: values['data-dir'], resume: values.resume ?? false, command: ['coded', 'train', 'learned', ...argv].join(' '), quiet: false });
  const t = r0.test;
  if (values.json) console.log(JSON.stringify({ config: cfg, dataset: r0.dataset, model: r0.model, bestEpoch: r0.bestEpoch, stoppedEarly: r0.stoppedEarly, bestValRecovery: r0.bestValRecovery, seconds: r0.seconds, checkpoint: r0.bestCheckpoint, epochs: r0.epochs, test: t }));
  else {
    console.log(`${r0.stoppedEarly !== null ? `time limit: stopped after epoch ${r0.stoppedEarly}; ` : ''}best epoch ${r0.bestEpoch}: validation recovery ${pct(r0.bestValRecovery)}; test recovery ${pct(t.degraded.recovery)}, A_d ${pct(t.degraded.accuracy)}, ` +
      `A_a ${pct(t.baseAccuracy)} (${t.degraded.count} reconstructions over ${t.patterns.length} patterns); ${r0.seconds.toFixed(0)} s; checkpoint ${r0.bestCheckpoint}`);
  }
}
