// A code's trainable state as one Module: its modules by name (code.modules()) and, for codes
// whose parity queries run on parity models (ParM, jointly trained learned codes), those
// models under "parity" (a ModuleList). Saving and loading a code checkpoint is then
// stateDict() / loadStateDict() of this module: tensor names "<module>.<name>" and
// "parity.<j>.<name>", the names every existing checkpoint already uses.
import type { Module } from '../nn/module.js';
import { ModuleDict, ModuleList } from '../nn/containers.js';
import type { Code } from './code.js';
import type { WorkerSet } from './computation.js';

/** The key of the parity models in a code's state module. */
export const PARITY_KEY = 'parity';

/** The code's modules (and parity models under "parity") as one ModuleDict; the modules are the code's own. */
export function codeState(code: Code, parity: readonly Module[] = []): ModuleDict {
  const d = new ModuleDict();
  for (const [name, m] of code.modules()) {
    if (name === PARITY_KEY) throw new Error(`${code.name}: a code module may not be named '${PARITY_KEY}' (the parity models' key)`);
    d.set(name, m);
  }
  if (parity.length > 0) d.set(PARITY_KEY, new ModuleList(parity));
  return d;
}

/**
 * Every module that evaluating a code on a worker set runs, as one Module: the code's state
 * (codeState(code, workers.parity)) under "code", the base model F under "base" and the
 * family-specific worker networks under "workers" (by name, then index). Moving it (.to()),
 * switching it (.eval(), saveTrainingModes) or freeing it (.dispose()) reaches each of them; a
 * module found twice (a Lagrange code's H is a code module and worker 'H') is simply reached twice.
 */
export function workerSetState(code: Code, workers: WorkerSet): ModuleDict {
  const d = new ModuleDict();
  d.set('code', codeState(code, workers.parity ?? []));
  d.set('base', workers.base);
  if (workers.workers !== undefined)
    d.set('workers', new ModuleDict([...workers.workers].map(([name, ms]) => [name, new ModuleList(ms)] as [string, Module])));
  return d;
}
