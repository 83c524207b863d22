// The command line as a new user meets it: shipped code checkpoints evaluate from any
// directory, a trained base model is not overwritten by accident, mistyped options get a
// suggestion, `coded eval` without arguments is a usage error, evaluation reads only the test
// split, and a wrong --data-dir is reported as such.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { closestOption, parse, UsageError } from '../../src/cli/args.js';
import { DatasetUnavailableError } from '../../src/data/errors.js';
import { disposeTestSet, loadDataset, loadTestSet } from '../../src/data/registry.js';
import { resolveRecordedBase } from '../../src/models/base-checkpoint.js';
import { idxBytes } from '../data/helpers.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const main = join(root, 'dist', 'src', 'cli', 'main.js');
const models = join(root, 'models');
/** The workplace's shared data next to the repository (MNIST test files), when there is one. */
const sharedMnist = join(root, '..', 'shared', 'data', 'mnist');

const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'cli-hardening-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function coded(args: string[], cwd = root, env: NodeJS.ProcessEnv = process.env) {
  return spawnSync(process.execPath, [main, ...args], { cwd, env, encoding: 'utf8' });
}

test('a shipped code checkpoint evaluates from any directory: its base is found next to it', () => {
  const elsewhere = tmp();
  const r = coded(['eval', join(models, 'fashion-mnist-base-mlp-addition-k2.safetensors'), '--json'], elsewhere);
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { baseAccuracy: number; base: { path: string } };
  assert.equal(out.base.path, 'models/fashion-mnist-base-mlp.safetensors', 'the recorded path, relative to the repository');
  assert.ok(out.baseAccuracy > 0.89, `A_a ${out.baseAccuracy}`);

  // the resolution order: the checkpoint's folder first, then the current directory; the SHA-256 decides
  const code = join(models, 'fashion-mnist-base-mlp-addition-k2.safetensors');
  const rec = { path: 'models/fashion-mnist-base-mlp.safetensors', sha256: 'f'.repeat(64) };
  assert.throws(() => resolveRecordedBase(code, rec), /but .*models\/fashion-mnist-base-mlp\.safetensors differs \(sha256 /);
  assert.throws(
    () => resolveRecordedBase(join(elsewhere, 'x.safetensors'), { path: 'nowhere/base.safetensors', sha256: rec.sha256 }),
    /its base checkpoint nowhere\/base\.safetensors .* was not found \(looked in .*nowhere\/base\.safetensors, .*base\.safetensors.*\); pass --base CKPT/,
  );
});

test('coded train base refuses to overwrite a trained base model in --out unless --force (codes record its SHA-256)', () => {
  const out = tmp();
  const best = join(out, 'best.safetensors');
  copyFileSync(join(models, 'fashion-mnist-logistic-regression.safetensors'), best);
  const before = readFileSync(best);
  const args = ['train', 'base', '--dataset', 'synthetic', '--model', 'logistic-regression', '--epochs', '1', '--out', out];
  const r = coded(args);
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /already holds a trained base model \(logistic-regression on fashion-mnist, test accuracy 84\.38%\)/);
  assert.match(r.stderr, /--resume, or pass --force/);
  assert.ok(readFileSync(best).equals(before), 'the checkpoint is untouched');
  const forced = coded([...args, '--force', '--json']);
  assert.equal(forced.status, 0, forced.stderr);
  assert.ok(!readFileSync(best).equals(before), '--force overwrites it');
});

test('unknown options get a "did you mean" suggestion', () => {
  const opts = { epochs: { type: 'string' as const }, 'batch-size': { type: 'string' as const }, 'data-dir': { type: 'string' as const } };
  assert.throws(
    () => parse(['--epoch', '3'], opts, 'USAGE'),
    (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, /^unknown option '--epoch' \(did you mean --epochs\?\)\n\nUSAGE$/);
      return true;
    },
  );
  assert.equal(closestOption('--epohcs', Object.keys(opts)), 'epochs');
  assert.equal(closestOption('--batchsize', Object.keys(opts)), 'batch-size');
  assert.equal(closestOption('--data', Object.keys(opts)), 'data-dir');
  assert.equal(closestOption('--zzz', Object.keys(opts)), undefined);
  assert.throws(
    () => parse(['--zzz'], opts, 'USAGE'),
    (e: unknown) => e instanceof UsageError && /^unknown option '--zzz'\n\nUSAGE$/.test(e.message),
  );
  const r = coded(['train', 'base', '--model', 'base-mlp', '--epoch', '3']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /unknown option '--epoch' \(did you mean --epochs\?\)/);
  assert.doesNotMatch(r.stderr, /positional argument/);
});

test('coded eval without arguments prints its usage and exits 2 (a usage error), --help exits 0', () => {
  const r = coded(['eval']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /expected a checkpoint to evaluate/);
  assert.match(r.stderr, /coded eval CODE_CKPT/);
  assert.equal(coded(['eval', 'base']).status, 2);
  const h = coded(['eval', '--help']);
  assert.equal(h.status, 0);
  assert.match(h.stdout, /coded eval CODE_CKPT/);
});

test('evaluation reads only the test split: no training files needed, downloaded or read', async () => {
  const dataRoot = tmp();
  mkdirSync(join(dataRoot, 'mnist'));
  // miniature MNIST test files (unverified: they are not the official bytes)
  const n = 6;
  writeFileSync(join(dataRoot, 'mnist', 't10k-images-idx3-ubyte.gz'), gzipSync(idxBytes([n, 28, 28], new Uint8Array(n * 784).fill(7))));
  writeFileSync(
    join(dataRoot, 'mnist', 't10k-labels-idx1-ubyte.gz'),
    gzipSync(idxBytes([n], Uint8Array.from([0, 1, 2, 3, 4, 5]), { type: 0x08 })),
  );
  const ts = await loadTestSet('mnist', { dataDir: dataRoot, download: false, verify: false });
  try {
    assert.equal(ts.test.size, n);
    assert.deepEqual(ts.test.labels.toList(), [0, 1, 2, 3, 4, 5]);
    assert.equal(ts.location, join(dataRoot, 'mnist'));
  } finally {
    disposeTestSet(ts);
  }
  // the full loader (training) still needs the training files
  await assert.rejects(loadDataset('mnist', { dataDir: dataRoot, download: false, verify: false }), DatasetUnavailableError);
});

test('coded eval of an MNIST model works with only the official test files present', {
  skip: !existsSync(join(sharedMnist, 't10k-images-idx3-ubyte.gz')) && 'no ../shared/data/mnist next to the repository',
}, () => {
  const dataRoot = tmp();
  mkdirSync(join(dataRoot, 'mnist'));
  for (const f of ['t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz']) symlinkSync(join(sharedMnist, f), join(dataRoot, 'mnist', f));
  // an empty cache: the training files are nowhere, so reading them would mean a download
  const env = { ...process.env, CODED_DATA: tmp() };
  const r = coded(['eval', 'base', join(models, 'mnist-logistic-regression.safetensors'), '--data-dir', dataRoot, '--json'], root, env);
  assert.equal(r.status, 0, r.stderr);
  assert.equal((JSON.parse(r.stdout) as { total: number }).total, 10000);
  assert.doesNotMatch(r.stderr, /download/);
});

test('a --data-dir that does not exist, or is a file, is reported as such', () => {
  const d = tmp();
  const missing = join(d, 'no-such-dir');
  let r = coded(['eval', 'base', join(models, 'fashion-mnist-logistic-regression.safetensors'), '--data-dir', missing]);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, new RegExp(`--data-dir ${missing} does not exist`));
  const file = join(d, 'a-file');
  writeFileSync(file, 'x');
  r = coded(['eval', 'base', join(models, 'fashion-mnist-logistic-regression.safetensors'), '--data-dir', file]);
  assert.equal(r.status, 1, r.stdout);
  assert.match(r.stderr, new RegExp(`--data-dir ${file} is a file, not a directory`));
  r = coded(['datasets', '--data-dir', missing]);
  assert.notEqual(r.status, 0);
  assert.match(r.stderr, /does not exist/);
});
