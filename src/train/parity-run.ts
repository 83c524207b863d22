// Parity-model training runs (`coded train parity`): one run (runParity: the base model F and
// its data, from a zoo checkpoint and its dataset or a TorchScript file and a tensors file, then
// trainParity and the test report) and a sweep of runs from a JSON config (runParitySweep).
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import type { TSchema } from '@sinclair/typebox';
import { choiceOption, UsageError } from '../util/usage-error.js';
import {
  checkpointStem,
  commonSweepFields,
  parseSweepConfig,
  pct,
  tableCell,
  writeSweepResults,
  type SweepColumn,
  type TypeBuilder,
} from './sweep.js';
import { isDatasetName, loadDataset, disposeDataset } from '../data/registry.js';
import { manualSeed, cudaAvailable } from '../engine/runtime.js';
import { isModelName, modelNames } from '../models/registry.js';
import { codeFromConfig } from '../codes/index.js';
import { LinearCode } from '../codes/linear.js';
import { BASE_PARITY_MODEL, loadBaseCheckpoint } from '../codes/parity-models.js';
import { loadCodeCheckpoint } from '../codes/checkpoint.js';
import type { TorchScriptModule } from '../models/torchscript.js';
import {
  baseOutputs,
  trainParity,
  type ParityTrainingConfig,
  type ParityTrainingData,
  type ParityTrainingResult,
} from './parity-training.js';
import { loadBaseModel } from '../models/base-model.js';
import { isTorchScriptPath } from '../models/file-kinds.js';
import type { BaseIdentity } from '../models/base-checkpoint.js';
import { splitTensors } from '../data/tensors-file.js';
import { loadOwnData, OWN_DATA_HELP } from '../data/own-data.js';
import type { Tensor } from '../engine/tensor.js';
import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import type { Module } from '../nn/module.js';
import { formatCodeEvaluation, writeOverallAccuracyPlot } from '../eval/code-metrics.js';

export const PARITY_CODES = ['addition', 'linear', 'concat'] as const;
export type ParityCodeName = (typeof PARITY_CODES)[number];

export interface ParityRunOptions {
  /** base checkpoint from `coded train base` */
  base: string;
  /** parityModel undefined: the base model's architecture */
  cfg: Omit<ParityTrainingConfig, 'parityModel'> & { parityModel?: string };
  /** default runs/parity/<dataset>-<model>-<code>-k<K>-r<R> */
  outDir?: string;
  /** a tensors file (safetensors `inputs`, optional `labels`): the data of a TorchScript base */
  data?: string;
  /** a TorchScript base's per-example input shape (default: the tensors file's) */
  inputShape?: number[];
  /** an image folder's normalisation (--mean, --std) */
  mean?: number[];
  std?: number[];
  /**
   * Forward-only bases (a running V2 server, an ONNX file): F's outputs on --data computed once.
   * Given by the caller (the CLI passes src/serve/forward-only-base.ts, with a progress bar) so
   * that training does not depend on the serving layer; without it such bases are refused.
   */
  forwardOnly?: ForwardOnlySupport;
  dataDir?: string;
  resume: boolean;
  command: string;
  /** no progress bars */
  quiet?: boolean;
  /** per-epoch progress bars (the CLI's epochBars), given the metric's name; none by default */
  bars?: (metric: string) => { onBatch(epoch: number, batch: number, batches: number, loss: number): void; finish(): void };
  log?: (s: string) => void;
}

export interface ForwardOnlySupport {
  /** whether `base` names a forward-only F (v2://, http://, FILE.onnx) */
  is(base: string): boolean;
  /** F's outputs on `inputs`, as a Module answering from them */
  load(
    base: string,
    inputs: Tensor,
    o: { dataset: string; inputShape?: number[] },
  ): Promise<{ model: Module; identity: BaseIdentity; classes: number }>;
  /** the error for what needs F's gradients */
  noGradients(base: string, why: string): string;
}

export interface ParityRunResult extends ParityTrainingResult {
  config: ParityTrainingConfig;
  dataset: string;
  baseModel: string;
  outDir: string;
}

/** Train the parity models of one code for one base checkpoint; writes DIR/test-eval.{json,md} and the A_o plot too. */
export async function runParity(o: ParityRunOptions): Promise<ParityRunResult> {
  const say = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const src = await parityRunSource(o, say);
  try {
    const parityModel = o.cfg.parityModel ?? src.modelName;
    if (src.format === 'forward-only') {
      if (parityModel === BASE_PARITY_MODEL)
        throw new UsageError(
          o.forwardOnly!.noGradients(o.base, "--parity-model base (trained copies of F's module) is not possible: name a zoo architecture"),
        );
      if (!isModelName(parityModel))
        throw new UsageError(
          `--parity-model is required for a forward-only base (${o.base}): a zoo architecture for its ${src.input.channels}x${src.input.height}x${src.input.width} inputs (${modelNames().join(', ')})`,
        );
      if ((o.cfg.augment ?? 'none') !== 'none')
        throw new UsageError(
          `--augment needs a local F to compute the outputs of augmented queries; ${o.base} is forward-only (its outputs are computed once on the data): drop --augment`,
        );
    }
    const ownArchitecture = src.format === 'torchscript' && parityModel === BASE_PARITY_MODEL;
    if (!isModelName(parityModel) && !ownArchitecture) {
      throw new UsageError(
        src.format === 'torchscript'
          ? `--parity-model is required for a TorchScript base: base (copies of F's own module, starting from its weights) or a zoo architecture for its ${src.input.channels}x${src.input.height}x${src.input.width} inputs (${modelNames().join(', ')})`
          : `--parity-model must be one of ${modelNames().join(', ')}, got '${parityModel}'`,
      );
    }
    const cfg: ParityTrainingConfig = { ...o.cfg, parityModel };
    const { code: codeName, k, r } = cfg;
    const code = codeFromConfig({ family: codeName, k, r });
    if (!(code instanceof LinearCode)) throw new Error(`internal: ${codeName} is not a parity-model code`);
    const outDir = o.outDir ?? join('runs', 'parity', `${src.dataset}-${src.modelName}-${codeName}-k${k}-r${r}`);
    manualSeed(cfg.seed);
    const lossName = { mse: 'mse', 'kl-decoded': 'kl', 'xent-decoded': 'xent' }[cfg.loss ?? 'mse'];
    const bars = o.bars !== undefined && !o.quiet ? o.bars(lossName) : { onBatch: () => {}, finish: () => {} };
    const { data } = src;
    say(
      `training ${r} ${parityModel} parity model(s) for ${code.name} on ${src.dataset} (base ${o.base}${src.testAccuracy === undefined ? '' : `, test accuracy ${(src.testAccuracy * 100).toFixed(2)}%`}): ` +
        `${cfg.epochs} epochs, batch ${cfg.batchSize} groups, Adam lr ${cfg.lr} (${cfg.schedule}), L2 ${cfg.weightDecay}, targets ${cfg.target}, loss ${cfg.loss ?? 'mse'}; output ${outDir}`,
    );
    const res = trainParity(
      cfg,
      code,
      src.model,
      src.identity,
      { ...src.input, classes: data.classes.length },
      data,
      outDir,
      { resume: o.resume },
      {
        command: o.command,
        onBatch: bars.onBatch,
        onEpoch: (e) => {
          bars.finish();
          say(
            `epoch ${e.epoch}: train ${lossName} ${e.trainLoss.toFixed(4)}, validation A_d ${(100 * e.valDegradedAccuracy).toFixed(2)}%, ` +
              `recovery ${(100 * e.valRecovery).toFixed(2)}%${e.best ? ' (best)' : ''}, ${e.seconds.toFixed(1)} s`,
          );
        },
      },
    );
    if (ownArchitecture) {
      // the trained parity models as TorchScript too (F's graph, new weights): Triton's libtorch backend serves them
      const lp = loadCodeCheckpoint(res.bestCheckpoint, { base: false, parity: 'required' });
      try {
        lp.parity.forEach((m, j) => (m as TorchScriptModule).save(join(outDir, `parity-${j}.pt`)));
      } finally {
        lp.dispose();
      }
      say(`parity models saved as TorchScript: ${lp.parity.map((_, j) => join(outDir, `parity-${j}.pt`)).join(', ')}`);
    }
    writeFileSync(join(outDir, 'test-eval.json'), JSON.stringify(res.test, null, 2) + '\n');
    writeFileSync(join(outDir, 'test-eval.md'), formatCodeEvaluation(res.test) + '\n');
    try {
      await writeOverallAccuracyPlot(res.test, join(outDir, 'overall-accuracy'));
    } catch (e) {
      // the plot is a convenience: a missing renderer must not lose a finished run's result
      process.stderr.write(
        `warning: the A_o(f) plot was not written (${(e as Error).message}); the results are in ${join(outDir, 'test-eval.json')}\n`,
      );
    }
    return { ...res, config: cfg, dataset: src.dataset, baseModel: src.modelName, outDir };
  } finally {
    src.dispose();
  }
}

interface ParityRunSource {
  format: 'checkpoint' | 'torchscript' | 'forward-only';
  model: Module;
  identity: BaseIdentity;
  input: { channels: number; height: number; width: number };
  modelName: string;
  dataset: string;
  testAccuracy?: number;
  data: ParityTrainingData;
  dispose(): void;
}

/** F and its data: a zoo checkpoint with its dataset, or a TorchScript file with a tensors file (--data, --input-shape). */
async function parityRunSource(o: ParityRunOptions, say: (s: string) => void): Promise<ParityRunSource> {
  const forwardOnly = o.forwardOnly?.is(o.base) ?? false;
  if (isTorchScriptPath(o.base) || forwardOnly) {
    if (o.data === undefined)
      throw new UsageError(
        `${o.base} is a ${forwardOnly ? 'forward-only base' : 'TorchScript file'}: pass --data FILE.safetensors|FILE.npz|FILE.npy|DIR (${OWN_DATA_HELP}) to train its parity models on`,
      );
    const data = await loadOwnData(o.data, { inputShape: o.inputShape, mean: o.mean, std: o.std });
    const shape = o.inputShape ?? data.inputs.shape.slice(1);
    let base: { model: Module; identity: BaseIdentity; classes: number };
    try {
      if (data.inputs.shape.slice(1).join('x') !== shape.join('x'))
        throw new UsageError(`--input-shape ${shape.join('x')} does not match the inputs of ${o.data} ([${data.inputs.shape.join(', ')}])`);
      base = forwardOnly
        ? // a V2 server or an ONNX file: F's outputs on all the data, computed once (forward only)
          await o.forwardOnly!.load(o.base, data.inputs, {
            dataset: basename(o.data),
            ...(o.inputShape === undefined ? {} : { inputShape: o.inputShape }),
          })
        : loadBaseModel(o.base, { inputShape: shape, dataset: basename(o.data) });
    } catch (e) {
      data.inputs.dispose();
      data.labels?.dispose();
      throw e;
    }
    // without labels in the file, F's own answers are the labels (A_d then measures agreement with F)
    if (data.labels === null) say(`${o.data} has no labels: F's answers serve as labels`);
    const labels =
      data.labels ??
      tidy(() =>
        noGrad(() =>
          baseOutputs(base.model, { images: data.inputs, labels: data.inputs, size: data.inputs.shape[0] }, 'cpu').argmax(1).keep(),
        ),
      );
    const splits = splitTensors(data.inputs, labels, { seed: o.cfg.seed });
    data.inputs.dispose();
    labels.dispose();
    const classes = data.classNames?.length === base.classes ? data.classNames : Array.from({ length: base.classes }, (_, i) => String(i));
    const identity = data.preprocessing === null ? base.identity : { ...base.identity, preprocessing: data.preprocessing };
    return {
      format: forwardOnly ? 'forward-only' : 'torchscript',
      model: base.model,
      identity,
      input: base.identity.input!,
      modelName: basename(o.base).replace(/\.[^.]+$/, ''),
      dataset: basename(o.data).replace(/\.(safetensors|npz|npy)$/i, ''),
      data: { ...splits, classes },
      dispose: () => {
        base.model.dispose();
        for (const s of [splits.train, splits.validation, splits.test]) {
          s.images.dispose();
          s.labels.dispose();
        }
      },
    };
  }
  if (o.data !== undefined || o.inputShape !== undefined || o.mean !== undefined || o.std !== undefined)
    throw new UsageError(
      `--data and --input-shape go with a TorchScript --base (FILE.pt); ${o.base} trains on the dataset its checkpoint names`,
    );
  const base = loadBaseCheckpoint(o.base);
  try {
    const dataset = base.meta.dataset;
    if (!isDatasetName(dataset)) throw new Error(`${o.base}: unknown dataset '${dataset}' in metadata`);
    // the validation hold-out of the base model's own training (its seed), so F never saw it
    const splitSeed = (base.meta.config as { seed?: number } | undefined)?.seed ?? 1;
    const ds = await loadDataset(dataset, { dataDir: o.dataDir, seed: splitSeed, log: say });
    if (ds.validation === null) {
      disposeDataset(ds);
      throw new Error('internal: no validation split');
    }
    return {
      format: 'checkpoint',
      model: base.model,
      identity: base.identity,
      input: base.meta.input,
      modelName: base.meta.model,
      dataset,
      testAccuracy: base.meta.testAccuracy,
      data: { train: ds.train, validation: ds.validation, test: ds.test, classes: base.meta.classes, paddingFill: ds.paddingFill },
      dispose: () => {
        disposeDataset(ds);
        base.model.dispose();
      },
    };
  } catch (e) {
    base.model.dispose();
    throw e;
  }
}

/** Coding groups per batch by default: 64 for k = 2, 32 otherwise (the papers' choice). */
export const defaultBatchSize = (k: number): number => (k === 2 ? 64 : 32);

// ---- sweeps: `coded train parity --config SWEEP.json`

/** A parity sweep config (JSON); see paritySweepSchema for the rules. */
export interface ParitySweep {
  out: string;
  dataDir?: string;
  device?: 'cpu' | 'cuda';
  seed?: number;
  epochs: number;
  /** base checkpoints: each names its dataset and model, so this list is the datasets x models axis */
  base: string[];
  code: ParityCodeName[];
  k: number[];
  /** default [1]; only linear takes r > 1 (other combinations are skipped) */
  r?: number[];
  /** parity architectures (default: each base's own) */
  parityModel?: string[];
  target?: ('base' | 'labels')[];
  lr?: number;
  weightDecay?: number;
  schedule?: 'constant' | 'cosine';
  loss?: 'mse' | 'kl-decoded' | 'xent-decoded';
  temperature?: number;
  /** kl-decoded: weight of the true labels (default 0) */
  labelWeight?: number;
  /** coding groups per batch (default 64 for k = 2, 32 otherwise) */
  batchSize?: number;
}

function paritySweepSchema(Type: TypeBuilder) {
  const list = <T extends TSchema>(item: T) => Type.Array(item, { minItems: 1 });
  return Type.Object(
    {
      ...commonSweepFields(Type),
      code: list(Type.Union(PARITY_CODES.map((c) => Type.Literal(c)))),
      k: list(Type.Integer({ minimum: 2 })),
      r: Type.Optional(list(Type.Integer({ minimum: 1 }))),
      parityModel: Type.Optional(list(Type.String({ minLength: 1 }))),
      target: Type.Optional(list(Type.Union([Type.Literal('base'), Type.Literal('labels')]))),
      lr: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
      weightDecay: Type.Optional(Type.Number({ minimum: 0 })),
      schedule: Type.Optional(Type.Union([Type.Literal('constant'), Type.Literal('cosine')])),
      loss: Type.Optional(Type.Union([Type.Literal('mse'), Type.Literal('kl-decoded'), Type.Literal('xent-decoded')])),
      temperature: Type.Optional(Type.Number({ exclusiveMinimum: 0 })),
      labelWeight: Type.Optional(Type.Number({ minimum: 0, maximum: 1 })),
      batchSize: Type.Optional(Type.Integer({ minimum: 1 })),
    },
    { additionalProperties: false },
  );
}

/** Parse and validate a parity sweep config, with the schema errors listed. */
export async function parseParitySweep(text: string, path = 'sweep config'): Promise<ParitySweep> {
  const s = await parseSweepConfig<ParitySweep>(text, path, paritySweepSchema);
  for (const m of s.parityModel ?? [])
    if (!isModelName(m)) throw new Error(`${path}: unknown parity model '${m}' (${modelNames().join(', ')})`);
  return s;
}

/** One combination of a parity sweep. */
export interface ParitySweepRun {
  /** the run's directory name under the sweep's out */
  name: string;
  base: string;
  code: ParityCodeName;
  k: number;
  r: number;
  parityModel: string;
  target: 'base' | 'labels';
}

/** A name for a base checkpoint in run names: its file name, or its run directory's for `coded train base` outputs (best/last.safetensors). */
export function baseStem(path: string): string {
  const stem = checkpointStem(path);
  if (stem !== 'best' && stem !== 'last') return stem;
  const dir = basename(dirname(resolve(path)));
  return stem === 'best' ? dir : `${dir}-last`;
}

/**
 * The grid of a sweep in order (base, code, k, r, parity model, target), and the combinations
 * skipped because the code cannot take them (addition and concat have r = 1), with the reason.
 * `baseModel(path)` names a base's architecture (the default parity model).
 */
export function paritySweepRuns(
  s: ParitySweep,
  baseModel: (base: string) => string,
): { runs: ParitySweepRun[]; skipped: { name: string; reason: string }[] } {
  const runs: ParitySweepRun[] = [];
  const skipped: { name: string; reason: string }[] = [];
  for (const base of s.base)
    for (const code of s.code)
      for (const k of s.k)
        for (const r of s.r ?? [1])
          for (const parityModel of s.parityModel ?? [baseModel(base)])
            for (const target of s.target ?? ['base' as const]) {
              const name = `${baseStem(base)}-${code}-k${k}-r${r}-${parityModel}-${target}`;
              let reason: string | null = null;
              if (code !== 'linear' && r !== 1) reason = `${code} codes have r = 1 (only linear takes r > 1)`;
              else {
                try {
                  codeFromConfig({ family: code, k, r });
                } catch (e) {
                  reason = (e as Error).message;
                }
              }
              if (reason !== null) skipped.push({ name, reason });
              else runs.push({ name, base, code, k, r, parityModel, target });
            }
  const seen = new Map<string, ParitySweepRun>();
  for (const x of runs) {
    const o = seen.get(x.name);
    if (o !== undefined)
      throw new Error(
        `two runs of the sweep would both write to ${join(s.out, x.name)} (bases ${o.base} and ${x.base}): give the base checkpoints distinct file names`,
      );
    seen.set(x.name, x);
  }
  return { runs, skipped };
}

/** One run of a parity sweep as results.json records it; a failed run has `error` and null metrics. */
export interface ParitySweepRow {
  run: string;
  base: string;
  dataset: string;
  baseModel: string;
  code: ParityCodeName;
  k: number;
  r: number;
  parityModel: string;
  target: 'base' | 'labels';
  epochs: number;
  bestEpoch: number | null;
  valDegradedAccuracy: number | null;
  testBaseAccuracy: number | null;
  testDegradedAccuracy: number | null;
  testRecovery: number | null;
  seconds: number;
  checkpoint: string | null;
  error?: string;
}

const metric = (v: number | null) => (v === null ? '—' : pct(v));
const firstLine = (s: string) => {
  const l = s.split('\n')[0];
  return l.length > 200 ? `${l.slice(0, 200)}...` : l;
};

/** results.md of a parity sweep */
const PARITY_COLUMNS: SweepColumn<ParitySweepRow>[] = [
  { header: 'run', cell: (x) => tableCell(x.run) },
  { header: 'dataset', cell: (x) => x.dataset },
  { header: 'base model', cell: (x) => x.baseModel },
  { header: 'code', cell: (x) => x.code },
  { header: 'k', cell: (x) => `${x.k}` },
  { header: 'r', cell: (x) => `${x.r}` },
  { header: 'parity model', cell: (x) => x.parityModel },
  {
    header: 'epochs (best)',
    cell: (x) => (x.error !== undefined ? `${x.epochs} (failed: ${tableCell(firstLine(x.error))})` : `${x.epochs} (${x.bestEpoch})`),
  },
  { header: 'val A_d', cell: (x) => metric(x.valDegradedAccuracy) },
  { header: 'test A_a', cell: (x) => metric(x.testBaseAccuracy) },
  { header: 'test A_d', cell: (x) => metric(x.testDegradedAccuracy) },
  { header: 'test recovery', cell: (x) => metric(x.testRecovery) },
  { header: 'seconds', cell: (x) => x.seconds.toFixed(0) },
];

export interface ParitySweepOptions {
  /** overrides the config's dataDir */
  dataDir?: string;
  /** overrides the config's device */
  device?: string;
  /** progress messages (default: stderr) */
  log?: (s: string) => void;
}

/**
 * Run a parity sweep: every combination in turn into OUT/<name>, results.json and results.md
 * rewritten in OUT after each. Returns the rows (with the out directory).
 */
export async function runParitySweep(path: string, o: ParitySweepOptions = {}): Promise<ParitySweepRow[] & { out: string }> {
  const say = o.log ?? ((s: string) => process.stderr.write(s + '\n'));
  const s = await parseParitySweep(readFileSync(path, 'utf8'), path);
  const device = choiceOption(o.device, 'device', ['cpu', 'cuda'] as const, s.device ?? 'cpu');
  if (device === 'cuda' && !cudaAvailable()) throw new UsageError('--device cuda: this build of the addon has no CUDA');
  // every base checkpoint is read before anything is trained: a wrong path fails at once
  const bases = new Map<string, { dataset: string; model: string }>();
  for (const b of new Set(s.base)) {
    const { model, meta } = loadBaseCheckpoint(b);
    model.dispose();
    bases.set(b, { dataset: meta.dataset, model: meta.model });
  }
  const { runs, skipped } = paritySweepRuns(s, (b) => bases.get(b)!.model);
  for (const x of skipped) say(`sweep ${path}: skipping ${x.name}: ${x.reason}`);
  if (runs.length === 0)
    throw new Error(
      `${path}: no combination of the sweep can be trained (${skipped.length} skipped: addition and concat codes have r = 1, only linear takes r > 1)`,
    );
  say(`sweep ${path}: ${runs.length} runs${skipped.length ? ` (${skipped.length} combinations skipped)` : ''}`);
  mkdirSync(s.out, { recursive: true });
  const rows = Object.assign([] as ParitySweepRow[], { out: s.out });
  for (const [i, x] of runs.entries()) {
    say(`[${i + 1}/${runs.length}] ${x.name}`);
    const t0 = performance.now();
    const b = bases.get(x.base)!;
    const row: ParitySweepRow = {
      run: x.name,
      base: x.base,
      dataset: b.dataset,
      baseModel: b.model,
      code: x.code,
      k: x.k,
      r: x.r,
      parityModel: x.parityModel,
      target: x.target,
      epochs: s.epochs,
      bestEpoch: null,
      valDegradedAccuracy: null,
      testBaseAccuracy: null,
      testDegradedAccuracy: null,
      testRecovery: null,
      seconds: 0,
      checkpoint: null,
    };
    try {
      const res = await runParity({
        base: x.base,
        cfg: {
          code: x.code,
          k: x.k,
          r: x.r,
          parityModel: x.parityModel,
          epochs: s.epochs,
          batchSize: s.batchSize ?? defaultBatchSize(x.k),
          lr: s.lr ?? 1e-3,
          weightDecay: s.weightDecay ?? 1e-5,
          schedule: s.schedule ?? 'cosine',
          target: x.target,
          loss: s.loss ?? 'mse',
          temperature: s.temperature ?? 1,
          ...(s.labelWeight !== undefined ? { labelWeight: s.labelWeight } : {}),
          seed: s.seed ?? 1,
          device,
        },
        outDir: join(s.out, x.name),
        dataDir: o.dataDir ?? s.dataDir,
        resume: false,
        command: `coded train parity --config ${path}`,
        quiet: true,
        log: say,
      });
      Object.assign(row, {
        bestEpoch: res.bestEpoch,
        valDegradedAccuracy: res.bestValDegradedAccuracy,
        testBaseAccuracy: res.test.baseAccuracy,
        testDegradedAccuracy: res.test.degraded.accuracy,
        testRecovery: res.test.degraded.recovery,
        seconds: res.seconds,
        checkpoint: res.bestCheckpoint,
      });
    } catch (e) {
      row.error = (e as Error).message;
      row.seconds = (performance.now() - t0) / 1000;
      say(`[${i + 1}/${runs.length}] ${x.name} failed: ${row.error}`);
    }
    rows.push(row);
    writeSweepResults(s.out, rows, PARITY_COLUMNS);
  }
  return rows;
}
