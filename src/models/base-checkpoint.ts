// Base-model checkpoints written by `coded train base`: rebuilding the model from the
// metadata (dataset, model, input shape, classes) and identifying the file (SHA-256), so that
// codes trained for a base model can refuse any other.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Module } from '../nn/module.js';
import { readCheckpoint } from '../nn/checkpoint.js';
import { buildModel } from './registry.js';

export interface BaseCheckpointMeta {
  kind: 'base';
  dataset: string;
  model: string;
  input: { channels: number; height: number; width: number };
  classes: string[];
  normalization?: { mean: number[]; std: number[] };
  testAccuracy?: number;
  [key: string]: unknown;
}

export interface BaseIdentity {
  path: string;
  sha256: string;
  dataset: string;
  model: string;
  input: BaseCheckpointMeta['input'];
  classes: number;
}

export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** Load a base-model checkpoint written by `coded train base`: the model (weights loaded) and its metadata. */
export function loadBaseCheckpoint(path: string): { model: Module; meta: BaseCheckpointMeta; identity: BaseIdentity } {
  const ck = readCheckpoint(path);
  const all = [...ck.state.values(), ...ck.extra.values()];
  try {
    const meta = ck.metadata as Partial<BaseCheckpointMeta>;
    if (meta.kind !== 'base' || !meta.dataset || !meta.model || !meta.input || !Array.isArray(meta.classes)) {
      throw new Error(`${path} is not a base-model checkpoint from \`coded train base\` (its metadata lacks kind/dataset/model/input/classes)`);
    }
    const model = buildModel(meta.model, { ...meta.input, classes: meta.classes.length });
    try {
      model.loadStateDict(ck.state);
    } catch (e) {
      model.dispose();
      throw new Error(`${path}: ${(e as Error).message}`);
    }
    model.eval();
    const m = meta as BaseCheckpointMeta;
    return {
      model,
      meta: m,
      identity: { path, sha256: fileSha256(path), dataset: m.dataset, model: m.model, input: m.input, classes: m.classes.length },
    };
  } finally {
    for (const t of all) t.dispose();
  }
}
