// Checkpoint integrity: the SHA-256 of the tensor data is recorded at save and verified at
// load (flipped bytes are refused, naming the file), non-finite weights are refused, and
// checkpoints written before digests were recorded still load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { liveTensors, manualSeed, nn, tensor, tidy } from '../../src/index.js';
import { loadBaseCheckpoint } from '../../src/models/base-checkpoint.js';
import { buildModel } from '../../src/models/registry.js';
import { tmp } from '../helpers/util.js';

const {
  DATA_DIGEST_KEY,
  Linear,
  NonFiniteWeightsError,
  SafetensorsDigestError,
  loadSafetensors,
  parseSafetensors,
  readCheckpoint,
  saveCheckpoint,
  saveSafetensors,
} = nn;

const root = fileURLToPath(new URL('../../../', import.meta.url));
const main = join(root, 'dist', 'src', 'cli', 'main.js');

/** Byte offset of the data section (after the 8-byte length and the JSON header). */
function dataStart(buf: Buffer): number {
  return 8 + Number(buf.readBigUInt64LE(0));
}

test('saveCheckpoint records the SHA-256 of the tensor data; a flipped data byte is refused at load, naming the file', () => {
  const dir = tmp('ckpt-integrity-');
  const live = liveTensors();
  try {
    manualSeed(1);
    const lin = new Linear(8, 4);
    const p = join(dir, 'ck.safetensors');
    saveCheckpoint(p, lin, { kind: 'test' });
    const good = readFileSync(p);
    const meta = loadSafetensors(p);
    assert.match(meta.metadata[DATA_DIGEST_KEY], /^[0-9a-f]{64}$/);
    for (const t of meta.tensors.values()) t.dispose();
    const ck = readCheckpoint(p);
    for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();

    // one flipped bit in the middle of the weights: still a well-formed file, other numbers
    const bad = Buffer.from(good);
    const at = dataStart(bad) + Math.floor((bad.length - dataStart(bad)) / 2);
    bad[at] ^= 0x10;
    const q = join(dir, 'flipped.safetensors');
    writeFileSync(q, bad);
    assert.throws(
      () => readCheckpoint(q),
      (e: unknown) => {
        assert.ok(e instanceof SafetensorsDigestError, String(e));
        assert.ok(e.message.startsWith(`${q}: corrupt file`), e.message);
        assert.match(e.message, /SHA-256 digest recorded when it was saved/);
        return true;
      },
    );
    assert.throws(() => loadBaseCheckpoint(q), SafetensorsDigestError);
    lin.dispose();
    assert.equal(liveTensors(), live, 'a refused file leaves no tensors behind');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the digest is opt-in in the format layer: without it the bytes are those of the Python library, with it they verify', () => {
  tidy(() => {
    const a = tensor(new Float32Array([1, 2, 3]));
    const plain = nn.serializeSafetensors({ a }, { format: 'pt' });
    assert.equal(parseSafetensors(plain).metadata[DATA_DIGEST_KEY], undefined);
    const withDigest = nn.serializeSafetensors({ a }, { format: 'pt' }, { digest: true });
    const back = parseSafetensors(withDigest, 'x.safetensors');
    assert.deepEqual([...back.tensors.get('a')!.data()], [1, 2, 3]);
    // a digest that does not match (here: edited data) is refused even by the bare reader
    const edited = Buffer.from(withDigest);
    edited[edited.length - 1] ^= 0x01;
    assert.throws(() => parseSafetensors(edited, 'x.safetensors'), /x\.safetensors: corrupt file/);
  });
});

test('checkpoints with NaN or infinite weights are refused with the tensors named', () => {
  const dir = tmp('ckpt-integrity-');
  const live = liveTensors();
  try {
    tidy(() => {
      // as a diverged run or an old, digest-less file with NaNs would hold them
      const w = tensor(new Float32Array([0.1, Number.NaN, 0.3, Number.POSITIVE_INFINITY, 0.5, 0.6]), [2, 3]);
      const b = tensor(new Float32Array([0, 0]), [2]);
      const p = join(dir, 'nan.safetensors');
      saveSafetensors(p, { weight: w, bias: b }, { format: 'pt', coded: JSON.stringify({ kind: 'test' }) });
      assert.throws(
        () => readCheckpoint(p),
        (e: unknown) => {
          assert.ok(e instanceof NonFiniteWeightsError, String(e));
          assert.ok(
            e.message.startsWith(`${p}: the checkpoint holds non-finite weights (NaN or infinite values) in 1 tensor: weight (2 of 6)`),
            e.message,
          );
          return true;
        },
      );
      // a digest does not make NaN weights acceptable
      const q = join(dir, 'nan-digest.safetensors');
      saveSafetensors(q, { weight: w, bias: b }, { format: 'pt' }, { digest: true });
      assert.throws(() => readCheckpoint(q), NonFiniteWeightsError);
    });
    assert.equal(liveTensors(), live);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('checkpoints written before digests were recorded (the shipped models) still load', () => {
  const p = join(root, 'models', 'fashion-mnist-base-mlp.safetensors');
  const st = loadSafetensors(p);
  assert.equal(st.metadata[DATA_DIGEST_KEY], undefined, 'the shipped file predates digests');
  for (const t of st.tensors.values()) t.dispose();
  const { model, meta } = loadBaseCheckpoint(p);
  assert.equal(meta.model, 'base-mlp');
  model.dispose();
});

test('coded eval base refuses a corrupted and a NaN checkpoint (exit 1, the file named), where it used to evaluate them', () => {
  const dir = tmp('ckpt-integrity-');
  try {
    // a real base checkpoint saved by this version (so with a digest), then one bit flipped
    const src = join(root, 'models', 'fashion-mnist-base-mlp.safetensors');
    const ck = readCheckpoint(src);
    const model = buildModel('base-mlp', { channels: 1, height: 28, width: 28, classes: 10 });
    model.loadStateDict(ck.state);
    for (const t of ck.state.values()) t.dispose();
    const fresh = join(dir, 'fresh.safetensors');
    saveCheckpoint(fresh, model, ck.metadata);
    const bytes = readFileSync(fresh);
    bytes[dataStart(bytes) + 1000] ^= 0x40;
    const flipped = join(dir, 'flipped.safetensors');
    writeFileSync(flipped, bytes);
    let r = spawnSync(process.execPath, [main, 'eval', 'base', flipped], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /flipped\.safetensors: corrupt file/);

    // NaN weights in an old-style (digest-less) file
    const sd = model.stateDict();
    const nanWeights = new Map([...sd].map(([k, t]) => [k, k.endsWith('weight') ? t.mul(Number.NaN) : t]));
    const nanPath = join(dir, 'nan.safetensors');
    saveSafetensors(nanPath, nanWeights, { format: 'pt', coded: JSON.stringify(ck.metadata) });
    r = spawnSync(process.execPath, [main, 'eval', 'base', nanPath], { encoding: 'utf8' });
    assert.equal(r.status, 1, r.stdout + r.stderr);
    assert.match(r.stderr, /nan\.safetensors: the checkpoint holds non-finite weights \(NaN or infinite values\)/);
    for (const [k, t] of nanWeights) if (k.endsWith('weight')) t.dispose();
    model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
