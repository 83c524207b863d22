// Running a code's coded queries through the worker functions they name: the base model F,
// parity models F_P, or family-specific worker networks. Evaluation and training use this;
// the server dispatches the same CodedQuery list to remote instances instead.
import type { Tensor } from '../engine/tensor.js';
import { forwardInputs, type Module } from '../nn/module.js';
import type { Code, CodedQuery, WorkerFunction } from './code.js';

export type { MultiInputModule } from '../nn/module.js';

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
  return forwardInputs(moduleFor(ws, q.fn), q.inputs, describeFunction(q.fn));
}

/** Encode G groups x [G, k, ...] and compute all n worker outputs locally. */
export function computeAll(code: Code, ws: WorkerSet, x: Tensor): Tensor[] {
  return code.encode(x).map((q) => runQuery(ws, q));
}
