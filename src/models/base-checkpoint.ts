// Base-model checkpoints written by `coded train base`: rebuilding the model from the
// metadata (dataset, model, input shape, classes) and identifying the file (SHA-256), so that
// codes trained for a base model can refuse any other.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, isAbsolute, resolve } from 'node:path';
import type { Module } from '../nn/module.js';
import { readCheckpoint } from '../nn/checkpoint.js';
import { buildModel } from './registry.js';
import { checkpointPreprocessing, type Preprocessing } from '../data/preprocessing.js';

/** The base's preprocessing for identities (codes trained for it record it), when known. */
const preprocessingField = (m: BaseCheckpointMeta): { preprocessing?: Preprocessing } => {
  const p = checkpointPreprocessing(m);
  return p === null ? {} : { preprocessing: p };
};

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

/**
 * The identity of a base model F that a code checkpoint records (the one type for it): the path
 * as given at training time and the file's SHA-256, what F is, and, where the trainer recorded
 * them, its input shape and class count (parity codes; a TorchScript F needs them to load) and
 * its test accuracy (learned codes).
 */
export interface BaseIdentity {
  path: string;
  sha256: string;
  dataset: string;
  model: string;
  input?: BaseCheckpointMeta['input'];
  classes?: number;
  testAccuracy?: number;
  /** how raw images become F's inputs, when known (src/data/preprocessing.ts) */
  preprocessing?: Preprocessing;
}

export function fileSha256(path: string): string {
  return createHash('sha256').update(readFileSync(path)).digest('hex');
}

/** The base checkpoint a code checkpoint records (the path as given at training time, and the file's SHA-256). */
export interface RecordedBase {
  path: string;
  sha256: string;
}

/**
 * Where the base checkpoint of a code checkpoint is: `explicit` (--base) when given, else the
 * recorded path resolved against the code checkpoint's folder (so a code shipped next to its
 * base, as in models/, evaluates from any directory), then the recorded file name in that
 * folder, then the recorded path against the current directory. The first candidate that
 * exists with the recorded SHA-256 wins. Throws, naming every place looked, when none does.
 */
export function resolveRecordedBase(codePath: string, rec: RecordedBase, explicit?: string): string {
  const candidates =
    explicit !== undefined
      ? [explicit]
      : isAbsolute(rec.path)
        ? [rec.path, resolve(dirname(codePath), basename(rec.path))]
        : [resolve(dirname(codePath), rec.path), resolve(dirname(codePath), basename(rec.path)), resolve(rec.path)];
  const looked = [...new Set(candidates)];
  const mismatched: { path: string; sha: string }[] = [];
  for (const c of looked) {
    if (!existsSync(c)) continue;
    const sha = fileSha256(c);
    if (sha === rec.sha256) return c;
    mismatched.push({ path: c, sha });
  }
  const want = `sha256 ${rec.sha256.slice(0, 12)}…`;
  if (mismatched.length > 0) {
    const m = mismatched.map((x) => `${x.path} differs (sha256 ${x.sha.slice(0, 12)}…)`).join(', ');
    throw new BaseMismatchError(
      `${codePath}: it was trained for base checkpoint ${rec.path} (${want}), but ${m}; ` +
        (explicit !== undefined
          ? 'retrain it for this base model, or pass the base checkpoint it was trained for'
          : 'pass --base CKPT with the base checkpoint it was trained for'),
    );
  }
  throw new Error(
    `${codePath}: its base checkpoint ${rec.path} (${want}) was not found (looked in ${looked.join(', ')}); pass --base CKPT`,
  );
}

/** A base checkpoint exists but is not the one a code was trained for. */
export class BaseMismatchError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BaseMismatchError';
  }
}

/** Load a base-model checkpoint written by `coded train base`: the model (weights loaded) and its metadata. */
export function loadBaseCheckpoint(path: string): { model: Module; meta: BaseCheckpointMeta; identity: BaseIdentity } {
  const ck = readCheckpoint(path);
  const all = [...ck.state.values(), ...ck.extra.values()];
  try {
    const meta = ck.metadata as Partial<BaseCheckpointMeta>;
    if (meta.kind !== 'base' || !meta.dataset || !meta.model || !meta.input || !Array.isArray(meta.classes)) {
      throw new Error(
        `${path} is not a base-model checkpoint from \`coded train base\` (its metadata lacks kind/dataset/model/input/classes)`,
      );
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
      identity: {
        path,
        sha256: fileSha256(path),
        dataset: m.dataset,
        model: m.model,
        input: m.input,
        classes: m.classes.length,
        ...preprocessingField(m),
      },
    };
  } finally {
    for (const t of all) t.dispose();
  }
}
