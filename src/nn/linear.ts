import { empty, type Tensor } from '../engine/tensor.js';
import { linear } from '../engine/ops.js';
import { kaimingUniform_, uniform_ } from '../engine/init.js';
import { Module } from './module.js';

/** y = x W^T + b. Default init as torch.nn.Linear (Kaiming-uniform, a = sqrt(5)). */
export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    { bias = true }: { bias?: boolean } = {},
  ) {
    super();
    if (!(inFeatures > 0 && outFeatures > 0)) throw new RangeError(`Linear(${inFeatures}, ${outFeatures}): sizes must be positive`);
    this.weight = this.registerParameter('weight', kaimingUniform_(empty([outFeatures, inFeatures]), { a: Math.sqrt(5) }));
    const bound = 1 / Math.sqrt(inFeatures);
    this.bias = bias ? this.registerParameter('bias', uniform_(empty([outFeatures]), -bound, bound)) : null;
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}
