// Multinomial logistic regression: one linear map from the flattened image to class logits.
import type { Tensor } from '../engine/tensor.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { pipe } from '../nn/pipe.js';

export class LogisticRegression extends Module {
  readonly fc: Linear;
  constructor(
    readonly inFeatures = 784,
    readonly numClasses = 10,
  ) {
    super();
    this.fc = this.registerModule('fc', new Linear(inFeatures, numClasses));
  }
  /** x: [N, features] or [N, C, H, W]; returns logits [N, classes]. */
  forward(x: Tensor): Tensor {
    if (x.rank === 2) return this.fc.forward(x);
    return pipe(
      x,
      (t) => t.flatten(1),
      (t) => this.fc.forward(t),
    );
  }
}
