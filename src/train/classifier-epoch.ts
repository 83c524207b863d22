// One epoch of supervised classification training: seeded shuffling, mini-batches
// gathered natively (indexSelect), optional augmentation, cross-entropy, one optimizer
// step per batch.
import { crossEntropy } from '../engine/ops.js';
import { randperm, type Tensor } from '../engine/tensor.js';
import { tidy } from '../engine/scope.js';
import type { Device } from '../engine/dtype.js';
import type { Optimizer } from '../engine/optim/optimizer.js';
import type { Module } from '../nn/module.js';
import type { Split } from '../data/split.js';

export interface EpochOptions {
  batchSize: number;
  /** called after every batch with the batch loss and accuracy */
  onBatch?: (batchIndex: number, loss: number, correct: number, size: number) => void;
  /** flatten images to [N, features] before the model */
  flatten?: boolean;
  /** train-time augmentation of a batch of images (returns new images) */
  augment?: (images: Tensor) => Tensor;
  /** device the model lives on (batches are moved there) */
  device?: Device;
  /** learning rate for each batch (b = batch index in the epoch), e.g. a schedule */
  lrAt?: (b: number) => number;
}

export interface EpochResult {
  meanLoss: number;
  accuracy: number;
  batches: number;
  seconds: number;
}

export function trainEpoch(model: Module, opt: Optimizer, data: Split, o: EpochOptions): EpochResult {
  const t0 = performance.now();
  model.train();
  const perm = randperm(data.size);
  const batches = Math.ceil(data.size / o.batchSize);
  const device = o.device ?? 'cpu';
  let total = 0;
  let correctTotal = 0;
  try {
    for (let b = 0; b < batches; b++) {
      const start = b * o.batchSize;
      const len = Math.min(o.batchSize, data.size - start);
      if (o.lrAt) opt.lr = o.lrAt(b);
      const [loss, correct] = tidy(() => {
        const idx = perm.narrow(0, start, len);
        let x = data.images.indexSelect(0, idx);
        if (o.augment) x = o.augment(x);
        if (o.flatten) x = x.flatten(1);
        let y = data.labels.indexSelect(0, idx);
        if (device !== 'cpu') {
          x = x.to(device);
          y = y.to(device);
        }
        opt.zeroGrad();
        const logits = model.forward(x);
        const l = crossEntropy(logits, y);
        l.backward();
        opt.step();
        return [l.item(), logits.detach().argmax(1).eq(y).sum().item()];
      });
      total += loss;
      correctTotal += correct;
      o.onBatch?.(b, loss, correct, len);
    }
  } finally {
    perm.dispose();
  }
  return { meanLoss: total / batches, accuracy: correctTotal / data.size, batches, seconds: (performance.now() - t0) / 1000 };
}
