// Containers with PyTorch's semantics: ModuleDict and ModuleList hold child modules whose
// parameters and buffers appear in stateDict() under dotted names ("<key>.<name>",
// "<index>.<name>"). They have no forward of their own.
import type { Tensor } from '../engine/tensor.js';
import { Module } from './module.js';

/** Child modules by name; stateDict names are "<name>.<tensor>". Insertion order is kept. */
export class ModuleDict<M extends Module = Module> extends Module {
  private readonly items = new Map<string, M>();
  constructor(entries: Iterable<[string, M]> | Record<string, M> = []) {
    super();
    const list =
      Symbol.iterator in Object(entries) ? [...(entries as Iterable<[string, M]>)] : Object.entries(entries as Record<string, M>);
    for (const [k, m] of list) this.set(k, m);
  }
  set(name: string, m: M): this {
    this.registerModule(name, m);
    this.items.set(name, m);
    return this;
  }
  get(name: string): M | undefined {
    return this.items.get(name);
  }
  has(name: string): boolean {
    return this.items.has(name);
  }
  keys(): string[] {
    return [...this.items.keys()];
  }
  values(): M[] {
    return [...this.items.values()];
  }
  entries(): [string, M][] {
    return [...this.items];
  }
  get size(): number {
    return this.items.size;
  }
  forward(_x: Tensor): Tensor {
    throw new Error('ModuleDict has no forward(): call its modules');
  }
}

/** Child modules by index; stateDict names are "<index>.<tensor>", as PyTorch's nn.ModuleList. */
export class ModuleList<M extends Module = Module> extends Module {
  private readonly items: M[] = [];
  constructor(modules: Iterable<M> = []) {
    super();
    for (const m of modules) this.push(m);
  }
  push(m: M): this {
    this.registerModule(String(this.items.length), m);
    this.items.push(m);
    return this;
  }
  at(i: number): M {
    const m = this.items.at(i);
    if (m === undefined) throw new RangeError(`ModuleList has ${this.items.length} modules, no index ${i}`);
    return m;
  }
  get length(): number {
    return this.items.length;
  }
  toArray(): M[] {
    return [...this.items];
  }
  [Symbol.iterator](): Iterator<M> {
    return this.items[Symbol.iterator]();
  }
  forward(_x: Tensor): Tensor {
    throw new Error('ModuleList has no forward(): call its modules');
  }
}
