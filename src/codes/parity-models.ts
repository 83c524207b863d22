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
import type { WorkerSet } from './computation.js';
import { fileSha256, loadBaseCheckpoint, type BaseCheckpointMeta, type BaseIdentity } from '../models/base-checkpoint.js';
import {
  BASE_PARITY_MODEL,
  buildParityModels,
  loadCodeCheckpoint,
  readCodeCheckpoint,
  saveCode,
  type LoadedBase,
  type ParityCheckpointMeta,
  type ParityMeta,
} from './checkpoint.js';
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

export interface LoadedParityCode {
  code: Code;
  parity: Module[];
  metadata: ParityCheckpointMeta;
  /** tensors that are neither module nor parity weights (e.g. optimizer state), owned by the caller */
  extra: Map<string, Tensor>;
}

/** Load a parity-code checkpoint; the parity models' tensors must match the recorded architecture exactly. */
export function loadParityCode(path: string): LoadedParityCode {
  const r = readCodeCheckpoint(path, { parity: 'required' });
  return { code: r.code, parity: r.parity, metadata: r.metadata as ParityCheckpointMeta, extra: r.extra };
}

/**
 * Load a parity code together with its base model (loadCodeCheckpoint): the base checkpoint is
 * the recorded path unless `basePath` is given; either way its SHA-256 must equal the recorded one.
 */
export function loadParityWorkers(
  path: string,
  basePath?: string,
): { code: Code; workers: WorkerSet; metadata: ParityCheckpointMeta; base: LoadedBase } {
  const l = loadCodeCheckpoint(path, { basePath, parity: 'required' });
  return { code: l.code, workers: l.workers, metadata: l.metadata as ParityCheckpointMeta, base: l.base };
}
