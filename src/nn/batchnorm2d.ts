import { ones, zeros, type Tensor } from '../engine/tensor.js';
import { batchNorm } from '../engine/ops.js';
import { noGrad } from '../engine/autograd.js';
import { Module } from './module.js';

export interface BatchNormOptions {
  eps?: number;
  momentum?: number;
  affine?: boolean;
  trackRunningStats?: boolean;
}

/** Batch normalisation over [N, C, H, W]; running statistics as torch.nn.BatchNorm2d. */
export class BatchNorm2d extends Module {
  readonly weight: Tensor | null;
  readonly bias: Tensor | null;
  readonly runningMean: Tensor | null;
  readonly runningVar: Tensor | null;
  readonly numBatchesTracked: Tensor | null;
  readonly eps: number;
  readonly momentum: number;
  constructor(
    readonly numFeatures: number,
    { eps = 1e-5, momentum = 0.1, affine = true, trackRunningStats = true }: BatchNormOptions = {},
  ) {
    super();
    this.eps = eps;
    this.momentum = momentum;
    this.weight = affine ? this.registerParameter('weight', ones([numFeatures])) : null;
    this.bias = affine ? this.registerParameter('bias', zeros([numFeatures])) : null;
    this.runningMean = trackRunningStats ? this.registerBuffer('running_mean', zeros([numFeatures])) : null;
    this.runningVar = trackRunningStats ? this.registerBuffer('running_var', ones([numFeatures])) : null;
    this.numBatchesTracked = trackRunningStats ? this.registerBuffer('num_batches_tracked', zeros([], { dtype: 'int64' })) : null;
  }
  forward(x: Tensor): Tensor {
    if (this.training && this.numBatchesTracked !== null) noGrad(() => this.numBatchesTracked!.add_(1));
    return batchNorm(x, {
      weight: this.weight,
      bias: this.bias,
      runningMean: this.runningMean,
      runningVar: this.runningVar,
      training: this.training || this.runningMean === null,
      momentum: this.momentum,
      eps: this.eps,
    });
  }
}
