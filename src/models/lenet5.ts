// LeNet-5 (LeCun et al. 1998) with ReLU and max pooling, for 1x28x28 inputs:
// conv 5x5 (6, padding 2) -> pool -> conv 5x5 (16) -> pool -> 120 -> 84 -> classes.
import type { Tensor } from '../engine/tensor.js';
import { Conv2d } from '../nn/conv2d.js';
import { Linear } from '../nn/linear.js';
import { Flatten, MaxPool2d, ReLU } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { pipe } from '../nn/pipe.js';

export class LeNet5 extends Module {
  readonly features: Sequential;
  readonly classifier: Sequential;
  constructor(
    readonly inChannels = 1,
    readonly numClasses = 10,
  ) {
    super();
    this.features = this.registerModule(
      'features',
      new Sequential(
        new Conv2d(inChannels, 6, 5, { padding: 2 }),
        new ReLU(),
        new MaxPool2d(2),
        new Conv2d(6, 16, 5),
        new ReLU(),
        new MaxPool2d(2),
      ),
    );
    this.classifier = this.registerModule(
      'classifier',
      new Sequential(new Flatten(), new Linear(16 * 5 * 5, 120), new ReLU(), new Linear(120, 84), new ReLU(), new Linear(84, numClasses)),
    );
  }
  /** x: [N, C, 28, 28]; returns logits [N, classes]. */
  forward(x: Tensor): Tensor {
    return pipe(
      x,
      (t) => this.features.forward(t),
      (t) => this.classifier.forward(t),
    );
  }
}
