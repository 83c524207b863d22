// Checkpoints: a module's state dict (plus optional extra tensors such as optimizer
// state) in one safetensors file whose __metadata__ carries JSON metadata under "coded".
import { loadSafetensors, saveSafetensors } from './safetensors.js';
import type { Module } from './module.js';
import type { Tensor } from '../engine/tensor.js';

export interface CheckpointMetadata {
  /** what produced this file, e.g. {"kind": "base", "model": "base-mlp", ...} */
  [key: string]: unknown;
}

export interface Checkpoint {
  metadata: CheckpointMetadata;
  /** module tensors by state-dict name */
  state: Map<string, Tensor>;
  /** extra tensors (saved with a prefix, returned without it), e.g. optimizer state */
  extra: Map<string, Tensor>;
}

const EXTRA = '__extra__.';

export function saveCheckpoint(path: string, module: Module, metadata: CheckpointMetadata, extra: Map<string, Tensor> = new Map()): void {
  const all = new Map(module.stateDict());
  for (const [k, t] of extra) all.set(EXTRA + k, t);
  saveSafetensors(path, all, { format: 'pt', coded: JSON.stringify(metadata) });
}

export function readCheckpoint(path: string): Checkpoint {
  const { tensors, metadata } = loadSafetensors(path);
  let meta: CheckpointMetadata = {};
  if (metadata.coded !== undefined) {
    try {
      meta = JSON.parse(metadata.coded) as CheckpointMetadata;
    } catch {
      throw new Error(`${path}: the checkpoint's "coded" metadata is not valid JSON`);
    }
  }
  const state = new Map<string, Tensor>();
  const extra = new Map<string, Tensor>();
  for (const [k, t] of tensors) {
    if (k.startsWith(EXTRA)) extra.set(k.slice(EXTRA.length), t);
    else state.set(k, t);
  }
  return { metadata: meta, state, extra };
}

/** Load a checkpoint's weights into `module` (strict), returning its metadata; temporaries are freed. */
export function loadCheckpointInto(path: string, module: Module): Checkpoint {
  const ck = readCheckpoint(path);
  try {
    module.loadStateDict(ck.state);
  } catch (e) {
    for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
    throw new Error(`${path}: ${(e as Error).message}`);
  }
  for (const t of ck.state.values()) t.dispose();
  return ck;
}
