#!/usr/bin/env node
// Builds the libtorch addon with node-gyp against Debian's libtorch-dev or $LIBTORCH.
// Node's headers come from the installation itself when present (no download needed).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = new URL('..', import.meta.url).pathname;
const args = ['rebuild', '-j', String(availableParallelism())];
// nodedir: npm's setting, else the prefix of the running node if it ships include/node
const prefix = dirname(dirname(process.execPath));
const candidates = [process.env.npm_config_nodedir, '/usr', prefix].filter(Boolean);
const nodedir = candidates.find((d) => existsSync(join(d, 'include', 'node', 'node_api.h')));
if (nodedir) args.push(`--nodedir=${nodedir}`);
const gyp = require.resolve('node-gyp/bin/node-gyp.js');
const r = spawnSync(process.execPath, [gyp, ...args], { cwd: root, stdio: 'inherit' });
if (r.status !== 0) {
  console.error('\naddon build failed. Needs g++, make, python3 and libtorch headers: Debian `libtorch-dev`, or LIBTORCH=/path/to/libtorch (with include/ and lib/).');
  process.exit(r.status ?? 1);
}
