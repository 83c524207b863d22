// The training-run skeleton every trainer uses (base models, parity models, learned codes,
// Lagrange codes and their centralized baselines): the run directory (best.safetensors,
// last.safetensors, log.jsonl), resume from last.safetensors, per-epoch seeding, the best
// checkpoint by a validation score, the last checkpoint with optimizer state after every
// epoch, one JSON line per epoch, and the final test of the best checkpoint. Deterministic
// for a seed, also across a resume. What a trainer supplies: how to train and validate one
// epoch, how to save and read its checkpoints (its modules' state, its metadata), and how to
// test the best checkpoint.
import { appendFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import type { Optimizer, OptimizerState } from '../engine/optim/optimizer.js';
import { manualSeed } from '../engine/runtime.js';
import type { Tensor } from '../engine/tensor.js';
import { runFiles } from './run-files.js';

/** The seed of epoch `epoch` of a run seeded `seed` (the same whether or not the run was resumed). */
export const epochSeed = (seed: number, epoch: number): number => seed * 100003 + epoch;

/** Optimizer state in a checkpoint: metadata `optimizers` (steps, hyper-parameters), tensors "optim<i>.<key>". */
export interface SavedOptimizers {
  meta: Omit<OptimizerState, 'tensors'>[];
  tensors: Map<string, Tensor>;
}

/** The optimizers' state to save (the one naming: metadata "optimizers", tensors "optim<i>.<key>"; the optimizers' own tensors). */
export function optimizerState(opts: readonly Optimizer[]): SavedOptimizers {
  const tensors = new Map<string, Tensor>();
  const meta = opts.map((o, i) => {
    const s = o.stateDict();
    for (const [k, t] of Object.entries(s.tensors)) tensors.set(`optim${i}.${k}`, t);
    return { steps: s.steps, hyper: s.hyper };
  });
  return { meta, tensors };
}

/**
 * Restore optimizers from a checkpoint's metadata and extra tensors. Reads the one naming
 * ("optimizers" + "optim<i>.") and the older ones, so old run directories still resume: one
 * "optimizer" with tensors "optim.<key>" (parity and polynomial runs), or with bare tensor
 * names (base-model runs).
 */
export function restoreOptimizers(opts: readonly Optimizer[], metadata: Record<string, unknown>, extra: ReadonlyMap<string, Tensor>): void {
  const list = metadata.optimizers as Omit<OptimizerState, 'tensors'>[] | undefined;
  if (list !== undefined) {
    list.forEach((os, i) => {
      const prefix = `optim${i}.`;
      const tensors: Record<string, Tensor> = {};
      for (const [k, t] of extra) if (k.startsWith(prefix)) tensors[k.slice(prefix.length)] = t;
      opts[i]?.loadStateDict({ ...os, tensors });
    });
    return;
  }
  const one = metadata.optimizer as Omit<OptimizerState, 'tensors'> | undefined;
  if (one === undefined || opts.length === 0) return;
  const prefixed = [...extra].filter(([k]) => k.startsWith('optim.'));
  const tensors: Record<string, Tensor> =
    prefixed.length > 0 ? Object.fromEntries(prefixed.map(([k, t]) => [k.slice('optim.'.length), t])) : Object.fromEntries(extra);
  opts[0].loadStateDict({ ...one, tensors });
}

/** An epoch's record in the log and the checkpoints' history: at least its number and whether it was the best. */
export interface EpochLog {
  epoch: number;
  best: boolean;
}

/** A checkpoint read back for resuming: its metadata and the tensors that are not module state (optimizer state). */
export interface ResumePoint {
  metadata: Record<string, unknown>;
  extra: Map<string, Tensor>;
  /** frees what the read allocated (the extra tensors, temporary modules) */
  dispose(): void;
}

export interface TrainingRunOptions<R extends EpochLog> {
  outDir: string;
  resume: boolean;
  /** the last epoch to train (1-based) */
  epochs: number;
  seed: number;
  /** the name of the validation score in the `best` metadata and the result, e.g. 'valAccuracy' */
  scoreName: string;
  optimizers: readonly Optimizer[];
  /**
   * Read last.safetensors for a resume: load the module state into the live modules, check the
   * configuration (throw when it differs), and return the metadata and extra tensors.
   */
  readLast(path: string): ResumePoint;
  /**
   * Train one epoch and validate: the epoch's record (best: false; the run sets it) and its
   * validation score. `restore`, when given, runs after the best checkpoint is saved: the
   * validated weights (e.g. a weight average) are what best.safetensors holds, and restore
   * puts the trained ones back before last.safetensors is written.
   */
  epoch(epoch: number): { record: R; score: number; restore?: () => void };
  /** Save the live state to `path` with this metadata (the run's and the trainer's) and extra tensors. */
  save(path: string, metadata: Record<string, unknown>, extra: Map<string, Tensor>): void;
  /** Metadata of the best checkpoint beyond the epoch and score (e.g. the validation base accuracy). */
  bestMetadata?(record: R): Record<string, unknown>;
  /** After each epoch (the record is logged and saved); return true to stop early. */
  afterEpoch?(record: R): boolean | void;
}

export interface TrainingRunResult<R extends EpochLog> {
  bestCheckpoint: string;
  bestEpoch: number;
  /** the best validation score */
  bestScore: number;
  epochs: R[];
  resumedFrom: number;
  /** the last epoch trained when afterEpoch stopped the run before `epochs`, else null */
  stoppedEarly: number | null;
}

/** Prepare the run directory: for a resume, last.safetensors must exist; otherwise the log starts afresh. */
export function openRunDirectory(outDir: string, resume: boolean): ReturnType<typeof runFiles> {
  mkdirSync(outDir, { recursive: true });
  const f = runFiles(outDir);
  if (resume && !existsSync(f.last)) throw new Error(`--resume: ${f.last} does not exist (nothing to resume in ${outDir})`);
  if (!resume) rmSync(f.log, { force: true });
  return f;
}

/**
 * Run the epochs: resume (module state, optimizer state, epoch, best, history), then for every
 * epoch seed, train and validate, save best.safetensors when the score improves,
 * last.safetensors with the optimizer state, and a log line.
 */
export function runEpochs<R extends EpochLog>(o: TrainingRunOptions<R>): TrainingRunResult<R> {
  const f = openRunDirectory(o.outDir, o.resume);
  let startEpoch = 1;
  let best: Record<string, number> = { epoch: 0, [o.scoreName]: -1 };
  const history: R[] = [];
  if (o.resume) {
    const p = o.readLast(f.last);
    try {
      restoreOptimizers(o.optimizers, p.metadata, p.extra);
      startEpoch = ((p.metadata.epoch as number | undefined) ?? 0) + 1;
      best = (p.metadata.best as typeof best | undefined) ?? best;
      history.push(...((p.metadata.history as R[] | undefined) ?? []));
    } finally {
      p.dispose();
    }
  }
  let stoppedEarly: number | null = null;
  for (let epoch = startEpoch; epoch <= o.epochs; epoch++) {
    manualSeed(epochSeed(o.seed, epoch));
    const { record, score, restore } = o.epoch(epoch);
    try {
      const isBest = score > best[o.scoreName];
      record.best = isBest;
      if (isBest) {
        best = { epoch, [o.scoreName]: score };
        o.save(f.best, { epoch, [o.scoreName]: score, ...o.bestMetadata?.(record), created: new Date().toISOString() }, new Map());
      }
    } finally {
      restore?.();
    }
    history.push(record);
    const os = optimizerState(o.optimizers);
    o.save(f.last, { epoch, best, history, optimizers: os.meta }, os.tensors);
    appendFileSync(f.log, JSON.stringify({ ...record, time: new Date().toISOString() }) + '\n');
    if (o.afterEpoch?.(record) === true && epoch < o.epochs) {
      stoppedEarly = epoch;
      break;
    }
  }
  if (best.epoch === 0) throw new Error('no epoch was trained (is --epochs below the resumed epoch?)');
  return {
    bestCheckpoint: f.best,
    bestEpoch: best.epoch,
    bestScore: best[o.scoreName],
    epochs: history,
    resumedFrom: startEpoch,
    stoppedEarly,
  };
}
