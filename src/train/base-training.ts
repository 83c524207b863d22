// Training a base model F: epochs over the train split, validation after each epoch, the
// best-validation checkpoint kept, a JSONL log, and resumable state (model, optimizer,
// epoch) after every epoch. Deterministic for a seed, also across a resume.
import { learningRate } from './lr-schedule.js';
import { runFiles } from './run-files.js';
import { Adam } from '../engine/optim/adam.js';
import { SGD } from '../engine/optim/sgd.js';
import type { Optimizer } from '../engine/optim/optimizer.js';
import type { Device } from '../engine/dtype.js';
import type { Tensor } from '../engine/tensor.js';
import { readCheckpoint, saveCheckpoint } from '../nn/checkpoint.js';
import type { Module } from '../nn/module.js';
import type { Split } from '../data/split.js';
import { classifierAccuracy } from '../eval/classifier-accuracy.js';
import { trainEpoch } from './classifier-epoch.js';
import { runEpochs } from './run.js';

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

export function trainBase(
  cfg: BaseTrainingConfig,
  model: Module,
  data: BaseTrainingData,
  outDir: string,
  { resume = false } = {},
  hooks: BaseTrainingHooks = {},
): BaseTrainingResult {
  const t0 = performance.now();
  model.to(cfg.device);
  const opt = makeOptimizer(cfg, model.parameters());
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
  const batches = Math.ceil(data.train.size / cfg.batchSize);
  const lrOf = learningRate(cfg, batches);
  let run: ReturnType<typeof runEpochs<EpochRecord>>;
  try {
    run = runEpochs<EpochRecord>({
      outDir,
      resume,
      epochs: cfg.epochs,
      seed: cfg.seed,
      scoreName: 'valAccuracy',
      optimizers: [opt],
      readLast: (path) => {
        const ck = readCheckpoint(path);
        const m = ck.metadata as { config?: BaseTrainingConfig };
        const free = () => {
          for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
        };
        try {
          if (m.config?.model !== cfg.model || m.config?.dataset !== cfg.dataset) {
            throw new Error(
              `--resume: ${path} was trained as ${m.config?.model} on ${m.config?.dataset}, not ${cfg.model} on ${cfg.dataset}`,
            );
          }
          model.loadStateDict(ck.state);
        } catch (e) {
          free();
          throw e;
        }
        return { metadata: ck.metadata, extra: ck.extra, dispose: free };
      },
      epoch: (epoch) => {
        const r = trainEpoch(model, opt, data.train, {
          batchSize: cfg.batchSize,
          device: cfg.device,
          augment: data.augmentFor?.(epoch),
          lrAt: (b) => lrOf(epoch, b),
          onBatch: (b, loss) => hooks.onBatch?.(epoch, b, batches, loss),
        });
        const val = classifierAccuracy(model, data.validation, { numClasses: data.classes.length, device: cfg.device });
        const record: EpochRecord = {
          epoch,
          trainLoss: r.meanLoss,
          trainAccuracy: r.accuracy,
          valAccuracy: val.accuracy,
          lr: lrOf(epoch, 0),
          seconds: r.seconds,
          best: false,
        };
        return { record, score: val.accuracy };
      },
      save: (path, meta, extra) => saveCheckpoint(path, model, { ...baseMeta, ...meta }, extra),
      afterEpoch: (r) => void hooks.onEpoch?.(r),
    });
  } finally {
    opt.dispose();
  }
  // final test accuracy of the best-validation model, recorded in its checkpoint
  const ck = readCheckpoint(run.bestCheckpoint);
  model.loadStateDict(ck.state);
  for (const t of ck.state.values()) t.dispose();
  const test = classifierAccuracy(model, data.test, { numClasses: data.classes.length, device: cfg.device });
  const perClass = test.perClass.map((c, i) => ({ name: data.classes[i], accuracy: c.accuracy }));
  saveCheckpoint(run.bestCheckpoint, model, { ...ck.metadata, testAccuracy: test.accuracy, perClass });
  return {
    bestCheckpoint: run.bestCheckpoint,
    bestEpoch: run.bestEpoch,
    bestValAccuracy: run.bestScore,
    testAccuracy: test.accuracy,
    perClass,
    epochs: run.epochs,
    seconds: (performance.now() - t0) / 1000,
    resumedFrom: run.resumedFrom,
  };
}
