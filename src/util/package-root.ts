// The package root (the directory holding package.json and binding.gyp), found from this
// file's place: src/util in the source tree, dist/src/util when compiled, and the same under
// node_modules/coded-inference once installed. The one place that knows the package layout's
// anchor: the native addon (build/Release), the gRPC .proto (src/serve/proto), the PyTorch
// peer (src/bench/peer), bin/coded and the shipped models are all found from it.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let cached: string | null = null;

export function packageRoot(): string {
  if (cached !== null) return cached;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 6; i++) {
    if (existsSync(join(dir, 'package.json')) && existsSync(join(dir, 'binding.gyp'))) return (cached = dir);
    dir = dirname(dir);
  }
  throw new Error('coded-inference: cannot find the package root (package.json and binding.gyp) above ' + fileURLToPath(import.meta.url));
}
