// The localization experiment (issue 17, regression outputs): a synthetic one-object-per-image
// dataset generated with a seed (src/data/synthetic-boxes.ts), a base box regressor F (MSE on
// the box corners, Adam), and a ParM parity model for the addition code (k = 2 by default): the
// parity query is the sum of the k images and F_P is trained so that F_P(sum X_i) ~ sum F(X_i)
// (the ParM target, MSE), so a missing F(X_j) is decoded as F_P(P) - sum of the others. Scored
// with the task-aware metric interface: box IoU of the base model, of the reconstructions
// (degraded mode) and of the default answer (the mean training box).
import { noGrad } from '../engine/autograd.js';
import { manualSeed } from '../engine/runtime.js';
import { tidy } from '../engine/scope.js';
import { mseLoss } from '../engine/ops.js';
import { tensor } from '../engine/tensor.js';
import { Adam } from '../engine/optim/adam.js';
import type { Module } from '../nn/module.js';
import { buildModel } from '../models/registry.js';
import { AdditionCode } from '../codes/addition.js';
import { seededPermutation } from '../data/rng.js';
import { disposeBoxDataset, syntheticBoxes, type BoxDatasetOptions, type BoxSplit } from '../data/synthetic-boxes.js';
import { boxIoU, boxIntersectionOverUnion } from '../eval/task-metric.js';
import { evaluateCodeWithMetric, type MetricEvaluation } from '../eval/metric-evaluation.js';

export interface LocalizationOptions {
  data?: BoxDatasetOptions;
  /** model-zoo architecture of F and F_P (default base-mlp) */
  model?: string;
  /** queries per coding group (default 2) */
  k?: number;
  epochs?: number;
  parityEpochs?: number;
  lr?: number;
  batchSize?: number;
  /** weight init and batch order */
  seed?: number;
  log?: (s: string) => void;
}

export interface LocalizationResult {
  seed: number;
  dataSeed: number;
  model: string;
  k: number;
  /** validation IoU of F after each epoch */
  baseHistory: number[];
  /** validation degraded IoU after each parity epoch */
  parityHistory: number[];
  test: MetricEvaluation;
  seconds: number;
}

function meanIoU(model: Module, s: BoxSplit): number {
  return noGrad(() => tidy(() => boxIoU(model.forward(s.images), s.boxes).mean().item()));
}

/** Train a box regressor with MSE on the corners; returns the validation IoU after each epoch. */
export function trainBoxRegressor(
  model: Module,
  train: BoxSplit,
  validation: BoxSplit,
  o: { epochs: number; lr: number; batchSize: number; seed: number; log?: (s: string) => void },
): number[] {
  const opt = new Adam(model.parameters(), { lr: o.lr });
  const history: number[] = [];
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      model.train();
      const perm = seededPermutation(train.size, o.seed, 'box-regressor', epoch);
      let loss = 0;
      let batches = 0;
      for (let b = 0; b + o.batchSize <= train.size; b += o.batchSize) {
        loss += tidy(() => {
          const idx = tensor(Int32Array.from(perm.subarray(b, b + o.batchSize)), [o.batchSize], { dtype: 'int64' });
          opt.zeroGrad();
          const l = mseLoss(model.forward(train.images.indexSelect(0, idx)), train.boxes.indexSelect(0, idx));
          l.backward();
          opt.step();
          return l.item();
        });
        batches++;
      }
      model.eval();
      history.push(meanIoU(model, validation));
      o.log?.(`base epoch ${epoch}: train MSE ${(loss / batches).toFixed(5)}, validation IoU ${history[history.length - 1].toFixed(4)}`);
    }
  } finally {
    opt.dispose?.();
  }
  return history;
}

/** Train the parity model of an addition code: F_P(sum X_i) ~ sum F(X_i); returns the validation degraded IoU after each epoch. */
export function trainParityRegressor(
  parity: Module,
  base: Module,
  code: AdditionCode,
  train: BoxSplit,
  validation: BoxSplit,
  meanBox: readonly number[],
  o: { epochs: number; lr: number; batchSize: number; seed: number; log?: (s: string) => void },
): number[] {
  const k = code.k;
  const opt = new Adam(parity.parameters(), { lr: o.lr });
  const history: number[] = [];
  base.eval();
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      parity.train();
      const perm = seededPermutation(train.size, o.seed, 'box-parity', epoch);
      const per = o.batchSize * k;
      let loss = 0;
      let batches = 0;
      for (let b = 0; b + per <= train.size; b += per) {
        loss += tidy(() => {
          const idx = tensor(Int32Array.from(perm.subarray(b, b + per)), [per], { dtype: 'int64' });
          const xs = train.images.indexSelect(0, idx);
          const x = xs.reshape([o.batchSize, k, ...xs.shape.slice(1)]);
          const target = noGrad(() => base.forward(xs).reshape([o.batchSize, k, -1]).sum(1));
          const p = code.encode(x)[k].inputs[0];
          opt.zeroGrad();
          const l = mseLoss(parity.forward(p), target);
          l.backward();
          opt.step();
          return l.item();
        });
        batches++;
      }
      const v = evaluateCodeWithMetric({
        code,
        workers: { base, parity: [parity] },
        inputs: validation.images,
        targets: validation.boxes,
        metric: boxIntersectionOverUnion,
        defaultOutput: meanBox,
      });
      history.push(v.degraded);
      o.log?.(`parity epoch ${epoch}: train MSE ${(loss / batches).toFixed(5)}, validation degraded IoU ${v.degraded.toFixed(4)}`);
    }
  } finally {
    opt.dispose?.();
  }
  return history;
}

/** The whole experiment for one seed: data, F, F_P, test evaluation. */
export function runLocalization(o: LocalizationOptions = {}): LocalizationResult {
  const t0 = performance.now();
  const seed = o.seed ?? 1;
  const k = o.k ?? 2;
  const modelName = o.model ?? 'base-mlp';
  const ds = syntheticBoxes(o.data);
  const side = ds.options.side;
  const train = { epochs: o.epochs ?? 10, lr: o.lr ?? 1e-3, batchSize: o.batchSize ?? 64, seed, log: o.log };
  let base: Module | null = null;
  let parity: Module | null = null;
  try {
    manualSeed(seed);
    base = buildModel(modelName, { channels: 1, height: side, width: side, classes: 4 });
    const baseHistory = trainBoxRegressor(base, ds.train, ds.validation, train);
    const code = new AdditionCode(k);
    parity = buildModel(modelName, { channels: 1, height: side, width: side, classes: 4 });
    const parityHistory = trainParityRegressor(parity, base, code, ds.train, ds.validation, ds.meanBox, {
      ...train,
      epochs: o.parityEpochs ?? train.epochs,
    });
    const test = evaluateCodeWithMetric({
      code,
      workers: { base, parity: [parity] },
      inputs: ds.test.images,
      targets: ds.test.boxes,
      metric: boxIntersectionOverUnion,
      defaultOutput: ds.meanBox,
      seed,
    });
    return {
      seed,
      dataSeed: ds.options.seed,
      model: modelName,
      k,
      baseHistory,
      parityHistory,
      test,
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    base?.dispose();
    parity?.dispose();
    disposeBoxDataset(ds);
  }
}
