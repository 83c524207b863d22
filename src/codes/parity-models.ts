// Parity models (ParM) and their checkpoints. A parity-code checkpoint is a code checkpoint
// (saveCode) whose extra tensors hold the r parity models' weights under "parity.<j>.", and
// whose metadata names the parity architecture, its input spec, and the identity of the base
// checkpoint it was trained for (path, SHA-256 of the file, dataset, model). Loading refuses a
// checkpoint whose tensors do not fit the recorded architecture (corrupt or edited) and a
// base checkpoint other than the one the parity models were trained for.
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';
import { buildModel, type InputSpec } from '../models/registry.js';
import { loadCode, saveCode, type CodeCheckpointMeta } from './registry.js';
import type { Code } from './code.js';
import type { WorkerSet } from './computation.js';
import { fileSha256, loadBaseCheckpoint, resolveRecordedBase, type BaseCheckpointMeta, type BaseIdentity } from '../models/base-checkpoint.js';
import { loadBaseModel } from '../models/base-model.js';
import { isTorchScriptPath } from '../models/file-kinds.js';
import { TorchScriptModule } from '../models/torchscript.js';
import { existsSync } from 'node:fs';

export { fileSha256, loadBaseCheckpoint, type BaseCheckpointMeta, type BaseIdentity };

export interface ParityMeta {
  /** parity architecture (a model-zoo name; by default the base model's) */
  model: string;
  input: InputSpec;
  count: number;
}

export interface ParityCheckpointMeta extends CodeCheckpointMeta {
  parity: ParityMeta;
  base: BaseIdentity;
}

/** The parity architecture 'base' of a TorchScript F: copies of F's own module (ParM with the user's architecture). */
export const BASE_PARITY_MODEL = 'base';

/**
 * Build r fresh parity models: zoo models, or for 'base' (TorchScript bases only) copies of F's
 * module loaded from the base file the identity records (its SHA-256 checked), starting from
 * F's weights.
 */
export function buildParityModels(meta: ParityMeta, base?: BaseIdentity): Module[] {
  if (meta.model === BASE_PARITY_MODEL) {
    if (base === undefined || base.model !== 'torchscript') throw new Error("parity model 'base' (a copy of F's own architecture) is for TorchScript base models; with a zoo base, name its architecture");
    if (!existsSync(base.path)) throw new Error(`${base.path}: the TorchScript base file whose architecture the parity models copy is missing; restore it (sha256 ${base.sha256.slice(0, 12)}…)`);
    const sha = fileSha256(base.path);
    if (sha !== base.sha256) throw new Error(`${base.path} differs from the TorchScript base the parity models were built from (sha256 ${sha.slice(0, 12)}… vs ${base.sha256.slice(0, 12)}…)`);
    return Array.from({ length: meta.count }, () => TorchScriptModule.load(base.path));
  }
  return Array.from({ length: meta.count }, () => buildModel(meta.model, meta.input));
}

/** Save a parity code: code config + parity weights + base identity + extra metadata/tensors. */
export function saveParityCode(path: string, code: Code, parity: Module[], meta: { parity: ParityMeta; base: BaseIdentity } & Record<string, unknown>, extra: Map<string, Tensor> = new Map()): void {
  const tensors = new Map(extra);
  for (const [k, t] of parityTensors(parity)) tensors.set(k, t);
  saveCode(path, code, meta, tensors);
}

/** The parity models' state as checkpoint tensors "parity.<j>.<name>" (the modules' own tensors, not copies). */
export function parityTensors(parity: readonly Module[]): Map<string, Tensor> {
  const tensors = new Map<string, Tensor>();
  parity.forEach((m, j) => {
    for (const [k, t] of m.stateDict()) tensors.set(`parity.${j}.${k}`, t);
  });
  return tensors;
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
  const { code, metadata, extra } = loadCode(path);
  const meta = metadata as Partial<ParityCheckpointMeta>;
  const parity: Module[] = [];
  try {
    if (meta.parity === undefined || meta.base === undefined || typeof meta.parity.model !== 'string' || typeof meta.base.sha256 !== 'string') {
      throw new Error(`${path} is a code checkpoint without parity models (no "parity"/"base" metadata)`);
    }
    if (meta.parity.count !== code.r) throw new Error(`${path}: metadata says ${meta.parity.count} parity models but the code has r = ${code.r}`);
    parity.push(...buildParityModels(meta.parity, meta.base));
    parity.forEach((m, j) => {
      const prefix = `parity.${j}.`;
      const sd = new Map<string, Tensor>();
      for (const [k, t] of extra) if (k.startsWith(prefix)) sd.set(k.slice(prefix.length), t);
      try {
        m.loadStateDict(sd);
      } catch (e) {
        throw new Error(`${path}: parity model ${j} does not fit its recorded architecture '${meta.parity!.model}': ${(e as Error).message}`);
      }
      for (const [k, t] of sd) {
        t.dispose();
        extra.delete(prefix + k);
      }
      for (const t of m.parameters()) {
        if (!(t.isfinite().all().item() > 0)) throw new Error(`${path}: parity model ${j} has non-finite weights (corrupt checkpoint)`);
      }
      m.eval();
    });
    for (const k of extra.keys()) {
      if (k.startsWith('parity.')) throw new Error(`${path}: unexpected tensor '${k}' (parity models 0..${code.r - 1} only)`);
    }
  } catch (e) {
    for (const m of parity) m.dispose();
    for (const t of extra.values()) t.dispose();
    throw e instanceof Error && e.message.startsWith(path) ? e : new Error(`${path}: ${(e as Error).message}`);
  }
  return { code, parity, metadata: meta as ParityCheckpointMeta, extra };
}

/**
 * Load a parity code together with its base model: the base checkpoint is the recorded path
 * unless `basePath` is given; either way its SHA-256 must equal the recorded one.
 */
export function loadParityWorkers(path: string, basePath?: string): { code: Code; workers: WorkerSet; metadata: ParityCheckpointMeta; base: ReturnType<typeof loadBaseCheckpoint> } {
  const lp = loadParityCode(path);
  for (const t of lp.extra.values()) t.dispose();
  const rec = lp.metadata.base;
  let base: ReturnType<typeof loadBaseCheckpoint>;
  try {
    const bp = resolveRecordedBase(path, rec, basePath);
    if (isTorchScriptPath(bp)) {
      const b = loadBaseModel(bp, { inputShape: [rec.input.channels, rec.input.height, rec.input.width], dataset: rec.dataset });
      base = { model: b.model, identity: b.identity, meta: { kind: 'base', dataset: rec.dataset, model: rec.model, input: rec.input, classes: Array.from({ length: b.classes }, (_, i) => String(i)) } };
    } else {
      base = loadBaseCheckpoint(bp);
    }
  } catch (e) {
    for (const m of lp.parity) m.dispose();
    throw e;
  }
  return { code: lp.code, workers: { base: base.model, parity: lp.parity }, metadata: lp.metadata, base };
}
