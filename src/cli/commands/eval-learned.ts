// `coded eval CODE_CKPT` for learned-code checkpoints (from `coded train learned`): the shared
// code evaluation on the base model's test set. The base checkpoint is the recorded one unless
// --base is given; either way its SHA-256 must equal the one recorded at training time. A code
// trained jointly with parity models (--parity-model) is evaluated with its own parity models
// (loaded from the checkpoint, as a parity code's) on the parity queries.
import { parse, choiceOption, intOption, UsageError } from '../args.js';
import { isDatasetName, loadTestSet, disposeTestSet } from '../../data/registry.js';
import { loadCode } from '../../codes/registry.js';
import { loadParityCode } from '../../codes/parity-models.js';
import type { Code } from '../../codes/code.js';
import type { WorkerSet } from '../../codes/computation.js';
import type { Module } from '../../nn/module.js';
import '../../codes/index.js';
import { evaluateCode, formatCodeEvaluation, writeOverallAccuracyPlot } from '../../eval/code-metrics.js';
import { resolveRecordedBase } from '../../models/base-checkpoint.js';
import { readCheckpointMetadata } from '../../serve/served-model.js';
import { loadBase } from './train-learned.js';

export const usage = `coded eval LEARNED_CODE_CKPT [--base CKPT] [--data-dir DIR] [--device cpu|cuda] [--seed N] [--plot PREFIX] [--json]`;

interface LearnedMeta {
  base?: { path?: string; sha256?: string; model?: string; dataset?: string };
  parity?: { model?: string; count?: number };
}

export interface LoadedLearned {
  code: Code;
  /** F and, for jointly trained codes, the parity models F_P[j] */
  workers: WorkerSet;
  base: ReturnType<typeof loadBase>;
  /** the base checkpoint used */
  basePath: string;
  metadata: Record<string, unknown>;
  /** dispose the code's modules, the base model and any parity models */
  dispose(): void;
}

/**
 * Load a learned-code checkpoint with everything evaluating it needs: the code, its base model
 * (the recorded checkpoint unless basePath is given; the SHA-256 must match) and, when the code
 * was trained with parity models, those parity models.
 */
export function loadLearnedWorkers(path: string, basePath?: string): LoadedLearned {
  // the header first (no weights), to check the base checkpoint before loading anything
  const header = readCheckpointMetadata(path) as LearnedMeta & { kind?: string; code?: { family?: string } };
  const rec = header.base;
  const joint = header.parity !== undefined;
  if (header.kind !== 'code' || header.code?.family !== 'learned' || rec?.sha256 === undefined || rec.path === undefined) {
    throw new Error(`${path} is not a learned-code checkpoint from \`coded train learned\` (no "base" identity in its metadata)`);
  }
  const bp = resolveRecordedBase(path, { path: rec.path, sha256: rec.sha256 }, basePath);
  // the weights: with parity models through the parity-code loader (checks them against their architecture)
  let code: Code;
  let parity: Module[] = [];
  let metadata: Record<string, unknown>;
  if (joint) {
    const lp = loadParityCode(path);
    for (const t of lp.extra.values()) t.dispose();
    code = lp.code;
    parity = lp.parity;
    metadata = lp.metadata;
  } else {
    const l = loadCode(path);
    for (const t of l.extra.values()) t.dispose();
    code = l.code;
    metadata = l.metadata;
  }
  const disposeCode = () => {
    for (const [, m] of code.modules()) m.dispose();
    for (const m of parity) m.dispose();
  };
  let base: ReturnType<typeof loadBase>;
  try {
    base = loadBase(bp);
  } catch (e) {
    disposeCode();
    throw e;
  }
  const workers: WorkerSet = parity.length > 0 ? { base: base.model, parity } : { base: base.model };
  return {
    code, workers, base, basePath: bp, metadata,
    dispose: () => {
      disposeCode();
      base.model.dispose();
    },
  };
}

export async function evalLearnedCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    base: { type: 'string' }, 'data-dir': { type: 'string' }, device: { type: 'string' }, seed: { type: 'string' },
    plot: { type: 'string' }, json: { type: 'boolean' },
  }, usage);
  if (values.help) return void console.log(usage);
  if (positionals.length !== 1) throw new UsageError(`expected one code checkpoint path\n\n${usage}`);
  const path = positionals[0];
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  const seed = intOption(values.seed, 'seed', 1, { min: 0 });
  const l = loadLearnedWorkers(path, values.base);
  const { code, workers, base } = l;
  try {
    if (!isDatasetName(base.meta.dataset)) throw new Error(`unknown dataset '${base.meta.dataset}' in the base checkpoint`);
    base.model.to(device).eval();
    for (const [, m] of code.modules()) m.to(device);
    for (const m of workers.parity ?? []) m.to(device);
    const ds = await loadTestSet(base.meta.dataset, { dataDir: values['data-dir'], log: (s) => process.stderr.write(s + '\n') });
    try {
      const e = evaluateCode({ code, workers, test: ds.test, classes: base.meta.classes, device, seed });
      if (values.plot) await writeOverallAccuracyPlot(e, values.plot);
      const rec = (l.metadata as LearnedMeta).base;
      const pm = (l.metadata as LearnedMeta).parity;
      if (values.json) console.log(JSON.stringify({ checkpoint: path, base: rec, parity: pm ?? null, ...e }));
      else {
        const with_ = pm ? `, with ${pm.count} ${pm.model} parity model(s) on the parity queries` : '';
        console.log(`${path}: learned code for base ${l.basePath} (${base.meta.model} on ${base.meta.dataset})${with_}\n\n${formatCodeEvaluation(e)}`);
      }
    } finally {
      disposeTestSet(ds);
    }
  } finally {
    l.dispose();
  }
}

/** Whether a checkpoint holds a learned code (cheap: reads the safetensors header only). */
export { isLearnedCheckpoint } from '../../train/learned-training.js';
