// Apply forward steps in order, freeing each intermediate as soon as the next step has
// consumed it (the autograd graph keeps what backward needs). The input is never freed.
import type { Tensor } from '../engine/tensor.js';

export type Step = (t: Tensor) => Tensor;

export function pipe(x: Tensor, ...steps: Step[]): Tensor {
  let h = x;
  for (const step of steps) {
    const next = step(h);
    if (h !== x && next !== h) h.dispose();
    h = next;
  }
  return h === x ? x.share() : h;
}
