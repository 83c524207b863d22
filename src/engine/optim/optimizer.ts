// Optimizer base: a parameter list, per-parameter state tensors and a step count,
// with a state dict for resuming training.
import type { Tensor } from '../tensor.js';

export interface OptimizerState {
  /** per-parameter step counts */
  steps: number[];
  /** state tensors keyed "<paramIndex>.<name>" */
  tensors: Record<string, Tensor>;
  hyper: Record<string, number | boolean | number[]>;
}

export abstract class Optimizer {
  readonly params: Tensor[];
  lr: number;
  protected readonly steps: number[];
  protected readonly state: Map<string, Tensor>[];

  constructor(params: Iterable<Tensor>, lr: number) {
    this.params = [...params];
    if (this.params.length === 0) throw new Error('optimizer got an empty parameter list');
    if (!(lr > 0)) throw new RangeError(`learning rate must be positive, got ${lr}`);
    this.lr = lr;
    this.steps = this.params.map(() => 0);
    this.state = this.params.map(() => new Map());
  }

  /** Apply one update from the parameters' accumulated .grad. */
  abstract step(): void;
  protected abstract hyper(): Record<string, number | boolean | number[]>;

  /** Drop accumulated gradients (set to none, as PyTorch 2 does by default). */
  zeroGrad(): void {
    for (const p of this.params) p.grad = null;
  }

  /** State tensor for parameter i, created once (kept outside any scope). */
  protected slot(i: number, name: string, init: () => Tensor): Tensor {
    let t = this.state[i].get(name);
    if (t === undefined) {
      t = init().keep();
      this.state[i].set(name, t);
    }
    return t;
  }

  stateDict(): OptimizerState {
    const tensors: Record<string, Tensor> = {};
    this.state.forEach((m, i) => {
      for (const [name, t] of m) tensors[`${i}.${name}`] = t;
    });
    return { steps: [...this.steps], tensors, hyper: { lr: this.lr, ...this.hyper() } };
  }

  /** Restore from stateDict(); tensors are copied in. */
  loadStateDict(s: OptimizerState): void {
    if (s.steps.length !== this.params.length) {
      throw new Error(
        `optimizer state has ${s.steps.length} parameters, this optimizer ${this.params.length}: was it saved for another model?`,
      );
    }
    this.steps.splice(0, this.steps.length, ...s.steps);
    for (const m of this.state) {
      for (const t of m.values()) t.dispose();
      m.clear();
    }
    for (const [key, t] of Object.entries(s.tensors)) {
      const dot = key.indexOf('.');
      const i = Number(key.slice(0, dot));
      if (!(i >= 0 && i < this.params.length)) throw new Error(`optimizer state key '${key}' names no parameter`);
      this.state[i].set(key.slice(dot + 1), t.detach().clone().keep());
    }
    if (typeof s.hyper.lr === 'number') this.lr = s.hyper.lr;
  }

  /** Free the state tensors. */
  dispose(): void {
    for (const m of this.state) {
      for (const t of m.values()) t.dispose();
      m.clear();
    }
  }
}
