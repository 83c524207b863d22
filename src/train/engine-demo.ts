// The engine demo's training (`coded demo`): Base-MLP on an MNIST-family split with Adam for a
// few epochs, the test accuracy after each; no run directory or checkpoints (the full training
// runs are `coded train base`, src/train/base-training.ts).
import { BaseMLP } from '../models/base-mlp.js';
import { Adam } from '../engine/optim/adam.js';
import type { Split } from '../data/split.js';
import { trainEpoch } from './classifier-epoch.js';
import { classifierAccuracy } from '../eval/classifier-accuracy.js';

export interface DemoEpoch {
  epoch: number;
  loss: number;
  seconds: number;
  testAccuracy: number;
}

export interface DemoTrainingResult {
  history: DemoEpoch[];
  testAccuracy: number;
  perClass: { accuracy: number }[];
}

/** Train a fresh Base-MLP (Adam lr 1e-3, L2 1e-5, batch 64) for `epochs`, reporting each batch's loss and each epoch. */
export function trainDemoMlp(
  train: Split,
  test: Split,
  o: {
    epochs: number;
    onEpochStart?: (epoch: number, batches: number) => void;
    onBatch?: (loss: number) => void;
    onEpoch?: (e: DemoEpoch) => void;
  },
): DemoTrainingResult {
  const model = new BaseMLP();
  const opt = new Adam(model.parameters(), { lr: 1e-3, weightDecay: 1e-5 });
  const batchSize = 64;
  const history: DemoEpoch[] = [];
  try {
    for (let epoch = 1; epoch <= o.epochs; epoch++) {
      o.onEpochStart?.(epoch, Math.ceil(train.size / batchSize));
      const r = trainEpoch(model, opt, train, { batchSize, flatten: true, onBatch: (_b, loss) => o.onBatch?.(loss) });
      const acc = classifierAccuracy(model, test, { flatten: true });
      const e = { epoch, loss: r.meanLoss, seconds: r.seconds, testAccuracy: acc.accuracy };
      history.push(e);
      o.onEpoch?.(e);
    }
    const final = classifierAccuracy(model, test, { flatten: true });
    return { history, testAccuracy: final.accuracy, perClass: final.perClass };
  } finally {
    opt.dispose();
    model.dispose();
  }
}
