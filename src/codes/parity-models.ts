// Parity models (ParM) and their checkpoints. A parity-code checkpoint is a code checkpoint
// whose state holds the r parity models under "parity" ("parity.<j>.<name>", see codeState),
// and whose metadata names the parity architecture, its input spec, and the identity of the
// base checkpoint it was trained for (path, SHA-256 of the file, dataset, model). Loading
// (readCodeCheckpoint / loadCodeCheckpoint) refuses a checkpoint whose tensors do not fit the
// recorded architecture (corrupt or edited) and a base checkpoint other than the one the
// parity models were trained for.
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';
import { ModuleList } from '../nn/containers.js';
import type { Code } from './code.js';
import { fileSha256, loadBaseCheckpoint, type BaseCheckpointMeta, type BaseIdentity } from '../models/base-checkpoint.js';
import { BASE_PARITY_MODEL, buildParityModels, saveCode, type ParityCheckpointMeta, type ParityMeta } from './checkpoint.js';
import { PARITY_KEY } from './code-state.js';

export { fileSha256, loadBaseCheckpoint, type BaseCheckpointMeta, type BaseIdentity };
export { BASE_PARITY_MODEL, buildParityModels, type ParityCheckpointMeta, type ParityMeta };

/** Save a parity code: code config + parity weights + base identity + extra metadata/tensors. */
export function saveParityCode(
  path: string,
  code: Code,
  parity: Module[],
  meta: { parity: ParityMeta; base: BaseIdentity } & Record<string, unknown>,
  extra: Map<string, Tensor> = new Map(),
): void {
  saveCode(path, code, meta, extra, parity);
}

/** The parity models' state as checkpoint tensors "parity.<j>.<name>" (the modules' own tensors, not copies). */
export function parityTensors(parity: readonly Module[]): Map<string, Tensor> {
  return new Map([...new ModuleList(parity).stateDict()].map(([k, t]) => [`${PARITY_KEY}.${k}`, t] as [string, Tensor]));
}
