// Deterministic algorithms (--deterministic on the training commands): the switch reaches
// libtorch's global context, and two seeded training runs with it write identical weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isDeterministic, nn, randn, setDeterministic, tidy } from '../../src/index.js';
import { conv2d } from '../../src/engine/ops.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const main = join(root, 'dist', 'src', 'cli', 'main.js');

test("setDeterministic switches libtorch's deterministic algorithms on and off; CPU training ops still run", () => {
  assert.equal(isDeterministic(), false, 'off by default');
  try {
    setDeterministic(true);
    assert.equal(isDeterministic(), true);
    assert.ok(process.env.CUBLAS_WORKSPACE_CONFIG !== undefined, 'cuBLAS needs a fixed workspace for deterministic results');
    tidy(() => {
      const x = randn([2, 1, 6, 6], { requiresGrad: true });
      const w = randn([3, 1, 3, 3], { requiresGrad: true });
      conv2d(x, w).sum().backward();
      assert.deepEqual(w.grad!.shape, [3, 1, 3, 3]);
    });
  } finally {
    setDeterministic(false);
  }
  assert.equal(isDeterministic(), false);
});

test('coded train base --deterministic: two runs of one seed write the same weights (same data digest)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-deterministic-'));
  try {
    const digests = [1, 2].map((i) => {
      const out = join(dir, `run${i}`);
      const r = spawnSync(
        process.execPath,
        [
          main,
          'train',
          'base',
          '--dataset',
          'synthetic',
          '--model',
          'logistic-regression',
          '--epochs',
          '2',
          '--seed',
          '3',
          '--deterministic',
          '--out',
          out,
          '--json',
        ],
        { encoding: 'utf8' },
      );
      assert.equal(r.status, 0, r.stderr);
      const st = nn.loadSafetensors(join(out, 'best.safetensors'));
      for (const t of st.tensors.values()) t.dispose();
      return st.metadata[nn.DATA_DIGEST_KEY];
    });
    assert.match(digests[0], /^[0-9a-f]{64}$/);
    assert.equal(digests[0], digests[1]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
