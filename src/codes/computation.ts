// Running a code's coded queries through the worker functions they name: the base model F,
// parity models F_P, or family-specific worker networks. Evaluation and training use this;
// the server dispatches the same CodedQuery list to remote instances instead.
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';
import type { Code, CodedQuery, WorkerFunction } from './code.js';

/** A worker that takes more than one input (main input plus side inputs). */
export interface MultiInputModule extends Module {
  forwardInputs(inputs: Tensor[]): Tensor;
}

export interface WorkerSet {
  /** the base model F */
  base: Module;
  /** parity models F_P, by index */
  parity?: Module[];
  /** family-specific workers by name, then index */
  workers?: Map<string, Module[]>;
}

export function describeFunction(fn: WorkerFunction): string {
  return fn.kind === 'base' ? 'F' : fn.kind === 'parity' ? `F_P[${fn.index}]` : `${fn.name}[${fn.index}]`;
}

export function moduleFor(ws: WorkerSet, fn: WorkerFunction): Module {
  let m: Module | undefined;
  if (fn.kind === 'base') m = ws.base;
  else if (fn.kind === 'parity') m = ws.parity?.[fn.index];
  else m = ws.workers?.get(fn.name)?.[fn.index];
  if (m === undefined) throw new Error(`no model for worker function ${describeFunction(fn)}: load the code's parity/worker models`);
  return m;
}

/** Run one coded query on the module its function names. */
export function runQuery(ws: WorkerSet, q: CodedQuery): Tensor {
  const m = moduleFor(ws, q.fn);
  if (q.inputs.length === 1) return m.forward(q.inputs[0]);
  if (!('forwardInputs' in m) || typeof (m as MultiInputModule).forwardInputs !== 'function') {
    throw new Error(`${describeFunction(q.fn)} receives ${q.inputs.length} inputs but its module has no forwardInputs()`);
  }
  return (m as MultiInputModule).forwardInputs(q.inputs);
}

/** Encode G groups x [G, k, ...] and compute all n worker outputs locally. */
export function computeAll(code: Code, ws: WorkerSet, x: Tensor): Tensor[] {
  return code.encode(x).map((q) => runQuery(ws, q));
}
