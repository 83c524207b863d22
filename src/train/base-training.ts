// Training a base model F: epochs over the train split, validation after each epoch, the
// best-validation checkpoint kept, a JSONL log, and resumable state (model, optimizer,
// epoch) after every epoch. Deterministic for a seed, also across a resume.
import { learningRate } from './lr-schedule.js';
import { runFiles } from './run-files.js';
import { appendFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { Adam } from '../engine/optim/adam.js';
import { SGD } from '../engine/optim/sgd.js';
import type { Optimizer, OptimizerState } from '../engine/optim/optimizer.js';
import { manualSeed } from '../engine/runtime.js';
import type { Device } from '../engine/dtype.js';
import type { Tensor } from '../engine/tensor.js';
import { readCheckpoint, saveCheckpoint } from '../nn/checkpoint.js';
import type { Module } from '../nn/module.js';
import type { Split } from '../data/split.js';
import { classifierAccuracy } from '../eval/classifier-accuracy.js';
import { trainEpoch } from './classifier-epoch.js';

export interface BaseTrainingConfig {
  dataset: string;
  model: string;
  epochs: number;
  batchSize: number;
  optimizer: 'adam' | 'sgd';
  lr: number;
  weightDecay: number;
  /** SGD only */
  momentum: number;
  schedule: 'constant' | 'cosine';
  seed: number;
  device: Device;
}

export interface BaseTrainingData {
  train: Split;
  validation: Split;
  test: Split;
  classes: string[];
  /** recorded in the checkpoint so evaluation and serving normalise identically */
  normalization: { mean: readonly number[]; std: readonly number[] };
  input: { channels: number; height: number; width: number };
  /** per-epoch train augmentation factory (seeded by the epoch) */
  augmentFor?: (epoch: number) => ((images: Tensor) => Tensor) | undefined;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valAccuracy: number;
  lr: number;
  seconds: number;
  best: boolean;
}

export interface BaseTrainingHooks {
  onBatch?: (epoch: number, batch: number, batches: number, loss: number) => void;
  onEpoch?: (r: EpochRecord) => void;
  /** the command line to record in the checkpoint */
  command?: string;
  /** the augmentation used, recorded in the checkpoint */
  augment?: string;
}

export interface BaseTrainingResult {
  bestCheckpoint: string;
  bestEpoch: number;
  bestValAccuracy: number;
  testAccuracy: number;
  perClass: { name: string; accuracy: number }[];
  epochs: EpochRecord[];
  seconds: number;
  resumedFrom: number;
}

export const files = runFiles;

function makeOptimizer(cfg: BaseTrainingConfig, params: Tensor[]): Optimizer {
  return cfg.optimizer === 'adam'
    ? new Adam(params, { lr: cfg.lr, weightDecay: cfg.weightDecay })
    : new SGD(params, { lr: cfg.lr, momentum: cfg.momentum, nesterov: cfg.momentum > 0, weightDecay: cfg.weightDecay });
}


export function trainBase(cfg: BaseTrainingConfig, model: Module, data: BaseTrainingData, outDir: string, { resume = false } = {}, hooks: BaseTrainingHooks = {}): BaseTrainingResult {
  const t0 = performance.now();
  mkdirSync(outDir, { recursive: true });
  const f = files(outDir);
  model.to(cfg.device);
  const opt = makeOptimizer(cfg, model.parameters());
  let startEpoch = 1;
  let best = { epoch: 0, valAccuracy: -1 };
  const history: EpochRecord[] = [];
  const baseMeta = {
    kind: 'base',
    dataset: cfg.dataset,
    model: cfg.model,
    classes: data.classes,
    normalization: data.normalization,
    input: data.input,
    config: cfg,
    command: hooks.command ?? null,
    augment: hooks.augment ?? 'none',
  };

  if (resume) {
    if (!existsSync(f.last)) throw new Error(`--resume: ${f.last} does not exist (nothing to resume in ${outDir})`);
    const ck = readCheckpoint(f.last);
    const m = ck.metadata as { config?: BaseTrainingConfig; epoch?: number; best?: typeof best; optimizer?: Omit<OptimizerState, 'tensors'>; history?: EpochRecord[] };
    if (m.config?.model !== cfg.model || m.config?.dataset !== cfg.dataset) {
      throw new Error(`--resume: ${f.last} was trained as ${m.config?.model} on ${m.config?.dataset}, not ${cfg.model} on ${cfg.dataset}`);
    }
    model.loadStateDict(ck.state);
    if (m.optimizer) opt.loadStateDict({ ...m.optimizer, tensors: Object.fromEntries(ck.extra) });
    for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
    startEpoch = (m.epoch ?? 0) + 1;
    best = m.best ?? best;
    history.push(...(m.history ?? []));
  } else {
    rmSync(f.log, { force: true });
  }

  const batches = Math.ceil(data.train.size / cfg.batchSize);
  const lrOf = learningRate(cfg, batches);
  try {
    for (let epoch = startEpoch; epoch <= cfg.epochs; epoch++) {
      manualSeed(cfg.seed * 100003 + epoch);
      const r = trainEpoch(model, opt, data.train, {
        batchSize: cfg.batchSize,
        device: cfg.device,
        augment: data.augmentFor?.(epoch),
        lrAt: (b) => lrOf(epoch, b),
        onBatch: (b, loss) => hooks.onBatch?.(epoch, b, batches, loss),
      });
      const val = classifierAccuracy(model, data.validation, { numClasses: data.classes.length, device: cfg.device });
      const isBest = val.accuracy > best.valAccuracy;
      const rec: EpochRecord = { epoch, trainLoss: r.meanLoss, trainAccuracy: r.accuracy, valAccuracy: val.accuracy, lr: lrOf(epoch, 0), seconds: r.seconds, best: isBest };
      history.push(rec);
      if (isBest) {
        best = { epoch, valAccuracy: val.accuracy };
        saveCheckpoint(f.best, model, { ...baseMeta, epoch, valAccuracy: val.accuracy, created: new Date().toISOString() });
      }
      const os = opt.stateDict();
      saveCheckpoint(f.last, model, { ...baseMeta, epoch, best, history, optimizer: { steps: os.steps, hyper: os.hyper } }, new Map(Object.entries(os.tensors)));
      appendFileSync(f.log, JSON.stringify({ ...rec, time: new Date().toISOString() }) + '\n');
      hooks.onEpoch?.(rec);
    }
  } finally {
    opt.dispose();
  }
  if (best.epoch === 0) throw new Error('no epoch was trained (is --epochs below the resumed epoch?)');
  // final test accuracy of the best-validation model, recorded in its checkpoint
  const ck = readCheckpoint(f.best);
  model.loadStateDict(ck.state);
  for (const t of ck.state.values()) t.dispose();
  const test = classifierAccuracy(model, data.test, { numClasses: data.classes.length, device: cfg.device });
  const perClass = test.perClass.map((c, i) => ({ name: data.classes[i], accuracy: c.accuracy }));
  saveCheckpoint(f.best, model, { ...ck.metadata, testAccuracy: test.accuracy, perClass });
  return {
    bestCheckpoint: f.best,
    bestEpoch: best.epoch,
    bestValAccuracy: best.valAccuracy,
    testAccuracy: test.accuracy,
    perClass,
    epochs: history,
    seconds: (performance.now() - t0) / 1000,
    resumedFrom: startEpoch,
  };
}
