// Checkpoints: a module's state dict (plus optional extra tensors such as optimizer
// state) in one safetensors file whose __metadata__ carries JSON metadata under "coded" and
// the SHA-256 of the tensor data (verified at load). Weights that are not finite are refused.
import { loadSafetensors, readSafetensorsMetadata, saveSafetensors } from './safetensors.js';
import { tidy } from '../engine/scope.js';
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
  saveSafetensors(path, all, { format: 'pt', coded: JSON.stringify(metadata) }, { digest: true });
}

/** Thrown when a checkpoint holds NaN or infinite values: weights that cannot give meaningful outputs. */
export class NonFiniteWeightsError extends Error {
  constructor(path: string, bad: { name: string; count: number; size: number }[]) {
    const list = bad
      .slice(0, 5)
      .map((b) => `${b.name} (${b.count} of ${b.size})`)
      .join(', ');
    super(
      `${path}: the checkpoint holds non-finite weights (NaN or infinite values) in ${bad.length} tensor${bad.length === 1 ? '' : 's'}: ${list}${bad.length > 5 ? ', …' : ''}; ` +
        'it is corrupt or its training diverged: use another checkpoint or train again (e.g. with a lower learning rate)',
    );
    this.name = 'NonFiniteWeightsError';
  }
}

/** Refuse tensors with NaN or ±Inf (the check runs in the engine); disposes them all when it throws. */
export function assertFiniteTensors(path: string, tensors: Map<string, Tensor>): void {
  const bad: { name: string; count: number; size: number }[] = [];
  for (const [name, t] of tensors) {
    if (t.dtype !== 'float32' && t.dtype !== 'float64') continue;
    const count = tidy(() => t.isfinite().logicalNot().sum().item());
    if (count > 0) bad.push({ name, count, size: t.size });
  }
  if (bad.length > 0) {
    for (const t of tensors.values()) t.dispose();
    throw new NonFiniteWeightsError(path, bad);
  }
}

/**
 * Read a checkpoint: verifies the tensor data against the SHA-256 recorded at save (files
 * written before digests were recorded load unverified) and refuses non-finite weights.
 */
export function readCheckpoint(path: string): Checkpoint {
  const { tensors, metadata } = loadSafetensors(path);
  let meta: CheckpointMetadata = {};
  if (metadata.coded !== undefined) {
    try {
      meta = JSON.parse(metadata.coded) as CheckpointMetadata;
    } catch {
      for (const t of tensors.values()) t.dispose();
      throw new Error(`${path}: the checkpoint's "coded" metadata is not valid JSON`);
    }
  }
  assertFiniteTensors(path, tensors);
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

/** A checkpoint's "coded" metadata from its JSON header alone (no tensor data read, nothing verified). */
export function readCheckpointHeader(path: string): CheckpointMetadata {
  const coded = readSafetensorsMetadata(path).coded;
  if (coded === undefined) return {};
  try {
    return JSON.parse(coded) as CheckpointMetadata;
  } catch {
    throw new Error(`${path}: the checkpoint's "coded" metadata is not valid JSON`);
  }
}
