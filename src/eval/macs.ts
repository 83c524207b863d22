// Counting multiply-adds (MACs) of a computation by running it: while `countMacs(fn)` runs,
// every Linear and Conv2d forward pass and every tensor matrix product adds its MACs, computed
// from the actual shapes (Linear: rows x in x out; Conv2d: output elements x in-channels/groups
// x kernel area; matmul: output elements x inner dimension). Element-wise work (activations,
// additions) is not counted. A matmul inside a counted layer is not counted twice.
import { Tensor } from '../engine/tensor.js';
import { Linear } from '../nn/linear.js';
import { Conv2d } from '../nn/conv2d.js';

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Run fn and return the multiply-adds of its layers and matrix products (and fn's result). */
export function countMacs<T>(fn: () => T): { macs: number; result: T } {
  let macs = 0;
  let depth = 0;
  const lin = Linear.prototype.forward;
  const conv = Conv2d.prototype.forward;
  const mm = Tensor.prototype.matmul;
  Linear.prototype.forward = function (this: Linear, x: Tensor): Tensor {
    depth++;
    try {
      const y = lin.call(this, x);
      if (depth === 1) macs += prod(y.shape) * this.weight.shape[1];
      return y;
    } finally {
      depth--;
    }
  };
  Conv2d.prototype.forward = function (this: Conv2d, x: Tensor): Tensor {
    depth++;
    try {
      const y = conv.call(this, x);
      // weight [out, in / groups, kh, kw]: every output element takes in/groups x kh x kw MACs
      if (depth === 1) macs += prod(y.shape) * prod(this.weight.shape.slice(1));
      return y;
    } finally {
      depth--;
    }
  };
  Tensor.prototype.matmul = function (this: Tensor, other: Tensor): Tensor {
    const y = mm.call(this, other);
    if (depth === 0) macs += prod(y.shape) * this.shape[this.shape.length - 1];
    return y;
  };
  try {
    const result = fn();
    return { macs, result };
  } finally {
    Linear.prototype.forward = lin;
    Conv2d.prototype.forward = conv;
    Tensor.prototype.matmul = mm;
  }
}
