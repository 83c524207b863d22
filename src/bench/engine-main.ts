#!/usr/bin/env node
// Standalone entry of the engine benchmark (the `coded bench engine` CLI wraps the same
// engineBenchMain):
//   node dist/src/bench/engine-main.js [--json] [--device cpu|cuda] [--threads N] [--quick] [--no-peer]
// glibc reads GLIBC_TUNABLES only at start-up, so when it is unset this re-runs itself with
// the malloc thresholds bin/coded uses (large blocks stay in the heap instead of being
// unmapped and re-faulted every step). An explicit GLIBC_TUNABLES (even empty) wins.
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296';

if (process.env.GLIBC_TUNABLES === undefined) {
  const r = spawnSync(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: { ...process.env, GLIBC_TUNABLES: MALLOC_TUNABLES },
  });
  process.exit(r.status ?? 1);
}

const { engineBenchMain, EngineBenchUsageError } = await import('./engine.js');
try {
  await engineBenchMain(process.argv.slice(2));
} catch (e) {
  console.error(`bench engine: ${(e as Error).message}`);
  if (process.env.CODED_DEBUG) console.error((e as Error).stack);
  process.exitCode = e instanceof EngineBenchUsageError ? 2 : 1;
}
