#!/usr/bin/env node
// Builds the libtorch addon with node-gyp against Debian's libtorch-dev or $LIBTORCH.
// Node's headers come from the installation itself when present (no download needed).
// --if-stale: skip the build when build/.coded-stamp matches the native sources, binding.gyp
// and LIBTORCH (npm's install hook and scripts/setup both use this, so it builds once).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = new URL('..', import.meta.url).pathname;
const addon = join(root, 'build', 'Release', 'coded_torch.node');
const stampFile = join(root, 'build', '.coded-stamp');

function stamp() {
  const h = createHash('sha256');
  for (const f of ['binding.gyp', ...readdirSync(join(root, 'native')).sort().map((f) => join('native', f))]) h.update(f).update(readFileSync(join(root, f)));
  h.update(process.env.LIBTORCH ?? 'debian');
  return h.digest('hex');
}

const current = stamp();
if (process.argv.includes('--if-stale') && existsSync(addon) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === current) {
  process.exit(0);
}
const args = ['rebuild', '-j', String(availableParallelism())];
// nodedir: npm's setting, else the prefix of the running node if it ships include/node
const prefix = dirname(dirname(process.execPath));
const candidates = [process.env.npm_config_nodedir, '/usr', prefix].filter(Boolean);
const nodedir = candidates.find((d) => existsSync(join(d, 'include', 'node', 'node_api.h')));
if (nodedir) args.push(`--nodedir=${nodedir}`);
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
console.error('[build-native] building the libtorch addon (node-gyp)');
const r = spawnSync(process.execPath, [gyp, ...args], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('\naddon build failed. Needs g++, make, python3 and libtorch headers: Debian `libtorch-dev`, or LIBTORCH=/path/to/libtorch (with include/ and lib/).');
  process.exit(r.status ?? 1);
}
writeFileSync(stampFile, current);
