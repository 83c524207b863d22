// BaseMLP: the 784-200-100-10 fully connected classifier (ReLU between layers) used as the
// base model for MNIST-family experiments. forward() returns raw logits.
import type { Tensor } from '../engine/tensor.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { pipe } from '../nn/pipe.js';

export interface BaseMLPOptions {
  /** input features (default 784 = 28 x 28) */
  inFeatures?: number;
  /** hidden widths (default [200, 100]) */
  hidden?: readonly number[];
  /** classes (default 10) */
  numClasses?: number;
}

export class BaseMLP extends Module {
  readonly layers: Linear[];
  readonly inFeatures: number;
  readonly numClasses: number;

  constructor({ inFeatures = 784, hidden = [200, 100], numClasses = 10 }: BaseMLPOptions = {}) {
    super();
    this.inFeatures = inFeatures;
    this.numClasses = numClasses;
    const widths = [inFeatures, ...hidden, numClasses];
    this.layers = [];
    for (let i = 0; i + 1 < widths.length; i++) {
      // state-dict names fc1, fc2, fc3 (as the usual PyTorch definition of this model)
      this.layers.push(this.registerModule(`fc${i + 1}`, new Linear(widths[i], widths[i + 1])));
    }
  }

  /** x: [N, inFeatures] or [N, C, H, W] with C*H*W = inFeatures (flattened); returns logits [N, numClasses]. */
  forward(x: Tensor): Tensor {
    const last = this.layers.length - 1;
    return pipe(
      x,
      ...(x.rank === 2 ? [] : [(t: Tensor) => t.flatten(1)]),
      ...this.layers.flatMap((layer, i) => (i < last ? [(t: Tensor) => layer.forward(t), (t: Tensor) => t.relu()] : [(t: Tensor) => layer.forward(t)])),
    );
  }
}
