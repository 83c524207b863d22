// The files every training run writes in its output directory.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readCheckpointHeader } from '../nn/checkpoint.js';

export const runFiles = (outDir: string) => ({
  /** best-validation checkpoint */
  best: join(outDir, 'best.safetensors'),
  /** resumable state after the latest epoch */
  last: join(outDir, 'last.safetensors'),
  /** one JSON line per epoch */
  log: join(outDir, 'log.jsonl'),
});

/**
 * Refuse to train a base model into a directory that already holds one (unless resuming it
 * or forced): codes trained for a base checkpoint identify it by its SHA-256, so a retrained
 * file would silently orphan them. Call before any work.
 */
export function refuseBaseOverwrite(outDir: string, { resume, force }: { resume: boolean; force: boolean }): void {
  const best = runFiles(outDir).best;
  if (resume || force || !existsSync(best)) return;
  let what = 'a checkpoint';
  try {
    const m = readCheckpointHeader(best) as { kind?: string; model?: string; dataset?: string; testAccuracy?: number };
    if (m.kind === 'base')
      what = `a trained base model (${m.model} on ${m.dataset}${typeof m.testAccuracy === 'number' ? `, test accuracy ${(100 * m.testAccuracy).toFixed(2)}%` : ''})`;
  } catch {
    // unreadable: still not ours to overwrite
  }
  throw new RunDirectoryInUseError(
    `${outDir} already holds ${what} in ${best}; codes trained for it record its SHA-256 and would no longer load with a retrained file. ` +
      'Choose another --out, continue that run with --resume, or pass --force to overwrite it',
  );
}

export class RunDirectoryInUseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RunDirectoryInUseError';
  }
}
