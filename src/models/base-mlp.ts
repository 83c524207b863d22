// BaseMLP: the 784-200-100-10 fully connected classifier (ReLU between layers) used as the
// base model for MNIST-family experiments. forward() returns raw logits.
import type { Tensor } from '../engine/tensor.js';
import { dropout } from '../engine/ops.js';
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
  /** dropout probability after each hidden layer in training mode (default 0: none) */
  dropout?: number;
}

export class BaseMLP extends Module {
  readonly layers: Linear[];
  readonly inFeatures: number;
  readonly numClasses: number;
  readonly dropout: number;

  constructor({ inFeatures = 784, hidden = [200, 100], numClasses = 10, dropout = 0 }: BaseMLPOptions = {}) {
    super();
    if (!(dropout >= 0 && dropout < 1)) throw new RangeError(`BaseMLP: dropout must be in [0, 1), got ${dropout}`);
    this.inFeatures = inFeatures;
    this.numClasses = numClasses;
    this.dropout = dropout;
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
    const relu = (t: Tensor) => t.relu();
    const hidden = this.dropout > 0 && this.training ? [relu, (t: Tensor) => dropout(t, this.dropout, true)] : [relu];
    return pipe(
      x,
      ...(x.rank === 2 ? [] : [(t: Tensor) => t.flatten(1)]),
      ...this.layers.flatMap((layer, i) => (i < last ? [(t: Tensor) => layer.forward(t), ...hidden] : [(t: Tensor) => layer.forward(t)])),
    );
  }
}
