import type { Tensor } from '../engine/tensor.js';
import { Module } from './module.js';
import { pipe } from './pipe.js';

/** Runs its children in order; children are named "0", "1", ... as in PyTorch. */
export class Sequential extends Module {
  private readonly layers: Module[];
  constructor(...layers: Module[]) {
    super();
    this.layers = layers;
    layers.forEach((m, i) => this.registerModule(String(i), m));
  }
  get length(): number {
    return this.layers.length;
  }
  at(i: number): Module {
    const m = this.layers.at(i);
    if (m === undefined) throw new RangeError(`Sequential has ${this.layers.length} layers, no index ${i}`);
    return m;
  }
  /** Intermediate tensors are freed as soon as the next layer has consumed them. */
  forward(x: Tensor): Tensor {
    return pipe(x, ...this.layers.map((m) => (t: Tensor) => m.forward(t)));
  }
}
