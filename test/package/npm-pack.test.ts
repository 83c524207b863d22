// The npm package as a user gets it: `npm pack` holds what the commands need (the .proto for
// gRPC, the shipped models, the PyTorch peer script, LICENSE), and the tarball installs into an
// empty project without devDependencies and runs `coded --help`, `coded info` and `coded demo`.
// The install script reuses this checkout's addon when it was built from the same sources
// (CODED_REUSE_BUILD; the compile itself is what `npm run build:native` does in every checkout);
// CODED_PACK_TEST_BUILD=1 makes it compile from scratch with npm's bundled node-gyp instead.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const npm = spawnSync('npm', ['--version'], { encoding: 'utf8' }).status === 0;

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} (in ${cwd}) failed:\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
}

test('npm pack: the tarball installs into an empty directory and runs coded --help, coded info and coded demo', {
  skip: !npm && 'npm is not installed',
  timeout: 900_000,
}, () => {
  const work = mkdtempSync(join(tmpdir(), 'coded-pack-'));
  try {
    // dist/ is built (the suite runs from it): pack without prepack's rebuild
    const packed = JSON.parse(run('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], root)) as {
      filename: string;
      files: { path: string }[];
    }[];
    const files = new Set(packed[0].files.map((f) => f.path));
    for (const f of [
      'LICENSE',
      'package.json',
      'bin/coded',
      'dist/src/cli/main.js',
      'src/serve/proto/inference.proto',
      'src/bench/peer/engine_peer.py',
      'models/fashion-mnist-base-mlp.safetensors',
      'models/fashion-mnist-base-mlp-concat-k2.safetensors',
      'binding.gyp',
      'native/addon.cc',
      'scripts/build-native.mjs',
    ]) {
      assert.ok(files.has(f), `${f} is not in the tarball`);
    }
    assert.ok(![...files].some((f) => f.startsWith('dist/test/') || f.startsWith('test/')), 'tests are not shipped');

    const app = join(work, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true }));
    const env: NodeJS.ProcessEnv = { ...process.env };
    if (process.env.CODED_PACK_TEST_BUILD !== '1') env.CODED_REUSE_BUILD = join(root, 'build');
    delete env.CODED_ADDON;
    // onnxruntime-node (optional) would fetch its CUDA provider from nuget.org: not here
    env.ONNXRUNTIME_NODE_INSTALL = 'skip';
    run(
      'npm',
      ['install', '--omit=dev', '--prefer-offline', '--no-audit', '--no-fund', '--loglevel=error', join(work, packed[0].filename)],
      app,
      env,
    );
    const pkg = join(app, 'node_modules', 'coded-inference');
    assert.ok(existsSync(join(pkg, 'build', 'Release', 'coded_torch.node')), 'the install script put the addon in place');
    assert.ok(!existsSync(join(app, 'node_modules', 'typescript')), 'no devDependency was installed');

    const coded = join(app, 'node_modules', '.bin', 'coded');
    assert.match(run(coded, ['--help'], app, env), /Commands:/);
    assert.match(run(coded, ['info'], app, env), /libtorch/i);
    const demo = JSON.parse(run(coded, ['demo', '--json'], app, env).trim().split('\n').pop()!) as {
      testAccuracy: number;
      coded: { degradedAccuracy: number } | null;
    };
    assert.ok(demo.testAccuracy > 0.8, `demo test accuracy ${demo.testAccuracy}`);
    assert.ok(demo.coded !== null && demo.coded.degradedAccuracy > 0.8, 'part 2 ran with the shipped models');
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
});
