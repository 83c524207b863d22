// The one code-checkpoint loader: every checkpoint shipped in models/ loads (codes through
// loadCodeCheckpoint with their base model, base models through loadBaseCheckpoint), and a
// code's state is one Module whose state-dict names are the on-disk names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed, noGrad, randn, tidy } from '../../src/index.js';
import { codeFromConfig, computeAll } from '../../src/codes/index.js';
import { codeState, workerSetState } from '../../src/codes/code-state.js';
import { loadCodeCheckpoint, readCodeCheckpoint, saveCode } from '../../src/codes/checkpoint.js';
import { loadBaseCheckpoint } from '../../src/models/base-checkpoint.js';
import { readCheckpointHeader } from '../../src/nn/checkpoint.js';
import { readSafetensorsMetadata } from '../../src/nn/safetensors.js';
import { buildModel } from '../../src/models/registry.js';

const MODELS = new URL('../../../models/', import.meta.url).pathname;

test('every checkpoint in models/ loads: codes through loadCodeCheckpoint (with their recorded base), base models through loadBaseCheckpoint', () => {
  const files = readdirSync(MODELS)
    .filter((f) => f.endsWith('.safetensors'))
    .sort();
  assert.ok(files.length >= 8, `models/ holds ${files.length} checkpoints`);
  let codes = 0;
  for (const f of files) {
    const path = join(MODELS, f);
    const meta = readCheckpointHeader(path);
    if (meta.kind === 'code') {
      const l = loadCodeCheckpoint(path);
      try {
        assert.equal(l.parity.length, l.code.r, f);
        assert.equal(l.workers.parity?.length, l.code.r, f);
        assert.equal(l.base.meta.kind, 'base', f);
        // the loaded state is exactly the file's tensors (nothing left over, nothing missing)
        const names = [...codeState(l.code, l.parity).stateDict().keys()];
        assert.ok(names.length > 0 && names.every((n) => n.startsWith('parity.')), f);
        assert.equal(readSafetensorsMetadata(path).format, 'pt', f);
        tidy(() =>
          noGrad(() => {
            const { channels, height, width } = l.base.meta.input;
            const x = randn([2, l.code.k, channels, height, width]);
            const outs = computeAll(l.code, l.workers, x);
            assert.equal(outs.length, l.code.n, f);
          }),
        );
      } finally {
        l.dispose();
      }
      codes++;
    } else {
      assert.equal(meta.kind, 'base', f);
      const b = loadBaseCheckpoint(path);
      b.model.dispose();
    }
  }
  assert.ok(codes >= 3, `${codes} code checkpoints`);
});

test('a code with parity models saves and reloads through its state Module; tensor names are "<module>.<name>" and "parity.<j>.<name>"', () => {
  const dir = mkdtempSync(join(tmpdir(), 'code-ckpt-'));
  try {
    manualSeed(3);
    const code = codeFromConfig({
      family: 'learned',
      k: 2,
      r: 1,
      encoder: 'mlp',
      decoder: 'mlp',
      input: { channels: 1, height: 4, width: 4 },
      outputs: 3,
      parityModel: 'base-mlp',
    });
    const input = { channels: 1, height: 4, width: 4, classes: 3 };
    const parity = [buildModel('base-mlp', input)];
    const names = [...codeState(code, parity).stateDict().keys()];
    assert.ok(
      names.some((n) => n.startsWith('encoder.')) &&
        names.some((n) => n.startsWith('decoder.')) &&
        names.some((n) => n.startsWith('parity.0.')),
      names.join(', '),
    );
    const path = join(dir, 'c.safetensors');
    const base = { path: 'b.safetensors', sha256: '0'.repeat(64), dataset: 'synthetic', model: 'base-mlp' };
    saveCode(path, code, { base, parity: { model: 'base-mlp', input, count: 1 } }, new Map(), parity);
    const r = readCodeCheckpoint(path);
    try {
      assert.equal(r.parity.length, 1);
      for (const [k, t] of codeState(code, parity).stateDict()) {
        assert.deepEqual(codeState(r.code, r.parity).stateDict().get(k)!.toList(), t.toList(), k);
      }
      assert.equal(r.extra.size, 0);
    } finally {
      for (const m of [...r.code.modules().values(), ...r.parity]) m.dispose();
    }
    // without parity models: their tensors stay extra
    const n = readCodeCheckpoint(path, { parity: 'none' });
    assert.ok([...n.extra.keys()].every((k) => k.startsWith('parity.0.')) && n.extra.size > 0);
    for (const t of n.extra.values()) t.dispose();
    for (const m of n.code.modules().values()) m.dispose();
    for (const m of [...code.modules().values(), ...parity]) m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('workerSetState is everything a code runs as one Module: the code state under "code" (parity models under "code.parity"), F under "base", worker networks under "workers"', () => {
  manualSeed(4);
  const input = { channels: 1, height: 4, width: 4, classes: 3 };
  const code = codeFromConfig({
    family: 'learned',
    k: 2,
    r: 1,
    encoder: 'mlp',
    decoder: 'mlp',
    input: { channels: 1, height: 4, width: 4 },
    outputs: 3,
    parityModel: 'base-mlp',
  });
  const base = buildModel('base-mlp', input);
  const parity = [buildModel('base-mlp', input)];
  const worker = buildModel('base-mlp', input);
  const state = workerSetState(code, { base, parity, workers: new Map([['H', [worker]]]) });
  try {
    assert.deepEqual(state.keys(), ['code', 'base', 'workers']);
    const names = [...state.stateDict().keys()];
    for (const prefix of ['code.encoder.', 'code.decoder.', 'code.parity.0.', 'base.', 'workers.H.0.'])
      assert.ok(
        names.some((n) => n.startsWith(prefix)),
        `${prefix} in ${names.join(', ')}`,
      );
    state.eval();
    assert.ok([base, worker, ...parity, ...code.modules().values()].every((m) => !m.training));
  } finally {
    state.dispose();
  }
  assert.ok(base.parameters().every((p) => p.isDisposed) && parity[0].parameters().every((p) => p.isDisposed));
});
