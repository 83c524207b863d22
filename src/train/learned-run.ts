// Learned-code training runs (`coded train learned`): one run (runLearned: the base model and
// its dataset, the code, trainLearned) and a sweep of runs from a JSON config (runLearnedSweep).
import { mkdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { choiceOption, UsageError } from '../util/usage-error.js';
import {
  checkpointStem,
  commonSweepFields,
  parseSweepConfig,
  pct,
  writeSweepResults,
  type SweepColumn,
  type TypeBuilder,
} from './sweep.js';
import { isDatasetName, loadDataset, disposeDataset } from '../data/registry.js';
import { loadBaseCheckpoint } from '../models/base-checkpoint.js';
import { ENCODER_INITS, LEGACY_ENCODER_INITS, encoderInitNamed, type EncoderInit } from '../models/conv-encoder.js';
import type { Module } from '../nn/module.js';
import { manualSeed } from '../engine/runtime.js';
import { LearnedCode, decoderNames, encoderNames } from '../codes/learned.js';
import '../codes/index.js';
import { codeState } from '../codes/code-state.js';
import {
  LOSSES,
  baseIdentity,
  learnedCodeConfig,
  isParityModelChoice,
  parityModelChoices,
  resolveParityModel,
  trainLearned,
  type LearnedLoss,
  type LearnedTrainingConfig,
  type LearnedTrainingResult,
} from './learned-training.js';

// the sweep schema (typebox is loaded only for sweeps, so single runs need no node_modules at run time)
function sweepSchema(Type: TypeBuilder) {
  return Type.Object(
    {
      ...commonSweepFields(Type),
      k: Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 }),
      r: Type.Optional(Type.Array(Type.Integer({ minimum: 1 }), { minItems: 1 })),
      encoder: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
      decoder: Type.Optional(Type.Array(Type.String(), { minItems: 1 })),
      loss: Type.Optional(Type.Array(Type.Union(LOSSES.map((l) => Type.Literal(l))), { minItems: 1 })),
      train: Type.Optional(
        Type.Array(Type.Union([Type.Literal('both'), Type.Literal('encoder'), Type.Literal('decoder')]), { minItems: 1 }),
      ),
      parityModel: Type.Optional(Type.Array(Type.String({ minLength: 1 }), { minItems: 1 })),
      optimizers: Type.Optional(Type.Union([Type.Literal('joint'), Type.Literal('separate')])),
      lr: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
      schedule: Type.Optional(Type.Union([Type.Literal('constant'), Type.Literal('cosine')])),
      weightDecay: Type.Optional(Type.Number({ minimum: 0 })),
      timeLimit: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
      encoderInit: Type.Optional(Type.Union([...ENCODER_INITS, ...Object.keys(LEGACY_ENCODER_INITS)].map((i) => Type.Literal(i)))),
    },
    { additionalProperties: false },
  );
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
  for (const e of s.encoder ?? [])
    if (!encoderNames().includes(e)) throw new Error(`${path}: unknown encoder '${e}' (${encoderNames().join(', ')})`);
  for (const d of s.decoder ?? [])
    if (!decoderNames().includes(d)) throw new Error(`${path}: unknown decoder '${d}' (${decoderNames().join(', ')})`);
  for (const p of s.parityModel ?? [])
    if (!isParityModelChoice(p)) throw new Error(`${path}: unknown parityModel '${p}' (${parityModelChoices().join(', ')})`);
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
export function loadBase(path: string): {
  model: Module;
  meta: BaseMeta & { dataset: string; model: string; input: { channels: number; height: number; width: number }; classes: string[] };
} {
  const { model, meta } = loadBaseCheckpoint(path);
  return { model, meta: meta as never };
}

export interface RunOptions {
  cfg: Omit<LearnedTrainingConfig, 'dataset'>;
  outDir: string;
  dataDir?: string;
  resume: boolean;
  command: string;
  quiet?: boolean;
  /** per-epoch progress bars (the CLI's epochBars); none by default */
  bars?: { onBatch(epoch: number, batch: number, batches: number, loss: number): void; finish(): void };
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
    const params = codeState(code).numParameters();
    const pm =
      parityArch === undefined
        ? ''
        : ` with ${cfg.r} ${parityArch} parity model(s) (${cfg.parityModel === 'base' ? "initialised from F's weights" : 'fresh'})`;
    say(
      `training ${code.name} (${params.toLocaleString('en')} encoder/decoder parameters)${pm} for ${meta.model} on ${meta.dataset} (${basename(cfg.base)}), ` +
        `loss ${cfg.loss}, ${cfg.epochs} epochs, batch ${cfg.batchSize} groups, Adam lr ${cfg.lr}${cfg.schedule === 'cosine' ? ' (cosine)' : ''} L2 ${cfg.weightDecay}, ${cfg.device}; output ${o.outDir}`,
    );
    const bars = o.bars !== undefined && !o.quiet ? o.bars : { onBatch: () => {}, finish: () => {} };
    const r = trainLearned(
      cfg,
      code,
      base,
      id,
      data,
      o.outDir,
      { resume: o.resume },
      {
        command: o.command,
        onBatch: bars.onBatch,
        onEpoch: (e) => {
          bars.finish();
          say(
            `epoch ${e.epoch}: train loss ${e.trainLoss.toFixed(4)}, val recovery ${(100 * e.valRecovery).toFixed(2)}%, val A_d ${(100 * e.valAccuracy).toFixed(2)}%` +
              `${e.best ? ' (best)' : ''}, ${e.seconds.toFixed(1)} s`,
          );
        },
      },
    );
    return { ...r, dataset: meta.dataset, model: meta.model };
  } finally {
    disposeDataset(ds);
    base.dispose();
    if (code) codeState(code).dispose();
  }
}

/** One run of a learned sweep, as results.json records it. */
export interface LearnedSweepRow {
  run: string;
  dataset: string;
  model: string;
  k: number;
  r: number;
  encoder: string;
  decoder: string;
  loss: LearnedLoss;
  train: string;
  parityModel: string;
  epochs: number;
  bestEpoch: number;
  valRecovery: number;
  testRecovery: number;
  testDegradedAccuracy: number;
  baseAccuracy: number;
  seconds: number;
  checkpoint: string;
}

/** results.md of a learned sweep */
const LEARNED_COLUMNS: SweepColumn<LearnedSweepRow>[] = [
  { header: 'run', cell: (x) => x.run },
  { header: 'dataset', cell: (x) => x.dataset },
  { header: 'model', cell: (x) => x.model },
  { header: 'k', cell: (x) => `${x.k}` },
  { header: 'r', cell: (x) => `${x.r}` },
  { header: 'encoder', cell: (x) => x.encoder },
  { header: 'loss', cell: (x) => x.loss },
  { header: 'parity model', cell: (x) => x.parityModel },
  { header: 'epochs (best)', cell: (x) => `${x.epochs} (${x.bestEpoch})` },
  { header: 'val recovery', cell: (x) => pct(x.valRecovery) },
  { header: 'test recovery', cell: (x) => pct(x.testRecovery) },
  { header: 'test A_d', cell: (x) => pct(x.testDegradedAccuracy) },
  { header: 'A_a', cell: (x) => pct(x.baseAccuracy) },
  { header: 'seconds', cell: (x) => x.seconds.toFixed(0) },
];

/** Run a learned sweep: every combination in turn into OUT/<name>, results.json and results.md rewritten after each. */
export async function runLearnedSweep(
  path: string,
  dataDirFlag?: string,
  deviceFlag?: string,
): Promise<LearnedSweepRow[] & { out: string }> {
  const s = await parseSweep(readFileSync(path, 'utf8'), path);
  const device = choiceOption(deviceFlag, 'device', ['cpu', 'cuda'] as const, s.device ?? 'cpu');
  const rows = Object.assign([] as LearnedSweepRow[], { out: s.out });
  mkdirSync(s.out, { recursive: true });
  const combos: Omit<LearnedTrainingConfig, 'dataset'>[] = [];
  for (const base of s.base)
    for (const k of s.k)
      for (const r of s.r ?? [1])
        for (const encoder of s.encoder ?? ['mlp'])
          for (const decoder of s.decoder ?? ['mlp'])
            for (const loss of s.loss ?? ['kl-base'])
              for (const trainParts of s.train ?? ['both'])
                for (const parityModel of s.parityModel ?? ['none']) {
                  const c: Omit<LearnedTrainingConfig, 'dataset'> = {
                    base,
                    k,
                    r,
                    encoder,
                    decoder,
                    loss,
                    trainParts,
                    epochs: s.epochs,
                    batchSize: k === 2 ? 64 : 32,
                    lr: s.lr ?? 1e-3,
                    schedule: s.schedule ?? 'constant',
                    weightDecay: s.weightDecay ?? 1e-5,
                    optimizers: s.optimizers ?? 'joint',
                    seed: s.seed ?? 1,
                    device,
                    timeLimit: s.timeLimit,
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
    const res = await runLearned({
      cfg: c,
      outDir: join(s.out, name),
      dataDir: dataDirFlag ?? s.dataDir,
      resume: false,
      command: `coded train learned --config ${path}`,
      quiet: true,
    });
    rows.push({
      run: name,
      dataset: res.dataset,
      model: res.model,
      k: c.k,
      r: c.r,
      encoder: c.encoder,
      decoder: c.decoder,
      loss: c.loss,
      train: c.trainParts,
      parityModel: c.parityModel ?? 'none',
      epochs: c.epochs,
      bestEpoch: res.bestEpoch,
      valRecovery: res.bestValRecovery,
      testRecovery: res.test.degraded.recovery,
      testDegradedAccuracy: res.test.degraded.accuracy,
      baseAccuracy: res.test.baseAccuracy,
      seconds: res.seconds,
      checkpoint: res.bestCheckpoint,
    });
    writeSweepResults(s.out, rows, LEARNED_COLUMNS);
  }
  return rows;
}
