// VGG-11 with batch normalisation (configuration "A" of Simonyan & Zisserman), CIFAR
// layout: 3x3 convs 64, M, 128, M, 256, 256, M, 512, 512, M, 512, 512, M, then a linear
// classifier on the 512 features. 28x28 inputs (MNIST family) are handled by an adaptive
// average pool before the classifier, so the last max-pool may be skipped.
import type { Tensor } from '../engine/tensor.js';
import { BatchNorm2d } from '../nn/batchnorm2d.js';
import { Conv2d } from '../nn/conv2d.js';
import { Linear } from '../nn/linear.js';
import { AdaptiveAvgPool2d, Flatten, MaxPool2d, ReLU } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { pipe } from '../nn/pipe.js';

const CONFIG: (number | 'M')[] = [64, 'M', 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'];

export class VGG11 extends Module {
  readonly features: Sequential;
  readonly classifier: Sequential;
  constructor(
    readonly inChannels = 3,
    readonly numClasses = 10,
    readonly inputSize = 32,
  ) {
    super();
    const layers: Module[] = [];
    let c = inChannels;
    let size = inputSize;
    for (const v of CONFIG) {
      if (v === 'M') {
        if (size >= 2) {
          layers.push(new MaxPool2d(2));
          size = Math.floor(size / 2);
        }
      } else {
        layers.push(new Conv2d(c, v, 3, { padding: 1 }), new BatchNorm2d(v), new ReLU());
        c = v;
      }
    }
    this.features = this.registerModule('features', new Sequential(...layers));
    this.classifier = this.registerModule(
      'classifier',
      new Sequential(new AdaptiveAvgPool2d(1), new Flatten(), new Linear(512, numClasses)),
    );
  }
  forward(x: Tensor): Tensor {
    return pipe(
      x,
      (t) => this.features.forward(t),
      (t) => this.classifier.forward(t),
    );
  }
}
