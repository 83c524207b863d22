import { empty, type Tensor } from '../engine/tensor.js';
import { conv2d, type Pair } from '../engine/ops.js';
import { kaimingUniform_, uniform_ } from '../engine/init.js';
import { Module } from './module.js';

export interface Conv2dOptions {
  stride?: Pair;
  padding?: Pair | 'same';
  dilation?: Pair;
  groups?: number;
  bias?: boolean;
}

/** 2-D convolution. Default init as torch.nn.Conv2d. */
export class Conv2d extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  readonly options: Required<Omit<Conv2dOptions, 'bias'>>;
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    kernelSize: Pair,
    o: Conv2dOptions = {},
  ) {
    super();
    const groups = o.groups ?? 1;
    if (inChannels % groups !== 0 || outChannels % groups !== 0) {
      throw new RangeError(`Conv2d: channels (${inChannels} -> ${outChannels}) must be divisible by groups (${groups})`);
    }
    const [kh, kw] = typeof kernelSize === 'number' ? [kernelSize, kernelSize] : kernelSize;
    this.options = { stride: o.stride ?? 1, padding: o.padding ?? 0, dilation: o.dilation ?? 1, groups };
    this.weight = this.registerParameter('weight', kaimingUniform_(empty([outChannels, inChannels / groups, kh, kw]), { a: Math.sqrt(5) }));
    const bound = 1 / Math.sqrt((inChannels / groups) * kh * kw);
    this.bias = (o.bias ?? true) ? this.registerParameter('bias', uniform_(empty([outChannels]), -bound, bound)) : null;
  }
  forward(x: Tensor): Tensor {
    return conv2d(x, this.weight, this.bias, this.options);
  }
}
