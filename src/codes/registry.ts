// Code families by name: each registers how to build a code from its JSON config, so a code
// saved by training (config + module weights in one safetensors checkpoint) is rebuilt
// identically by evaluation and by the server.
import { readCheckpoint } from '../nn/checkpoint.js';
import { saveSafetensors } from '../nn/safetensors.js';
import type { Tensor } from '../engine/tensor.js';
import type { Code, CodeConfig } from './code.js';
import { codeFamilies, familyFactory, upgradeStoredConfig } from './family-table.js';
import './families.js';

export { registerCodeFamily, codeFamilies, type CodeFactory } from './family-table.js';

/** Build a code from its config (modules freshly initialised; see loadCode for weights). */
export function codeFromConfig(config: CodeConfig): Code {
  const f = familyFactory(config.family);
  if (f === undefined) throw new Error(`unknown code family '${config.family}' (known: ${codeFamilies().join(', ')})`);
  if (!Number.isInteger(config.k) || config.k < 1) throw new RangeError(`code config: k must be a positive integer, got ${config.k}`);
  if (!Number.isInteger(config.r) || config.r < 0) throw new RangeError(`code config: r must be a non-negative integer, got ${config.r}`);
  return f(config);
}

export interface CodeCheckpointMeta {
  kind: 'code';
  code: CodeConfig;
  [key: string]: unknown;
}

/**
 * Save a code: its config and every module's state dict (prefixed "<module>.") in one
 * safetensors file, plus extra metadata (e.g. the base checkpoint it was trained for) and
 * extra tensors (e.g. parity models' weights under "parity.<j>.").
 */
export function saveCode(path: string, code: Code, metadata: Record<string, unknown> = {}, extra: Map<string, Tensor> = new Map()): void {
  const tensors = new Map<string, Tensor>();
  for (const [name, m] of code.modules()) for (const [k, t] of m.stateDict()) tensors.set(`${name}.${k}`, t);
  for (const [k, t] of extra) {
    if (tensors.has(k)) throw new Error(`saveCode: extra tensor '${k}' clashes with a module tensor`);
    tensors.set(k, t);
  }
  const meta: CodeCheckpointMeta = { ...metadata, kind: 'code', code: code.config() };
  saveSafetensors(path, tensors, { format: 'pt', coded: JSON.stringify(meta) }, { digest: true });
}

/** Load a code saved by saveCode; returns the code and the tensors that belong to no module. */
export function loadCode(path: string): { code: Code; metadata: CodeCheckpointMeta; extra: Map<string, Tensor> } {
  const ck = readCheckpoint(path);
  const meta = ck.metadata as Partial<CodeCheckpointMeta>;
  const all = new Map([...ck.state, ...ck.extra]);
  if (meta.kind !== 'code' || meta.code === undefined) {
    for (const t of all.values()) t.dispose();
    throw new Error(`${path} is not a code checkpoint (its metadata has no "kind": "code" and "code" config)`);
  }
  let code: Code;
  try {
    code = codeFromConfig(upgradeStoredConfig(meta.code, new Map([...all].map(([k, t]) => [k, t.shape]))));
    for (const [name, m] of code.modules()) {
      const prefix = `${name}.`;
      const sd = new Map<string, Tensor>();
      for (const [k, t] of all) if (k.startsWith(prefix)) sd.set(k.slice(prefix.length), t);
      m.loadStateDict(sd);
      for (const k of sd.keys()) {
        all.get(prefix + k)!.dispose();
        all.delete(prefix + k);
      }
    }
  } catch (e) {
    for (const t of all.values()) t.dispose();
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  return { code, metadata: meta as CodeCheckpointMeta, extra: all };
}
