// Code checkpoints: one safetensors file holding a code's config (metadata "code") and its
// trainable state (codeState: the code's modules, and parity models under "parity"), plus
// optional metadata (the base checkpoint's identity, training records) and extra tensors
// (optimizer state). Saving is codeState(...).stateDict(); loading is loadStateDict() into a
// freshly built code. loadCodeCheckpoint is the one loader of every code checkpoint (parity
// codes, learned codes with or without parity models, Lagrange codes): it returns the code,
// the worker set evaluation and serving run, and the base model.
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';
import { readCheckpoint, readCheckpointHeader } from '../nn/checkpoint.js';
import { saveSafetensors } from '../nn/safetensors.js';
import { buildModel, type InputSpec } from '../models/registry.js';
import {
  fileSha256,
  loadBaseCheckpoint,
  resolveRecordedBase,
  type BaseCheckpointMeta,
  type BaseIdentity,
} from '../models/base-checkpoint.js';
import { loadBaseModel } from '../models/base-model.js';
import { isTorchScriptPath } from '../models/file-kinds.js';
import { TorchScriptModule } from '../models/torchscript.js';
import type { Code, CodeConfig } from './code.js';
import type { WorkerSet } from './computation.js';
import { codeFromConfig } from './registry.js';
import { upgradeStoredConfig } from './family-table.js';
import { PARITY_KEY, codeState } from './code-state.js';

export interface CodeCheckpointMeta {
  kind: 'code';
  code: CodeConfig;
  [key: string]: unknown;
}

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
    if (base === undefined || base.model !== 'torchscript')
      throw new Error(
        "parity model 'base' (a copy of F's own architecture) is for TorchScript base models; with a zoo base, name its architecture",
      );
    if (!existsSync(base.path))
      throw new Error(
        `${base.path}: the TorchScript base file whose architecture the parity models copy is missing; restore it (sha256 ${base.sha256.slice(0, 12)}…)`,
      );
    const sha = fileSha256(base.path);
    if (sha !== base.sha256)
      throw new Error(
        `${base.path} differs from the TorchScript base the parity models were built from (sha256 ${sha.slice(0, 12)}… vs ${base.sha256.slice(0, 12)}…)`,
      );
    return Array.from({ length: meta.count }, () => TorchScriptModule.load(base.path));
  }
  return Array.from({ length: meta.count }, () => buildModel(meta.model, meta.input));
}

/**
 * Save a code: its config and its state (codeState(code, parity).stateDict(): "<module>.<name>",
 * "parity.<j>.<name>") in one safetensors file, plus extra metadata (e.g. the base checkpoint it
 * was trained for) and extra tensors (e.g. optimizer state).
 */
export function saveCode(
  path: string,
  code: Code,
  metadata: Record<string, unknown> = {},
  extra: Map<string, Tensor> = new Map(),
  parity: readonly Module[] = [],
): void {
  const tensors = new Map(codeState(code, parity).stateDict());
  for (const [k, t] of extra) {
    if (tensors.has(k)) throw new Error(`saveCode: extra tensor '${k}' clashes with a module tensor`);
    tensors.set(k, t);
  }
  const meta: CodeCheckpointMeta = { ...metadata, kind: 'code', code: code.config() };
  saveSafetensors(path, tensors, { format: 'pt', coded: JSON.stringify(meta) }, { digest: true });
}

export interface ReadCodeOptions {
  /**
   * Parity models: 'auto' (default) builds and loads them when the metadata records them;
   * 'required' refuses a checkpoint without them; 'none' leaves their tensors in `extra`.
   */
  parity?: 'auto' | 'required' | 'none';
}

export interface ReadCode {
  code: Code;
  /** the parity models (evaluation mode), empty when the code has none (or parity: 'none') */
  parity: Module[];
  metadata: CodeCheckpointMeta;
  /** tensors that belong to no module (e.g. optimizer state), owned by the caller */
  extra: Map<string, Tensor>;
}

/** Read a code checkpoint's weights into a freshly built code (and its parity models). */
export function readCodeCheckpoint(path: string, { parity: mode = 'auto' }: ReadCodeOptions = {}): ReadCode {
  const ck = readCheckpoint(path);
  const meta = ck.metadata as Partial<ParityCheckpointMeta>;
  const all = new Map([...ck.state, ...ck.extra]);
  if (meta.kind !== 'code' || meta.code === undefined) {
    for (const t of all.values()) t.dispose();
    throw new Error(`${path} is not a code checkpoint (its metadata has no "kind": "code" and "code" config)`);
  }
  let code: Code | null = null;
  const parity: Module[] = [];
  try {
    code = codeFromConfig(upgradeStoredConfig(meta.code, new Map([...all].map(([k, t]) => [k, t.shape]))));
    const withParity = mode === 'required' || (mode === 'auto' && meta.parity !== undefined);
    if (withParity) {
      if (
        meta.parity === undefined ||
        meta.base === undefined ||
        typeof meta.parity.model !== 'string' ||
        typeof meta.base.sha256 !== 'string'
      ) {
        throw new Error(`${path} is a code checkpoint without parity models (no "parity"/"base" metadata)`);
      }
      if (meta.parity.count !== code.r)
        throw new Error(`${path}: metadata says ${meta.parity.count} parity models but the code has r = ${code.r}`);
      parity.push(...buildParityModels(meta.parity, meta.base));
    }
    const state = codeState(code, parity);
    const own = state.stateDict();
    // tensors under a module's name that the module does not have are refused (strict), as are
    // parity models beyond r; everything else is extra
    const owners = new Set([...code.modules().keys(), ...(withParity ? [PARITY_KEY] : [])]);
    const sd = new Map<string, Tensor>();
    for (const [k, t] of all) {
      if (own.has(k)) sd.set(k, t);
      else if (owners.has(k.split('.')[0])) {
        throw new Error(
          k.startsWith(`${PARITY_KEY}.`)
            ? `unexpected tensor '${k}' (parity models 0..${code.r - 1} only)`
            : `unexpected tensor '${k}' for ${code.name}`,
        );
      }
    }
    try {
      state.loadStateDict(sd);
    } catch (e) {
      // name the parity model whose tensors do not fit its recorded architecture
      const j = parity.findIndex((m, i) => {
        const own = m.stateDict();
        const prefix = `${PARITY_KEY}.${i}.`;
        const given = [...sd].filter(([k]) => k.startsWith(prefix));
        return given.length !== own.size || given.some(([k, t]) => own.get(k.slice(prefix.length))?.shape.join(',') !== t.shape.join(','));
      });
      if (j >= 0)
        throw new Error(
          `${path}: parity model ${j} does not fit its recorded architecture '${meta.parity!.model}': ${(e as Error).message}`,
        );
      throw e;
    }
    for (const [k, t] of sd) {
      t.dispose();
      all.delete(k);
    }
    for (const m of parity) m.eval();
  } catch (e) {
    for (const m of parity) m.dispose();
    if (code !== null) codeState(code).dispose();
    for (const t of all.values()) t.dispose();
    const msg = (e as Error).message;
    throw new Error(msg.startsWith(path) ? msg : `${path}: ${msg}`);
  }
  return { code, parity, metadata: meta as CodeCheckpointMeta, extra: all };
}

/** The base model of a loaded code checkpoint. */
export interface LoadedBase {
  model: Module;
  meta: BaseCheckpointMeta;
  identity: BaseIdentity;
}

export interface LoadCodeCheckpointOptions extends ReadCodeOptions {
  /**
   * The base checkpoint: by default the one the code records (its SHA-256 must match, see
   * resolveRecordedBase); `basePath` names it explicitly (same check). Codes that record none
   * (Lagrange codes) default to models/<dataset>-base-mlp.safetensors. false: no base model.
   */
  basePath?: string;
  base?: boolean;
  /** keep the extra tensors (optimizer state) in the result; by default they are freed */
  keepExtra?: boolean;
}

export interface LoadedCodeCheckpoint extends ReadCode {
  /** what evaluation and serving run: the base model, parity models, family-specific workers */
  workers: WorkerSet;
  base: LoadedBase;
  /** the base checkpoint used */
  basePath: string;
  /** frees the code's modules, the parity models and the base model */
  dispose(): void;
}

/** Where a code checkpoint's base checkpoint is (no weights read): recorded, explicit, or the Lagrange default. */
function baseCheckpointPath(path: string, header: Record<string, unknown>, explicit?: string): string {
  const rec = header.base as { path?: string; sha256?: string } | undefined;
  if (rec?.sha256 !== undefined && rec.path !== undefined)
    return resolveRecordedBase(path, { path: rec.path, sha256: rec.sha256 }, explicit);
  const dataset = header.dataset as string | undefined;
  if (explicit !== undefined) return explicit;
  if (dataset === undefined)
    throw new Error(`${path} records neither its base checkpoint nor its dataset; pass the base checkpoint (--base CKPT)`);
  const p = join('models', `${dataset}-base-mlp.safetensors`);
  if (!existsSync(p)) throw new Error(`no base model for A_a: ${p} does not exist (pass --base CKPT, a ${dataset} base checkpoint)`);
  return p;
}

function loadBaseFor(path: string, header: Record<string, unknown>, bp: string): LoadedBase {
  const rec = header.base as BaseIdentity | undefined;
  if (isTorchScriptPath(bp)) {
    if (rec?.input === undefined)
      throw new Error(`${path}: the TorchScript base ${bp} needs its input shape, which the checkpoint does not record`);
    const b = loadBaseModel(bp, { inputShape: [rec.input.channels, rec.input.height, rec.input.width], dataset: rec.dataset });
    return {
      model: b.model,
      identity: b.identity,
      meta: {
        kind: 'base',
        dataset: rec.dataset,
        model: rec.model,
        input: rec.input,
        classes: Array.from({ length: b.classes }, (_, i) => String(i)),
      },
    };
  }
  const b = loadBaseCheckpoint(bp);
  if (rec === undefined && header.dataset !== undefined && b.meta.dataset !== header.dataset) {
    b.model.dispose();
    throw new Error(`--base ${bp} is a ${b.meta.dataset} model; ${path} was trained on ${String(header.dataset)}`);
  }
  return b;
}

/**
 * The one loader of code checkpoints: the code (weights loaded), its parity models if it has
 * any, its base model (see LoadCodeCheckpointOptions) and the worker set to evaluate or serve it.
 */
export function loadCodeCheckpoint(path: string, o: LoadCodeCheckpointOptions & { base: false }): ReadCode & { dispose(): void };
export function loadCodeCheckpoint(path: string, o?: LoadCodeCheckpointOptions): LoadedCodeCheckpoint;
export function loadCodeCheckpoint(
  path: string,
  o: LoadCodeCheckpointOptions = {},
): LoadedCodeCheckpoint | (ReadCode & { dispose(): void }) {
  // the header first (no weights), to find the base checkpoint before loading anything
  const header = readCheckpointHeader(path);
  if (header.kind !== 'code' || header.code === undefined)
    throw new Error(`${path} is not a code checkpoint (its metadata has no "kind": "code" and "code" config)`);
  const bp = o.base === false ? null : baseCheckpointPath(path, header, o.basePath);
  const r = readCodeCheckpoint(path, o);
  if (!o.keepExtra) {
    for (const t of r.extra.values()) t.dispose();
    r.extra.clear();
  }
  const disposeCode = () => {
    codeState(r.code, r.parity).dispose();
  };
  if (bp === null) return { ...r, dispose: disposeCode };
  let base: LoadedBase;
  try {
    base = loadBaseFor(path, header, bp);
  } catch (e) {
    disposeCode();
    for (const t of r.extra.values()) t.dispose();
    throw e;
  }
  const workers: WorkerSet = { base: base.model };
  if (r.parity.length > 0) workers.parity = r.parity;
  const wm = r.code.workerModules?.();
  if (wm !== undefined) workers.workers = wm;
  return {
    ...r,
    workers,
    base,
    basePath: bp,
    dispose: () => {
      disposeCode();
      base.model.dispose();
    },
  };
}
