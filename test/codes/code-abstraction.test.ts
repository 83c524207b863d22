import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, tidy } from '../../src/index.js';
import {
  patternsWithMissing,
  systematicEvaluationPatterns,
  missingIndices,
  codeFromConfig,
  saveCode,
  ReplicationCode,
  UndecodableError,
  computeAll,
} from '../../src/codes/index.js';
import { Linear } from '../../src/nn/index.js';
import { loadCodeCheckpoint } from '../../src/codes/checkpoint.js';

const choose = (n: number, m: number): number => (m < 0 || m > n ? 0 : m === 0 ? 1 : (choose(n - 1, m - 1) * n) / m);

test('patternsWithMissing enumerates C(n, m) distinct patterns with m missing', () => {
  for (const [n, m] of [
    [3, 1],
    [5, 2],
    [6, 3],
    [4, 0],
    [4, 4],
  ]) {
    const ps = patternsWithMissing(n, m);
    assert.equal(ps.length, choose(n, m));
    assert.equal(new Set(ps.map((p) => p.join())).size, ps.length);
    for (const p of ps) assert.equal(missingIndices(p).length, m);
  }
});

test('systematic evaluation patterns count C(k+r, m) minus the all-parity ones, for m = 1..r', () => {
  for (const [k, r] of [
    [2, 1],
    [2, 2],
    [3, 2],
    [5, 1],
    [4, 3],
  ]) {
    let expected = 0;
    for (let m = 1; m <= r; m++) expected += choose(k + r, m) - choose(r, m);
    const ps = systematicEvaluationPatterns(k, r);
    assert.equal(ps.length, expected, `k=${k} r=${r}`);
    for (const p of ps)
      assert.ok(
        p.slice(0, k).some((a) => !a),
        'every pattern misses a data output',
      );
  }
});

test('replication code: encode sends copies to the base model, decode takes the first arrival', () => {
  tidy(() => {
    const code = codeFromConfig({ family: 'replication', k: 1, r: 2 });
    assert.equal(code.n, 3);
    const x = tensor([[[1, 2]], [[3, 4]]]); // G = 2 groups of k = 1 queries of shape [2]
    const base = new Linear(2, 3);
    const outs = computeAll(code, { base }, x);
    assert.equal(outs.length, 3);
    const d = code.decode([null, outs[1], null]);
    assert.deepEqual(d.reconstructed, [false]);
    assert.deepEqual(d.outputs[0].toList(), outs[0].toList());
    assert.throws(() => code.decode([null, null, null]), UndecodableError);
    assert.throws(() => code.decode([null, null]), /takes 3 outputs/);
    assert.throws(() => code.encode(tensor([[1, 2]])), /expected coding groups shaped \[G, 1, \.\.\.\]/);
    base.dispose();
  });
});

test('codes round-trip through checkpoints; unknown families and non-code files are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-code-'));
  try {
    const path = join(dir, 'c.safetensors');
    saveCode(path, new ReplicationCode(1), { base: 'none' });
    const { code, metadata } = loadCodeCheckpoint(path, { base: false, parity: 'none', keepExtra: true });
    assert.equal(code.name, 'replication(r=1)');
    assert.equal(metadata.base, 'none');
    assert.throws(() => codeFromConfig({ family: 'nope', k: 2, r: 1 }), /unknown code family 'nope'/);
    assert.throws(() => codeFromConfig({ family: 'replication', k: 2, r: 1 }), /k = 1/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
