#!/usr/bin/env node
// Builds the libtorch addon with node-gyp against Debian's libtorch-dev or $LIBTORCH.
// Node's headers come from the installation itself when present (no download needed).
// --if-stale: skip the build when build/.coded-stamp matches the native sources, binding.gyp
// and LIBTORCH (npm's install hook and scripts/setup both use this, so it builds once).
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = new URL('..', import.meta.url).pathname;
const addon = join(root, 'build', 'Release', 'coded_torch.node');
const stampFile = join(root, 'build', '.coded-stamp');

function stamp() {
  const h = createHash('sha256');
  // the addon's own sources (files directly in native/; native/vendor holds headers for scripts/gpu-check)
  const sources = readdirSync(join(root, 'native'), { withFileTypes: true })
    .filter((d) => d.isFile())
    .map((d) => join('native', d.name))
    .sort();
  for (const f of ['binding.gyp', ...sources]) h.update(f).update(readFileSync(join(root, f)));
  h.update(process.env.LIBTORCH ?? 'debian');
  return h.digest('hex');
}

const current = stamp();
if (process.argv.includes('--if-stale') && existsSync(addon) && existsSync(stampFile) && readFileSync(stampFile, 'utf8') === current) {
  process.exit(0);
}
// CODED_REUSE_BUILD=DIR: the build directory of another copy of this package (e.g. the checkout
// an npm tarball was packed from). Its addon is copied instead of compiling when it was built
// from identical native sources, binding.gyp and LIBTORCH (same stamp); otherwise we build.
const reuse = process.env.CODED_REUSE_BUILD;
if (reuse) {
  const theirStamp = join(reuse, '.coded-stamp');
  const theirAddon = join(reuse, 'Release', 'coded_torch.node');
  if (existsSync(theirAddon) && existsSync(theirStamp) && readFileSync(theirStamp, 'utf8') === current) {
    mkdirSync(dirname(addon), { recursive: true });
    copyFileSync(theirAddon, addon);
    writeFileSync(stampFile, current);
    console.error(`[build-native] reused ${theirAddon} (built from identical sources)`);
    process.exit(0);
  }
  console.error(`[build-native] CODED_REUSE_BUILD=${reuse}: no addon built from these sources there; building`);
}
const args = ['rebuild', '-j', String(availableParallelism())];
// nodedir: npm's setting, else the prefix of the running node if it ships include/node
const prefix = dirname(dirname(process.execPath));
const candidates = [process.env.npm_config_nodedir, '/usr', prefix].filter(Boolean);
const nodedir = candidates.find((d) => existsSync(join(d, 'include', 'node', 'node_api.h')));
if (nodedir) args.push(`--nodedir=${nodedir}`);
// node-gyp: this package's own (a development checkout), else the one npm bundles (npm passes
// its path to install scripts as npm_config_node_gyp), so installing needs no devDependency
function findNodeGyp() {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    const bundled = process.env.npm_config_node_gyp;
    if (bundled && existsSync(bundled)) return bundled;
    const nextToNpm = join(dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js');
    if (existsSync(nextToNpm)) return nextToNpm;
    console.error(
      '[build-native] node-gyp not found: run this through npm (npm install / npm run build:native), which bundles it, or `npm install -g node-gyp`',
    );
    process.exit(1);
  }
}
const gyp = findNodeGyp();
console.error('[build-native] building the libtorch addon (node-gyp)');
const r = spawnSync(process.execPath, [gyp, ...args], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error(
    '\naddon build failed. Needs g++, make, python3 and libtorch headers: Debian `libtorch-dev`, or LIBTORCH=/path/to/libtorch (with include/ and lib/).',
  );
  process.exit(r.status ?? 1);
}
writeFileSync(stampFile, current);
