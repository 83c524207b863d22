import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { manualSeed } from '../../src/engine/index.js';
import { saveCheckpoint } from '../../src/nn/checkpoint.js';
import { buildModel } from '../../src/models/registry.js';
import { datasetInfo } from '../../src/data/registry.js';
import { codeFromConfig, saveCode } from '../../src/codes/registry.js';
import { parseCodeSpec } from '../../src/codes/spec.js';
import type { LagrangeCode } from '../../src/codes/lagrange.js';
import { packageRoot } from '../../src/util/package-root.js';

const main = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
const coded = (...args: string[]) => spawnSync(process.execPath, [main, ...args], { encoding: 'utf8', timeout: 120000 });

test('code specs: FAMILY:k=K,n=N[,key=value]; trained families and malformed specs are refused with the reason', () => {
  assert.deepEqual(parseCodeSpec('berrut:k=2,n=4'), { family: 'berrut', k: 2, r: 2 });
  assert.deepEqual(parseCodeSpec('letcc:k=3,r=1,lambdaDec=1e-3'), { family: 'letcc', k: 3, r: 1, lambdaDec: 0.001 });
  assert.deepEqual(parseCodeSpec('bspline:k=2,n=5,encoder=bspline'), { family: 'bspline', k: 2, r: 3, encoder: 'bspline' });
  assert.deepEqual(parseCodeSpec('replication:n=3'), { family: 'replication', k: 1, r: 2 });
  assert.throws(() => parseCodeSpec('berrut:k=2'), /n \(workers\) is required/);
  assert.throws(() => parseCodeSpec('berrut:k=3,n=2'), /n must be an integer >= k = 3/);
  assert.throws(() => parseCodeSpec('berrut:k=2,n=4,r=2'), /give n or r, not both/);
  assert.throws(() => parseCodeSpec('berrut:k=2,4'), /'4' is not key=value/);
  assert.throws(
    () => parseCodeSpec('addition:k=2,n=3'),
    /addition codes need parity models: train them with `coded train parity --code addition`/,
  );
  assert.throws(
    () => parseCodeSpec('reed-solomon:k=2,n=3'),
    /unknown training-free family 'reed-solomon' \(known: berrut, letcc, bspline, replication\)/,
  );
});

test('coded eval routes every family: --code SPEC with a base checkpoint (Berrut, LeTCC, B-spline) and Lagrange checkpoints from `coded train polynomial`', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-eval-families-'));
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
    for (const spec of ['berrut:k=2,n=4', 'letcc:k=3,n=5,lambdaDec=0.01', 'bspline:k=2,n=5']) {
      const r = coded('eval', '--code', spec, '--base', basePath, '--json');
      assert.equal(r.status, 0, r.stderr);
      const e = JSON.parse(r.stdout) as {
        family: string;
        k: number;
        n: number;
        byMissing: { missing: number }[];
        config: Record<string, unknown>;
      };
      const want = parseCodeSpec(spec);
      assert.equal(e.family, want.family);
      assert.equal(e.n, want.k + want.r);
      assert.deepEqual(
        e.byMissing.map((m) => m.missing),
        Array.from({ length: want.r + 1 }, (_, i) => i),
        `${spec}: results for 0..N-K stragglers`,
      );
      if (want.family === 'letcc') assert.equal(e.config.lambdaDec, 0.01);
    }
    // the smoothing parameters picked on the validation hold-out, then evaluated
    const p = coded('eval', '--code', 'letcc:k=2,n=3', '--base', basePath, '--pick-smoothing', '--json');
    assert.equal(p.status, 0, p.stderr);
    const pe = JSON.parse(p.stdout) as {
      pickSmoothing: { lambdaDec: number; trials: { lambdaDec: number; accuracy: number }[] };
      config: { lambdaDec: number };
    };
    assert.equal(pe.config.lambdaDec, pe.pickSmoothing.lambdaDec);
    assert.equal(
      Math.max(...pe.pickSmoothing.trials.map((t) => t.accuracy)),
      pe.pickSmoothing.trials.find((t) => t.lambdaDec === pe.pickSmoothing.lambdaDec)!.accuracy,
    );
    // usage errors: exit 2 with the reason
    const bad = coded('eval', '--code', 'addition:k=2,n=3', '--base', basePath);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /addition codes need parity models/);
    const noBase = coded('eval', '--code', 'berrut:k=2,n=4');
    assert.equal(noBase.status, 2);
    assert.match(noBase.stderr, /--base CKPT is required/);
    const pickBerrut = coded('eval', '--code', 'berrut:k=2,n=4', '--base', basePath, '--pick-smoothing');
    assert.equal(pickBerrut.status, 2);
    assert.match(pickBerrut.stderr, /--pick-smoothing applies to letcc codes/);
    // a Lagrange (AICC) checkpoint: evaluated with its worker network H
    const lc = codeFromConfig({
      family: 'lagrange',
      k: 2,
      r: 1,
      degree: 1,
      power: 1,
      worker: 'HB',
      encoder: 'mlp',
      computation: 'mlp',
      input: [input.channels, input.height, input.width],
      classes: info.classes.length,
      hidden: [8],
    }) as LagrangeCode;
    const lpath = join(dir, 'poly.safetensors');
    saveCode(lpath, lc, { dataset: 'synthetic', classes: info.classes });
    lc.dispose();
    const l = coded('eval', lpath, '--base', basePath, '--json');
    assert.equal(l.status, 0, l.stderr);
    const le = JSON.parse(l.stdout) as { family: string; R: number; byMissing: { missing: number; patterns: number }[] };
    assert.equal(le.family, 'lagrange');
    assert.equal(le.R, 2);
    assert.deepEqual(
      le.byMissing.map((m) => [m.missing, m.patterns]),
      [
        [0, 1],
        [1, 3],
      ],
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
