// Prints the compiler/linker settings for the libtorch the addon builds against.
// LIBTORCH=/path/to/libtorch (a root with include/ and lib/, e.g. a CUDA build) wins;
// otherwise Debian's libtorch-dev paths are used. Called by binding.gyp.
'use strict';
const fs = require('fs');
const path = require('path');

function settings() {
  const root = process.env.LIBTORCH;
  const abi = process.env.LIBTORCH_CXX11_ABI ?? '1';
  if (root) {
    const inc = path.join(root, 'include');
    const lib = path.join(root, 'lib');
    if (!fs.existsSync(path.join(inc, 'ATen', 'ATen.h'))) {
      throw new Error(`LIBTORCH=${root} has no include/ATen/ATen.h: point LIBTORCH at a libtorch root (with include/ and lib/)`);
    }
    const libs = ['-L' + lib, '-Wl,-rpath,' + lib, '-Wl,--no-as-needed'];
    for (const name of ['torch_cuda', 'c10_cuda']) {
      if (fs.existsSync(path.join(lib, `lib${name}.so`))) libs.push('-l' + name);
    }
    libs.push('-ltorch', '-ltorch_cpu', '-lc10', '-Wl,--as-needed');
    return { includes: [inc, path.join(inc, 'torch', 'csrc', 'api', 'include')], libs, abi };
  }
  const inc = '/usr/include';
  if (!fs.existsSync(path.join(inc, 'ATen', 'ATen.h'))) {
    throw new Error('libtorch headers not found: install Debian libtorch-dev (apt-get install --no-install-recommends libtorch-dev) or set LIBTORCH');
  }
  return { includes: [inc, path.join(inc, 'torch', 'csrc', 'api', 'include')], libs: ['-ltorch', '-ltorch_cpu', '-lc10'], abi };
}

const what = process.argv[2];
try {
  const s = settings();
  if (what === 'includes') console.log(s.includes.join(' '));
  else if (what === 'libs') console.log(s.libs.join(' '));
  else if (what === 'abi') console.log(s.abi);
  else throw new Error('usage: libtorch-config.cjs includes|libs|abi');
} catch (e) {
  console.error(String(e.message ?? e));
  process.exit(1);
}
