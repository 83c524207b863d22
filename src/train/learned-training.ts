// Training a learned code through the frozen base model F (seed 000): each step takes G
// coding groups of k images, encodes r parities, runs F on the k originals and the r
// parities, then decodes every erasure pattern of up to r missing outputs (except the
// all-parity ones) in one vectorised decoder pass. The loss is computed only on the erased
// data slots. Gradients flow through F into the encoder; F's parameters are frozen
// (requiresGrad off, never given to an optimizer, evaluation mode).
import { runFiles } from './run-files.js';
import { appendFileSync, closeSync, existsSync, mkdirSync, openSync, readSync, rmSync } from 'node:fs';
import { fileSha256 } from '../models/base-checkpoint.js';
import { noGrad } from '../engine/autograd.js';
import { Adam } from '../engine/optim/adam.js';
import type { Optimizer, OptimizerState } from '../engine/optim/optimizer.js';
import { manualSeed } from '../engine/runtime.js';
import { tidy } from '../engine/scope.js';
import { tensor, type Tensor } from '../engine/tensor.js';
import type { Device } from '../engine/dtype.js';
import type { Module } from '../nn/module.js';
import type { Split } from '../data/split.js';
import { GroupSampler, gatherGroups } from '../data/group-sampler.js';
import { allOutputs, LearnedCode, type LearnedCodeConfig } from '../codes/learned.js';
import { loadCode, saveCode } from '../codes/registry.js';
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
}

export interface BaseIdentity {
  path: string;
  sha256: string;
  dataset: string;
  model: string;
  testAccuracy?: number;
}

export { fileSha256 };

/** The base checkpoint's identity recorded in a code checkpoint (path as given, as parity checkpoints do). */
export function baseIdentity(path: string, meta: { dataset?: string; model?: string; testAccuracy?: number }): BaseIdentity {
  return { path, sha256: fileSha256(path), dataset: String(meta.dataset), model: String(meta.model), testAccuracy: meta.testAccuracy };
}

/** Whether a safetensors file holds a learned code (reads only its JSON header). */
export function isLearnedCheckpoint(path: string): boolean {
  try {
    const fd = openSync(path, 'r');
    try {
      const len = Buffer.alloc(8);
      readSync(fd, len, 0, 8, 0);
      const n = Number(len.readBigUInt64LE(0));
      if (!(n > 0 && n < 100_000_000)) return false;
      const head = Buffer.alloc(n);
      readSync(fd, head, 0, n, 8);
      const coded = (JSON.parse(head.toString('utf8')) as { __metadata__?: { coded?: string } }).__metadata__?.coded;
      if (coded === undefined) return false;
      const meta = JSON.parse(coded) as { kind?: string; code?: { family?: string } };
      return meta.kind === 'code' && meta.code?.family === 'learned';
    } finally {
      closeSync(fd);
    }
  } catch {
    return false;
  }
}

/**
 * Per-slot loss of reconstructions rec [P, G, k, m] against the base outputs target [G, k, m]
 * or labels [G, k], weighted by erased [P, k] (1 where the data slot is missing) and averaged
 * over the erased slots only. Available slots contribute nothing (not even gradients).
 */
export function erasedSlotLoss(rec: Tensor, target: Tensor, labels: Tensor, erased: Tensor, loss: LearnedLoss): Tensor {
  return tidy(() => {
    const [P, G, k] = rec.shape;
    let perSlot: Tensor; // [P, G, k]
    if (loss === 'mse-base') {
      perSlot = rec.sub(target.unsqueeze(0)).square().mean(3);
    } else if (loss === 'kl-base') {
      // KL(softmax(F(X)) || softmax(rec)), as kl_div(log_softmax(rec), softmax(F(X)))
      const q = target.softmax(-1).unsqueeze(0);
      const logq = target.logSoftmax(-1).unsqueeze(0);
      perSlot = q.mul(logq.sub(rec.logSoftmax(-1))).sum(3);
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
  return tensor(patterns.flatMap((p) => p.slice(0, k).map((a) => (a ? 0 : 1))), [patterns.length, k], { device });
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
export function learnedLoss(code: LearnedCode, base: Module, images: Tensor, labels: Tensor, patterns: readonly Availability[], erased: Tensor, loss: LearnedLoss): Tensor {
  return tidy(() => {
    const [G, k, C, H, W] = images.shape;
    // F on the originals: nothing trainable upstream, so no graph
    const data = noGrad(() => base.forward(images.reshape([G * k, C, H, W])).reshape([G, k, -1]));
    const parities = code.parities(images); // [G, r, C, H, W], differentiable
    const par = base.forward(parities.reshape([G * code.r, C, H, W])).reshape([G, code.r, -1]);
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

export function learnedCodeConfig(cfg: LearnedTrainingConfig, data: LearnedTrainingData): LearnedCodeConfig {
  const c: LearnedCodeConfig = {
    family: 'learned', k: cfg.k, r: cfg.r, encoder: cfg.encoder, decoder: cfg.decoder,
    input: data.input, outputs: data.classes.length,
  };
  if (cfg.encoderOptions) c.encoderOptions = cfg.encoderOptions;
  if (cfg.decoderOptions) c.decoderOptions = cfg.decoderOptions;
  return c;
}

function optimizersFor(cfg: LearnedTrainingConfig, code: LearnedCode): Optimizer[] {
  const enc = cfg.trainParts !== 'decoder' ? code.encoder.parameters() : [];
  const dec = cfg.trainParts !== 'encoder' ? code.decoder.parameters() : [];
  const o = { lr: cfg.lr, weightDecay: cfg.weightDecay };
  if (cfg.optimizers === 'joint') return [new Adam([...enc, ...dec], o)];
  return [enc, dec].filter((p) => p.length > 0).map((p) => new Adam(p, o));
}

export function trainLearned(cfg: LearnedTrainingConfig, code: LearnedCode, base: Module, baseId: BaseIdentity, data: LearnedTrainingData, outDir: string, { resume = false } = {}, hooks: LearnedTrainingHooks = {}): LearnedTrainingResult {
  const t0 = performance.now();
  mkdirSync(outDir, { recursive: true });
  const f = learnedFiles(outDir);
  base.to(cfg.device);
  freeze(base);
  for (const [, m] of code.modules()) m.to(cfg.device);
  // parts that are not trained stay fixed
  if (cfg.trainParts === 'decoder') for (const p of code.encoder.parameters()) p.requiresGrad_(false);
  if (cfg.trainParts === 'encoder') for (const p of code.decoder.parameters()) p.requiresGrad_(false);
  const opts = optimizersFor(cfg, code);
  const patterns = code.evaluationPatterns();
  const erased = erasedMask(patterns, code.k, cfg.device).keep();
  let startEpoch = 1;
  let stoppedEarly: number | null = null;
  let best = { epoch: 0, valRecovery: -1 };
  const history: LearnedEpochRecord[] = [];
  const meta = { base: baseId, dataset: cfg.dataset, classes: data.classes, training: cfg, command: hooks.command ?? null };

  const sampler = new GroupSampler({ size: data.train.size, k: cfg.k, groupsPerBatch: cfg.batchSize, seed: cfg.seed });
  const batches = sampler.batchesPerEpoch;
  const totalSteps = cfg.epochs * batches;
  const lrAt = (epoch: number, b: number): number =>
    cfg.schedule === 'cosine' ? 0.5 * cfg.lr * (1 + Math.cos((Math.PI * ((epoch - 1) * batches + b)) / totalSteps)) : cfg.lr;
  const workers = { base };
  try {
    if (resume) {
      if (!existsSync(f.last)) throw new Error(`--resume: ${f.last} does not exist (nothing to resume in ${outDir})`);
      const { code: saved, metadata, extra } = loadCode(f.last);
      const m = metadata as unknown as { base?: BaseIdentity; training?: LearnedTrainingConfig; epoch?: number; best?: typeof best; history?: LearnedEpochRecord[]; optimizers?: Omit<OptimizerState, 'tensors'>[] };
      try {
        if (m.base?.sha256 !== baseId.sha256) throw new Error(`--resume: ${f.last} was trained for base model ${m.base?.path} (sha256 ${m.base?.sha256?.slice(0, 12)}), not ${baseId.path}`);
        if (JSON.stringify(saved.config()) !== JSON.stringify(code.config())) throw new Error(`--resume: ${f.last} holds ${saved.name}, not ${code.name}`);
        for (const [name, mod] of saved.modules()) code.modules().get(name)!.loadStateDict(mod.stateDict());
        (m.optimizers ?? []).forEach((os, i) => {
          const prefix = `optim${i}.`;
          const tensors: Record<string, Tensor> = {};
          for (const [key, t] of extra) if (key.startsWith(prefix)) tensors[key.slice(prefix.length)] = t;
          opts[i]?.loadStateDict({ ...os, tensors });
        });
      } finally {
        for (const [, mod] of saved.modules()) mod.dispose();
        for (const t of extra.values()) t.dispose();
      }
      startEpoch = (m.epoch ?? 0) + 1;
      best = m.best ?? best;
      history.push(...(m.history ?? []));
    } else {
      rmSync(f.log, { force: true });
    }

    for (let epoch = startEpoch; epoch <= cfg.epochs; epoch++) {
      manualSeed(cfg.seed * 100003 + epoch);
      const te = performance.now();
      for (const [, m] of code.modules()) m.train();
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
          const loss = learnedLoss(code, base, x, y, patterns, erased, cfg.loss);
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
      const isBest = val.degraded.recovery > best.valRecovery;
      const rec: LearnedEpochRecord = {
        epoch, trainLoss: lossSum / Math.max(1, n), valRecovery: val.degraded.recovery, valAccuracy: val.degraded.accuracy,
        seconds: (performance.now() - te) / 1000, best: isBest,
      };
      history.push(rec);
      if (isBest) {
        best = { epoch, valRecovery: val.degraded.recovery };
        saveCode(f.best, code, { ...meta, epoch, valRecovery: val.degraded.recovery, valAccuracy: val.degraded.accuracy, created: new Date().toISOString() });
      }
      const extra = new Map<string, Tensor>();
      const optMeta = opts.map((o, i) => {
        const s = o.stateDict();
        for (const [key, t] of Object.entries(s.tensors)) extra.set(`optim${i}.${key}`, t);
        return { steps: s.steps, hyper: s.hyper };
      });
      saveCode(f.last, code, { ...meta, epoch, best, history, optimizers: optMeta }, extra);
      appendFileSync(f.log, JSON.stringify({ ...rec, time: new Date().toISOString() }) + '\n');
      hooks.onEpoch?.(rec);
      if (cfg.timeLimit !== undefined && (performance.now() - t0) / 1000 > cfg.timeLimit && epoch < cfg.epochs) {
        stoppedEarly = epoch;
        break;
      }
    }
  } finally {
    for (const o of opts) o.dispose();
    erased.dispose();
  }
  if (best.epoch === 0) throw new Error('no epoch was trained (is --epochs below the resumed epoch?)');
  // test metrics of the best-validation code, recorded in its checkpoint
  const { code: bestCode, metadata } = loadCode(f.best);
  let test: CodeEvaluation;
  try {
    for (const [, m] of bestCode.modules()) m.to(cfg.device);
    test = evaluateCode({ code: bestCode, workers, test: data.test, classes: data.classes, device: cfg.device });
    const { kind: _k, code: _c, ...rest } = metadata;
    void _k;
    void _c;
    saveCode(f.best, bestCode, {
      ...rest,
      test: { recovery: test.degraded.recovery, degradedAccuracy: test.degraded.accuracy, baseAccuracy: test.baseAccuracy, reconstructions: test.degraded.count },
    });
  } finally {
    for (const [, m] of bestCode.modules()) m.dispose();
  }
  return { bestCheckpoint: f.best, bestEpoch: best.epoch, bestValRecovery: best.valRecovery, test, epochs: history, seconds: (performance.now() - t0) / 1000, resumedFrom: startEpoch, stoppedEarly };
}
