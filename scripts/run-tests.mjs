#!/usr/bin/env node
// Runs the linter and the format check (Biome, biome.json; lint errors and unformatted files fail
// the run, warnings are left to `npx biome lint`; `npx biome format --write` formats) and then
// the test suite: compiled tests under dist/test (build first with `npm run build`).
// Usage: node scripts/run-tests.mjs [filter...]   (filters match test file paths)
// Without the dev dependency @biomejs/biome (an installed package, the GPU carry) the lint step
// is skipped with a note.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;
const dir = join(root, 'dist', 'test');
if (!existsSync(dir)) {
  console.error('dist/test is missing: run `npm run build` first (or scripts/test, which sets everything up).');
  process.exit(2);
}
const files = [];
(function walk(d) {
  for (const f of readdirSync(d)) {
    const p = join(d, f);
    if (statSync(p).isDirectory()) walk(p);
    else if (f.endsWith('.test.js')) files.push(p);
  }
})(dir);
const filters = process.argv.slice(2);
const chosen = filters.length ? files.filter((f) => filters.some((x) => f.includes(x))) : files;
if (chosen.length === 0) {
  console.error('no test files match', filters.join(' '));
  process.exit(2);
}
let lintFailed = false;
const biome = join(root, 'node_modules', '@biomejs', 'biome', 'bin', 'biome');
if (existsSync(biome)) {
  const l = spawnSync(process.execPath, [biome, 'lint', '--diagnostic-level=error'], { cwd: root, stdio: 'inherit' });
  lintFailed = l.status !== 0;
  if (lintFailed) console.error('biome lint found errors (above); running the tests anyway, the run fails');
  const f = spawnSync(process.execPath, [biome, 'format'], { cwd: root, stdio: 'inherit' });
  if (f.status !== 0) {
    lintFailed = true;
    console.error(
      'files are not formatted as biome.json says (above): run `npx biome format --write`; running the tests anyway, the run fails',
    );
  }
} else {
  console.error('[run-tests] @biomejs/biome is not installed: lint skipped');
}
const env = {
  ...process.env,
  GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? 'glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296',
};
const r = spawnSync(process.execPath, ['--test', '--test-concurrency=1', '--test-reporter=spec', ...chosen.sort()], {
  stdio: 'inherit',
  env,
});
process.exit(lintFailed && r.status === 0 ? 1 : (r.status ?? 1));
