import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed } from '../../src/engine/index.js';
import { saveCheckpoint } from '../../src/nn/checkpoint.js';
import { buildModel } from '../../src/models/registry.js';
import { datasetInfo } from '../../src/data/registry.js';
import { packageRoot } from '../../src/util/package-root.js';
import { parseIntList } from '../../src/cli/commands/compare.js';

const main = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
const coded = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 180000 });

test('coded compare: one table section and plot panel per (K, N), every entry, JSON and files; usage errors exit 2', () => {
  assert.deepEqual(parseIntList('2..4', 'k', 1), [2, 3, 4]);
  assert.deepEqual(parseIntList('3,5', 'n', 1), [3, 5]);
  assert.throws(() => parseIntList('4..2', 'k', 1), /empty range/);
  assert.throws(() => parseIntList('x', 'k', 1), /'x' is not an integer or a range/);
  const dir = mkdtempSync(join(tmpdir(), 'coded-compare-'));
  try {
    manualSeed(1);
    const info = datasetInfo('synthetic');
    const input = { channels: info.channels, height: info.height, width: info.width };
    const base = buildModel('base-mlp', { ...input, classes: info.classes.length });
    const basePath = join(dir, 'base.safetensors');
    saveCheckpoint(basePath, base, {
      kind: 'base',
      dataset: 'synthetic',
      model: 'base-mlp',
      classes: info.classes,
      normalization: info.normalization,
      input,
      config: { seed: 1 },
    });
    base.dispose();
    const out = join(dir, 'out');
    const r = coded(
      'compare',
      '--base',
      basePath,
      '--k',
      '2..3',
      '--r',
      '1,2',
      '--codes',
      'none replication berrut',
      '--codes',
      'letcc:lambdaDec=0.01 bspline',
      '--out',
      out,
      '--json',
    );
    assert.equal(r.status, 0, r.stderr);
    const j = JSON.parse(r.stdout) as {
      sections: { k: number; n: number; results: { label: string; byStragglers: { stragglers: number }[] }[] }[];
    };
    assert.deepEqual(
      j.sections.map((s) => [s.k, s.n]),
      [
        [2, 3],
        [2, 4],
        [3, 4],
        [3, 5],
      ],
    );
    for (const s of j.sections) {
      assert.deepEqual(
        s.results.map((x) => x.label),
        ['no code', 'replication', 'berrut', 'letcc:lambdaDec=0.01', 'bspline'],
      );
      for (const x of s.results)
        assert.deepEqual(
          x.byStragglers.map((b) => b.stragglers),
          Array.from({ length: s.n - s.k + 1 }, (_, i) => i),
        );
    }
    for (const f of ['compare.md', 'compare.json', 'compare.svg', 'compare.png']) assert.ok(existsSync(join(out, f)), f);
    assert.match(readFileSync(join(out, 'compare.md'), 'utf8'), /### K = 3, N = 5\n/);
    const bad = coded('compare', '--base', basePath, '--k', '2', '--n', '3', '--codes', 'lagrange');
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /unknown entry 'lagrange'/);
    const both = coded('compare', '--base', basePath, '--k', '2', '--n', '3', '--r', '1');
    assert.equal(both.status, 2);
    assert.match(both.stderr, /exactly one of --n and --r/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
