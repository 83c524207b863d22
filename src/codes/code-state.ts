// A code's trainable state as one Module: its modules by name (code.modules()) and, for codes
// whose parity queries run on parity models (ParM, jointly trained learned codes), those
// models under "parity" (a ModuleList). Saving and loading a code checkpoint is then
// stateDict() / loadStateDict() of this module: tensor names "<module>.<name>" and
// "parity.<j>.<name>", the names every existing checkpoint already uses.
import type { Module } from '../nn/module.js';
import { ModuleDict, ModuleList } from '../nn/containers.js';
import type { Code } from './code.js';

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
