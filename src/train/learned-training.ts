// Training a learned code through the frozen base model F (seed 000): each step takes G
// coding groups of k images, encodes r parities, runs F on the k originals and the r
// parities, then decodes every erasure pattern of up to r missing outputs (except the
// all-parity ones) in one vectorised decoder pass. The loss is computed only on the erased
// data slots. Gradients flow through F into the encoder; F's parameters are frozen
// (requiresGrad off, never given to an optimizer, evaluation mode).
//
// Joint mode (cfg.parityModel, seed 002 section VI-C): r parity models F_P[0..r-1], one per
// parity slot, compute on the parity queries instead of F and are trained together with the
// encoder and decoder (F still runs, frozen, on the k originals). 'base' builds them with F's
// architecture and copies F's weights into them (F itself is untouched); an architecture name
// builds them freshly initialised from the model zoo. Checkpoints hold them as a parity code
// does ("parity.<j>." tensors, "parity" metadata), so loadCodeCheckpoint, `coded eval` and
// `coded serve instance --parity-index J` read them.
import { runFiles } from './run-files.js';
import { learningRate } from './lr-schedule.js';
import { readCheckpointHeader } from '../nn/checkpoint.js';
import { fileSha256, type BaseIdentity } from '../models/base-checkpoint.js';
import { noGrad } from '../engine/autograd.js';
import { klDiv, stack } from '../engine/ops.js';
import { Adam } from '../engine/optim/adam.js';
import type { Optimizer } from '../engine/optim/optimizer.js';
import { tidy } from '../engine/scope.js';
import { tensor, type Tensor } from '../engine/tensor.js';
import type { Device } from '../engine/dtype.js';
import type { Module } from '../nn/module.js';
import type { Split } from '../data/split.js';
import { GroupSampler, gatherGroups } from '../data/group-sampler.js';
import { allOutputs, LearnedCode, type LearnedCodeConfig } from '../codes/learned.js';
import { readCodeCheckpoint, saveCode, type ParityMeta } from '../codes/checkpoint.js';
import { codeState } from '../codes/code-state.js';
import { runEpochs } from './run.js';
import { buildModel, findModel, isModelName, modelNames } from '../models/registry.js';
import type { Availability } from '../codes/code.js';
import { evaluateCode, type CodeEvaluation } from '../eval/code-metrics.js';

export const LOSSES = ['mse-base', 'kl-base', 'xent-label'] as const;
export type LearnedLoss = (typeof LOSSES)[number];

export interface LearnedTrainingConfig {
  dataset: string;
  /** base checkpoint path */
  base: string;
  k: number;
  r: number;
  encoder: string;
  decoder: string;
  encoderOptions?: Record<string, unknown>;
  decoderOptions?: Record<string, unknown>;
  loss: LearnedLoss;
  epochs: number;
  /** coding groups per batch (paper: 64 for k = 2, 32 for k = 5) */
  batchSize: number;
  lr: number;
  /** learning-rate schedule over the whole run (default constant, as in the paper) */
  schedule?: 'constant' | 'cosine';
  weightDecay: number;
  /** 'joint': one Adam over encoder and decoder; 'separate': one Adam each */
  optimizers: 'joint' | 'separate';
  /** which parts are trained (the others keep their initial or loaded weights) */
  trainParts: 'both' | 'encoder' | 'decoder';
  seed: number;
  device: Device;
  /** stop after the epoch during which this many seconds of training have passed (then evaluate as usual) */
  timeLimit?: number;
  /**
   * Joint training with parity models F_P (one per parity slot) run on the parity queries
   * instead of F: 'base' (F's architecture, initialised with a copy of F's weights) or a
   * model-zoo architecture (fresh initialisation). Absent: F runs on the parities.
   */
  parityModel?: string;
}

/** Values of --parity-model: none (F on the parities), base (a copy of F), or an architecture. */
export function parityModelChoices(): string[] {
  return ['none', 'base', ...modelNames()];
}

/** Whether a --parity-model value is valid: none, base, a zoo name or an mlp:... name. */
export function isParityModelChoice(choice: string): boolean {
  return choice === 'none' || choice === 'base' || isModelName(choice);
}

/**
 * The architecture of the parity models for a --parity-model value (undefined for none), with
 * clear errors for unknown names and for architectures that do not take the base model's inputs.
 */
export function resolveParityModel(
  choice: string | undefined,
  baseModel: string,
  input?: { channels: number; height: number; width: number },
): string | undefined {
  if (choice === undefined || choice === 'none') return undefined;
  if (!isParityModelChoice(choice)) throw new Error(`unknown parity model '${choice}' (valid: ${parityModelChoices().join(', ')})`);
  const arch = choice === 'base' ? baseModel : choice;
  const e = findModel(arch);
  if (e === undefined)
    throw new Error(
      `parity model 'base': the base model's architecture '${baseModel}' is not in the model zoo (${modelNames().join(', ')})`,
    );
  if (input !== undefined && !e.accepts({ ...input, classes: 2 })) {
    throw new Error(
      `parity model '${arch}' does not take the base model's ${input.channels}x${input.height}x${input.width} inputs (${e.description})`,
    );
  }
  return arch;
}

export { fileSha256, type BaseIdentity };

/** The base checkpoint's identity recorded in a code checkpoint (path as given, as parity checkpoints do). */
export function baseIdentity(path: string, meta: { dataset?: string; model?: string; testAccuracy?: number }): BaseIdentity {
  return { path, sha256: fileSha256(path), dataset: String(meta.dataset), model: String(meta.model), testAccuracy: meta.testAccuracy };
}

/** Whether a safetensors file holds a learned code (reads only its JSON header). */
export function isLearnedCheckpoint(path: string): boolean {
  try {
    const meta = readCheckpointHeader(path) as { kind?: string; code?: { family?: string } };
    return meta.kind === 'code' && meta.code?.family === 'learned';
  } catch {
    return false;
  }
}

/**
 * Per-slot loss of reconstructions rec [P, G, k, m] against the base outputs target [G, k, m]
 * or labels [G, k], weighted by erased [P, k] (1 where the data slot is missing) and averaged
 * over the erased slots only. Available slots contribute nothing (not even gradients).
 *
 * As the reference code (loss/masked_loss.py: the base loss with reduction 'none', masked,
 * summed, divided by the number of erased slots): a slot's loss is summed over the m outputs
 * for mse-base (squared error, not its mean: before issue 19 we took the mean, a loss m times
 * smaller, which let Adam's L2 term outweigh the encoder's gradient) and kl-base, and is the
 * cross-entropy of the slot for xent-label.
 */
export function erasedSlotLoss(rec: Tensor, target: Tensor, labels: Tensor, erased: Tensor, loss: LearnedLoss): Tensor {
  return tidy(() => {
    const [P, G, k] = rec.shape;
    let perSlot: Tensor; // [P, G, k]
    if (loss === 'mse-base') {
      perSlot = rec.sub(target.unsqueeze(0)).square().sum(3);
    } else if (loss === 'kl-base') {
      // KL(softmax(F(X)) || softmax(rec)): the engine's kl_div(log_softmax(rec), log_softmax(F(X))) per element, summed per slot
      const logq = target.logSoftmax(-1).unsqueeze(0).expand(rec.shape);
      perSlot = klDiv(rec.logSoftmax(-1), logq, { reduction: 'none', logTarget: true }).sum(3);
    } else if (loss === 'xent-label') {
      const idx = labels.reshape([1, G, k, 1]).expand([P, G, k, 1]);
      perSlot = rec.logSoftmax(-1).gather(3, idx).squeeze(3).neg();
    } else {
      throw new RangeError(`unknown loss '${String(loss)}' (use ${LOSSES.join(', ')})`);
    }
    const w = erased.reshape([P, 1, k]).to(rec.dtype);
    const count = w.sum().mul(G);
    return perSlot.mul(w).sum().div(count);
  });
}

/** The 0/1 mask [P, k] of erased data slots of each pattern. */
export function erasedMask(patterns: readonly Availability[], k: number, device: Device = 'cpu'): Tensor {
  return tensor(
    patterns.flatMap((p) => p.slice(0, k).map((a) => (a ? 0 : 1))),
    [patterns.length, k],
    { device },
  );
}

/** Freeze a base model: evaluation mode, no gradients for its parameters. */
export function freeze(base: Module): void {
  base.eval();
  for (const p of base.parameters()) p.requiresGrad_(false);
}

/**
 * One training step's forward pass: the loss over every pattern for G groups.
 * images [G, k, C, H, W], labels [G, k]; base frozen.
 */
export function learnedLoss(
  code: LearnedCode,
  base: Module,
  images: Tensor,
  labels: Tensor,
  patterns: readonly Availability[],
  erased: Tensor,
  loss: LearnedLoss,
  parity: readonly Module[] = [],
): Tensor {
  if (code.usesParityModels && parity.length !== code.r) {
    throw new Error(`${code.name} runs its parity queries on ${code.r} parity model(s); learnedLoss was given ${parity.length}`);
  }
  if (!code.usesParityModels && parity.length > 0)
    throw new Error(`${code.name} runs its parity queries on the base model; learnedLoss was given parity models`);
  return tidy(() => {
    const [G, k, C, H, W] = images.shape;
    // F on the originals: nothing trainable upstream, so no graph
    const data = noGrad(() => base.forward(images.reshape([G * k, C, H, W])).reshape([G, k, -1]));
    const parities = code.parities(images); // [G, r, C, H, W], differentiable
    // F on the parities (gradients flow through it into the encoder), or F_P[j] on parity j
    const par =
      parity.length === 0
        ? base.forward(parities.reshape([G * code.r, C, H, W])).reshape([G, code.r, -1])
        : stack(
            parity.map((m, j) => m.forward(parities.select(1, j))),
            1,
          );
    const rec = code.decodePatterns(allOutputs(data, par), patterns);
    return erasedSlotLoss(rec, data, labels, erased, loss);
  });
}

export interface LearnedEpochRecord {
  epoch: number;
  trainLoss: number;
  valRecovery: number;
  valAccuracy: number;
  seconds: number;
  best: boolean;
}

export interface LearnedTrainingResult {
  bestCheckpoint: string;
  bestEpoch: number;
  bestValRecovery: number;
  test: CodeEvaluation;
  epochs: LearnedEpochRecord[];
  seconds: number;
  resumedFrom: number;
  /** the last epoch trained when the time limit stopped training before --epochs, else null */
  stoppedEarly: number | null;
}

export interface LearnedTrainingHooks {
  onBatch?: (epoch: number, batch: number, batches: number, loss: number) => void;
  onEpoch?: (r: LearnedEpochRecord) => void;
  command?: string;
}

export const learnedFiles = runFiles;

export interface LearnedTrainingData {
  train: Split;
  validation: Split;
  test: Split;
  classes: string[];
  input: { channels: number; height: number; width: number };
}

/** The code config of a training run; baseModel (the base architecture) resolves --parity-model base. */
export function learnedCodeConfig(cfg: LearnedTrainingConfig, data: LearnedTrainingData, baseModel?: string): LearnedCodeConfig {
  const c: LearnedCodeConfig = {
    family: 'learned',
    k: cfg.k,
    r: cfg.r,
    encoder: cfg.encoder,
    decoder: cfg.decoder,
    input: data.input,
    outputs: data.classes.length,
  };
  if (cfg.encoderOptions) c.encoderOptions = cfg.encoderOptions;
  if (cfg.decoderOptions) c.decoderOptions = cfg.decoderOptions;
  if (cfg.parityModel !== undefined && cfg.parityModel !== 'none') {
    if (cfg.parityModel === 'base' && baseModel === undefined)
      throw new Error(`learnedCodeConfig: parity model 'base' needs the base model's architecture`);
    const arch = resolveParityModel(cfg.parityModel, baseModel ?? '', data.input);
    if (arch !== undefined) c.parityModel = arch;
  }
  return c;
}

/**
 * The r parity models of a joint run, freshly built for the code's parity architecture; with
 * --parity-model base, each gets a copy of F's weights (F is only read).
 */
export function buildJointParityModels(
  cfg: Pick<LearnedTrainingConfig, 'parityModel'>,
  code: LearnedCode,
  base: Module,
): { parity: Module[]; meta: ParityMeta | null } {
  const arch = code.cfg.parityModel;
  if (arch === undefined) {
    if (cfg.parityModel !== undefined && cfg.parityModel !== 'none')
      throw new Error(`--parity-model ${cfg.parityModel}: the code ${code.name} has no parity models (build it with learnedCodeConfig)`);
    return { parity: [], meta: null };
  }
  if (cfg.parityModel === undefined || cfg.parityModel === 'none')
    throw new Error(`${code.name} runs parity models; the training config must name them (parityModel)`);
  if (cfg.parityModel !== 'base' && cfg.parityModel !== arch)
    throw new Error(`--parity-model ${cfg.parityModel} does not match the code's parity models (${arch})`);
  const meta: ParityMeta = { model: arch, input: { ...code.cfg.input, classes: code.cfg.outputs }, count: code.r };
  const parity: Module[] = [];
  try {
    for (let j = 0; j < code.r; j++) {
      const m = buildModel(arch, meta.input);
      parity.push(m);
      if (cfg.parityModel === 'base') {
        try {
          m.loadStateDict(base.stateDict());
        } catch (e) {
          throw new Error(`--parity-model base: the base model's weights do not fit a fresh '${arch}': ${(e as Error).message}`);
        }
      }
      for (const p of m.parameters()) p.requiresGrad_(true);
    }
  } catch (e) {
    for (const m of parity) m.dispose();
    throw e;
  }
  return { parity, meta };
}

function optimizersFor(cfg: LearnedTrainingConfig, code: LearnedCode, parity: readonly Module[]): Optimizer[] {
  const enc = cfg.trainParts !== 'decoder' ? code.encoder.parameters() : [];
  const dec = cfg.trainParts !== 'encoder' ? code.decoder.parameters() : [];
  // parity models are trained whenever there are any (whatever --train says)
  const par = parity.flatMap((m) => m.parameters());
  const o = { lr: cfg.lr, weightDecay: cfg.weightDecay };
  if (cfg.optimizers === 'joint') return [new Adam([...enc, ...dec, ...par], o)];
  return [enc, dec, par].filter((p) => p.length > 0).map((p) => new Adam(p, o));
}

export function trainLearned(
  cfg: LearnedTrainingConfig,
  code: LearnedCode,
  base: Module,
  baseId: BaseIdentity,
  data: LearnedTrainingData,
  outDir: string,
  { resume = false } = {},
  hooks: LearnedTrainingHooks = {},
): LearnedTrainingResult {
  const t0 = performance.now();
  // joint mode: the parity models (built before F is frozen and moved; F is only read)
  const { parity, meta: parityMeta } = buildJointParityModels(cfg, code, base);
  base.to(cfg.device);
  freeze(base);
  const state = codeState(code, parity);
  state.to(cfg.device);
  // parts that are not trained stay fixed
  if (cfg.trainParts === 'decoder') for (const p of code.encoder.parameters()) p.requiresGrad_(false);
  if (cfg.trainParts === 'encoder') for (const p of code.decoder.parameters()) p.requiresGrad_(false);
  const opts = optimizersFor(cfg, code, parity);
  const patterns = code.evaluationPatterns();
  const erased = erasedMask(patterns, code.k, cfg.device).keep();
  // with parity models, the metadata a parity-code checkpoint carries (readCodeCheckpoint, serving)
  const meta = {
    base: baseId,
    dataset: cfg.dataset,
    classes: data.classes,
    training: cfg,
    command: hooks.command ?? null,
    ...(parityMeta ? { parity: parityMeta } : {}),
  };

  const sampler = new GroupSampler({ size: data.train.size, k: cfg.k, groupsPerBatch: cfg.batchSize, seed: cfg.seed });
  const batches = sampler.batchesPerEpoch;
  const lrAt = learningRate(cfg, batches);
  const workers = parity.length > 0 ? { base, parity } : { base };
  let test: CodeEvaluation;
  let run: ReturnType<typeof runEpochs<LearnedEpochRecord>>;
  try {
    run = runEpochs<LearnedEpochRecord>({
      outDir,
      resume,
      epochs: cfg.epochs,
      seed: cfg.seed,
      scoreName: 'valRecovery',
      optimizers: opts,
      readLast: (path) => {
        // the saved code and its parity models (when the run has them) are read as a checkpoint's, then copied in
        const saved = readCodeCheckpoint(path, { parity: parity.length > 0 ? 'required' : 'none' });
        const m = saved.metadata as unknown as { base?: BaseIdentity };
        const free = () => {
          codeState(saved.code, saved.parity).dispose();
          for (const t of saved.extra.values()) t.dispose();
        };
        try {
          if (m.base?.sha256 !== baseId.sha256)
            throw new Error(
              `--resume: ${path} was trained for base model ${m.base?.path} (sha256 ${m.base?.sha256?.slice(0, 12)}), not ${baseId.path}`,
            );
          if (JSON.stringify(saved.code.config()) !== JSON.stringify(code.config()))
            throw new Error(`--resume: ${path} holds ${saved.code.name}, not ${code.name}`);
          state.loadStateDict(codeState(saved.code, saved.parity).stateDict());
        } catch (e) {
          free();
          throw e;
        }
        return { metadata: saved.metadata, extra: saved.extra, dispose: free };
      },
      epoch: (epoch) => {
        const te = performance.now();
        state.train();
        let lossSum = 0;
        let n = 0;
        for (const batch of sampler.batches(epoch)) {
          const l = tidy(() => {
            const g = gatherGroups(data.train, batch);
            const x = cfg.device === 'cpu' ? g.images : g.images.to(cfg.device);
            const y = cfg.device === 'cpu' ? g.labels : g.labels.to(cfg.device);
            for (const o of opts) {
              o.lr = lrAt(epoch, batch.index);
              o.zeroGrad();
            }
            const loss = learnedLoss(code, base, x, y, patterns, erased, cfg.loss, parity);
            loss.backward();
            for (const o of opts) o.step();
            return loss.item();
          });
          if (!Number.isFinite(l)) throw new Error(`epoch ${epoch} batch ${batch.index}: the loss is ${l} (diverged); try a smaller --lr`);
          lossSum += l;
          n++;
          hooks.onBatch?.(epoch, batch.index, batches, l);
        }
        const val = evaluateCode({ code, workers, test: data.validation, classes: data.classes, device: cfg.device, seed: cfg.seed });
        const record: LearnedEpochRecord = {
          epoch,
          trainLoss: lossSum / Math.max(1, n),
          valRecovery: val.degraded.recovery,
          valAccuracy: val.degraded.accuracy,
          seconds: (performance.now() - te) / 1000,
          best: false,
        };
        return { record, score: val.degraded.recovery };
      },
      save: (path, m, extra) => saveCode(path, code, { ...meta, ...m }, extra, parity),
      bestMetadata: (r) => ({ valAccuracy: r.valAccuracy }),
      afterEpoch: (r) => {
        hooks.onEpoch?.(r);
        return cfg.timeLimit !== undefined && (performance.now() - t0) / 1000 > cfg.timeLimit;
      },
    });
    test = testBest(run.bestCheckpoint, cfg, base, data);
  } finally {
    for (const o of opts) o.dispose();
    for (const m of parity) m.dispose();
    erased.dispose();
  }
  return {
    bestCheckpoint: run.bestCheckpoint,
    bestEpoch: run.bestEpoch,
    bestValRecovery: run.bestScore,
    test,
    epochs: run.epochs,
    seconds: (performance.now() - t0) / 1000,
    resumedFrom: run.resumedFrom,
    stoppedEarly: run.stoppedEarly,
  };
}

/** Test metrics of the best-validation code (with its own parity models, if any), recorded in its checkpoint. */
function testBest(path: string, cfg: LearnedTrainingConfig, base: Module, data: LearnedTrainingData): CodeEvaluation {
  const { code: bestCode, metadata, parity, extra } = readCodeCheckpoint(path);
  const state = codeState(bestCode, parity);
  try {
    for (const t of extra.values()) t.dispose();
    state.to(cfg.device);
    const test = evaluateCode({
      code: bestCode,
      workers: parity.length > 0 ? { base, parity } : { base },
      test: data.test,
      classes: data.classes,
      device: cfg.device,
    });
    const { kind: _k, code: _c, ...rest } = metadata;
    void _k;
    void _c;
    saveCode(
      path,
      bestCode,
      {
        ...rest,
        test: {
          recovery: test.degraded.recovery,
          degradedAccuracy: test.degraded.accuracy,
          baseAccuracy: test.baseAccuracy,
          reconstructions: test.degraded.count,
        },
      },
      new Map(),
      parity,
    );
    return test;
  } finally {
    state.dispose();
  }
}
