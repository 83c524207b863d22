// ConvEncoder: the learned-code encoder that maps k stacked input images [N, k, H, W] to
// one parity image [N, outChannels, H, W]. Six 3x3 convolutions with dilations
// 1, 1, 2, 4, 8, 1 and 'same' padding (the receptive field grows to 35 x 35 without
// losing resolution), then a 1x1 convolution; ReLU between layers, none after the last.
import type { Tensor } from '../engine/tensor.js';
import { Conv2d } from '../nn/conv2d.js';
import { ReLU } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';

export interface ConvEncoderOptions {
  /** input images coded together (input channels) */
  k: number;
  /** hidden channels (default 20 * k) */
  hidden?: number;
  /** output channels (default 1) */
  outChannels?: number;
  /** dilations of the 3x3 layers (default [1, 1, 2, 4, 8, 1]) */
  dilations?: readonly number[];
}

export class ConvEncoder extends Module {
  readonly k: number;
  readonly hidden: number;
  readonly outChannels: number;
  readonly net: Sequential;

  constructor({ k, hidden = 20 * k, outChannels = 1, dilations = [1, 1, 2, 4, 8, 1] }: ConvEncoderOptions) {
    super();
    if (!(Number.isInteger(k) && k >= 1)) throw new RangeError(`ConvEncoder: k must be a positive integer, got ${k}`);
    this.k = k;
    this.hidden = hidden;
    this.outChannels = outChannels;
    const layers: Module[] = [];
    let c = k;
    for (const d of dilations) {
      layers.push(new Conv2d(c, hidden, 3, { padding: 'same', dilation: d }), new ReLU());
      c = hidden;
    }
    layers.push(new Conv2d(c, outChannels, 1));
    this.net = this.registerModule('net', new Sequential(...layers));
  }

  /** x: [N, k, H, W] -> [N, outChannels, H, W]. */
  forward(x: Tensor): Tensor {
    return this.net.forward(x);
  }
}
