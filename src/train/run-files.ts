// The files every training run writes in its output directory.
import { join } from 'node:path';

export const runFiles = (outDir: string) => ({
  /** best-validation checkpoint */
  best: join(outDir, 'best.safetensors'),
  /** resumable state after the latest epoch */
  last: join(outDir, 'last.safetensors'),
  /** one JSON line per epoch */
  log: join(outDir, 'log.jsonl'),
});
