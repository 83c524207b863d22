// Module: the unit of model composition, with PyTorch's vocabulary (named parameters and
// buffers, children, train/eval, stateDict/loadStateDict, to()).
import { noGrad } from '../engine/autograd.js';
import { isFloating, type Device, type DType } from '../engine/dtype.js';
import type { Tensor } from '../engine/tensor.js';

export type StateDict = Map<string, Tensor>;

export abstract class Module {
  training = true;
  private readonly params = new Map<string, Tensor>();
  private readonly bufs = new Map<string, Tensor>();
  private readonly children_ = new Map<string, Module>();

  abstract forward(x: Tensor): Tensor;

  /** Register a trainable parameter (requires grad; owned by the module, outside any scope). */
  protected registerParameter(name: string, t: Tensor): Tensor {
    this.checkName(name);
    t.keep().requiresGrad_(true);
    this.params.set(name, t);
    return t;
  }
  /** Register state that is saved but not trained (e.g. batch-norm running statistics). */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.checkName(name);
    t.keep();
    this.bufs.set(name, t);
    return t;
  }
  protected registerModule<M extends Module>(name: string, m: M): M {
    this.checkName(name);
    this.children_.set(name, m);
    return m;
  }
  private checkName(name: string): void {
    if (name === '' || name.includes('.')) throw new Error(`invalid member name '${name}': non-empty, without dots`);
    if (this.params.has(name) || this.bufs.has(name) || this.children_.has(name)) throw new Error(`'${name}' is already registered`);
  }

  children(): [string, Module][] {
    return [...this.children_];
  }
  namedModules(prefix = ''): [string, Module][] {
    const out: [string, Module][] = [[prefix, this]];
    for (const [n, m] of this.children_) out.push(...m.namedModules(prefix ? `${prefix}.${n}` : n));
    return out;
  }
  namedParameters(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [p, m] of this.namedModules(prefix)) for (const [n, t] of m.params) out.push([p ? `${p}.${n}` : n, t]);
    return out;
  }
  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }
  namedBuffers(prefix = ''): [string, Tensor][] {
    const out: [string, Tensor][] = [];
    for (const [p, m] of this.namedModules(prefix)) for (const [n, t] of m.bufs) out.push([p ? `${p}.${n}` : n, t]);
    return out;
  }
  numParameters(): number {
    return this.parameters().reduce((a, t) => a + t.size, 0);
  }

  /**
   * Training mode (dropout active, batch norm uses and updates batch statistics), for this module
   * and, through their own train(), its children (as PyTorch: a child that overrides train(),
   * e.g. a TorchScript module, is switched too).
   */
  train(mode = true): this {
    this.training = mode;
    for (const m of this.children_.values()) m.train(mode);
    return this;
  }
  eval(): this {
    return this.train(false);
  }

  /**
   * Parameters and buffers by dotted name (the module's own tensors, not copies), in
   * PyTorch's order: each module's parameters, then its buffers, then its children's.
   */
  stateDict(): StateDict {
    const out: StateDict = new Map();
    for (const [p, m] of this.namedModules()) {
      for (const [n, t] of [...m.params, ...m.bufs]) out.set(p ? `${p}.${n}` : n, t);
    }
    return out;
  }

  /** Copy values in from a state dict; strict mode requires exactly the same names. */
  loadStateDict(sd: StateDict | Record<string, Tensor>, { strict = true } = {}): { missing: string[]; unexpected: string[] } {
    const given = sd instanceof Map ? sd : new Map(Object.entries(sd));
    const own = this.stateDict();
    const missing = [...own.keys()].filter((k) => !given.has(k));
    const unexpected = [...given.keys()].filter((k) => !own.has(k));
    if (strict && (missing.length > 0 || unexpected.length > 0)) {
      throw new Error(
        `state dict does not match ${this.constructor.name}: ` +
          (missing.length ? `missing ${missing.join(', ')}` : '') +
          (missing.length && unexpected.length ? '; ' : '') +
          (unexpected.length ? `unexpected ${unexpected.join(', ')}` : '') +
          ' (was it saved from another architecture?)',
      );
    }
    for (const [k, t] of own) {
      const src = given.get(k);
      if (src === undefined) continue;
      const a = t.shape.join(',');
      const b = src.shape.join(',');
      if (a !== b) throw new Error(`state dict entry '${k}' has shape [${b}], the module expects [${a}]`);
    }
    noGrad(() => {
      for (const [k, t] of own) {
        const src = given.get(k);
        if (src !== undefined) t.copy_(src);
      }
    });
    return { missing, unexpected };
  }

  /**
   * Move every parameter and buffer to a device, or cast the floating-point ones to a
   * floating dtype (integer and bool buffers such as num_batches_tracked keep theirs, as
   * in PyTorch), in place: tensor objects keep their identity and requiresGrad. Children
   * are moved through their own to() (a TorchScript module moves its JIT module).
   */
  to(target: Device | DType): this {
    const isDevice = /^(cpu|cuda)/.test(target);
    if (!isDevice && !isFloating(target as DType)) {
      throw new TypeError(`Module.to() casts to floating-point dtypes only, got '${target}'`);
    }
    noGrad(() => {
      for (const t of [...this.params.values(), ...this.bufs.values()]) {
        if (target === t.device || target === t.dtype) continue;
        if (!isDevice && !isFloating(t.dtype)) continue; // keep counters and masks integral
        const rg = t.requiresGrad;
        const converted = t.to(target as string);
        const moved = converted.detach().keep();
        converted.dispose();
        t.replaceWith(moved);
        if (rg) t.requiresGrad_(true);
      }
    });
    for (const m of this.children_.values()) m.to(target);
    return this;
  }

  /** Clear parameters' gradients. */
  zeroGrad(): void {
    for (const p of this.parameters()) p.grad = null;
  }

  /** Free every parameter and buffer: this module's own, then its children's through their own dispose(). */
  dispose(): void {
    for (const t of [...this.params.values(), ...this.bufs.values()]) t.dispose();
    for (const m of this.children_.values()) m.dispose();
  }
}

/**
 * Every module's training flag in m's tree (m and all modules below it); the returned function
 * puts each one back (parents first, through train(), so overrides such as TorchScript's run).
 * For evaluation passes that switch a tree to eval() and must leave it as they found it.
 */
export function saveTrainingModes(m: Module): () => void {
  const saved = m.namedModules().map(([, x]) => [x, x.training] as const);
  return () => {
    for (const [x, mode] of saved) x.train(mode);
  };
}

/** A module that takes more than one input (a main input plus side inputs). */
export interface MultiInputModule extends Module {
  forwardInputs(inputs: Tensor[]): Tensor;
}

/** Run `m` on its inputs: forward() for one, forwardInputs() (multi-input modules) for several. */
export function forwardInputs(m: Module, inputs: Tensor[], what = 'the module'): Tensor {
  if (inputs.length === 1) return m.forward(inputs[0]);
  if (typeof (m as { forwardInputs?: unknown }).forwardInputs !== 'function') {
    throw new Error(`${what} receives ${inputs.length} inputs but takes one (it has no forwardInputs())`);
  }
  return (m as MultiInputModule).forwardInputs(inputs);
}
