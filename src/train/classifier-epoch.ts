// One epoch of supervised classification training: seeded shuffling, mini-batches
// gathered natively (indexSelect), cross-entropy, one optimizer step per batch.
import { crossEntropy } from '../engine/ops.js';
import { randperm } from '../engine/tensor.js';
import { tidy } from '../engine/scope.js';
import type { Optimizer } from '../engine/optim/optimizer.js';
import type { Module } from '../nn/module.js';
import type { Split } from '../data/mnist-family.js';

export interface EpochOptions {
  batchSize: number;
  /** called after every batch with the batch loss */
  onBatch?: (batchIndex: number, loss: number) => void;
  /** flatten images to [N, features] before the model (MLPs) */
  flatten?: boolean;
}

export interface EpochResult {
  meanLoss: number;
  batches: number;
  seconds: number;
}

export function trainEpoch(model: Module, opt: Optimizer, data: Split, o: EpochOptions): EpochResult {
  const t0 = performance.now();
  model.train();
  const perm = randperm(data.size);
  const batches = Math.ceil(data.size / o.batchSize);
  let total = 0;
  try {
    for (let b = 0; b < batches; b++) {
      const start = b * o.batchSize;
      const len = Math.min(o.batchSize, data.size - start);
      const loss = tidy(() => {
        const idx = perm.narrow(0, start, len);
        const x0 = data.images.indexSelect(0, idx);
        const x = o.flatten ? x0.flatten(1) : x0;
        const y = data.labels.indexSelect(0, idx);
        opt.zeroGrad();
        const l = crossEntropy(model.forward(x), y);
        l.backward();
        opt.step();
        return l.item();
      });
      total += loss;
      o.onBatch?.(b, loss);
    }
  } finally {
    perm.dispose();
  }
  return { meanLoss: total / batches, batches, seconds: (performance.now() - t0) / 1000 };
}
