import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, tidy, randn, manualSeed, liveTensors, type Tensor } from '../../src/index.js';
import { zeros_ } from '../../src/engine/init.js';
import {
  LinearCode,
  AdditionCode,
  UndecodableError,
  patternsWithMissing,
  checkGroupInput,
  checkOutputs,
  availabilityOf,
  type Availability,
  type Code,
  type CodeConfig,
  type CodedQuery,
  type Decoded,
} from '../../src/codes/index.js';
import { inverse } from '../../src/codes/small-matrix.js';
import { LogisticRegression } from '../../src/models/logistic-regression.js';
import { evaluateCode, formatCodeEvaluation, writeOverallAccuracyPlot, overallAccuracy } from '../../src/eval/code-metrics.js';
import type { Module } from '../../src/nn/module.js';
import type { Split } from '../../src/data/split.js';

function linearF(features: number, classes: number): LogisticRegression {
  const f = new LogisticRegression(features, classes);
  zeros_(f.fc.bias!); // linear, not affine: F(a + b) = F(a) + F(b)
  return f;
}

/** A split of N random 1x4x4 images; labels: the linear model's prediction for the first half, random after. */
function syntheticSplit(f: Module, n: number, classes: number): Split {
  return tidy(() => {
    const images = randn([n, 1, 4, 4]).keep();
    const pred = f.forward(images).argmax(1).toList();
    const labels = pred.map((p, i) => (i < n / 2 ? p : (p + 1 + (i % (classes - 1))) % classes));
    return { images, labels: tensor(labels, [n], { dtype: 'int64' }).keep(), size: n };
  });
}

test('evaluateCode: a linear F with F_P = F reconstructs exactly, so A_d = A_a and recovery is 100%', () => {
  manualSeed(3);
  const f = linearF(16, 10);
  const split = syntheticSplit(f, 101, 10);
  const before = liveTensors();
  try {
    for (const code of [new AdditionCode(2), new LinearCode({ k: 3, r: 2 })]) {
      const e = evaluateCode({ code, workers: { base: f, parity: [f, f] }, test: split, classes: 10, batchGroups: 7 });
      assert.equal(e.groups, Math.floor(101 / code.k));
      assert.equal(e.samples, e.groups * code.k);
      assert.equal(e.degraded.recovery, 1, code.name);
      assert.equal(e.degraded.recoveryTop5, 1);
      assert.equal(e.wrongRanks.count, 0);
      assert.equal(e.defaultBaseline, 0.1);
      // every sample is reconstructed equally often across the patterns, so A_d = A_a
      assert.ok(Math.abs(e.degraded.accuracy - e.baseAccuracy) < 1e-12, `${e.degraded.accuracy} vs ${e.baseAccuracy}`);
      assert.ok(e.baseAccuracy > 0.4 && e.baseAccuracy < 0.6);
      assert.equal(e.patterns.length, code.evaluationPatterns().length);
      assert.deepEqual(
        e.byMissing.map((m) => m.missing),
        code.r === 1 ? [1] : [1, 2],
      );
      assert.equal(e.byBaseCorrect.baseCorrect.recovery, 1);
      assert.equal(e.byBaseCorrect.baseWrong.accuracy, 0);
      assert.equal(e.overall[0].accuracy, e.baseAccuracy);
      assert.ok(Math.abs(e.overall[20].accuracy - e.degraded.accuracy) < 1e-12);
      for (const p of e.patterns) assert.ok(Number.isFinite(p.info.conditionNumber));
      const md = formatCodeEvaluation(e);
      assert.match(md, /A_d \(degraded-mode accuracy\)/);
      assert.match(md, /\| pattern \| missing \|/);
    }
  } finally {
    f.dispose();
    split.images.dispose();
    split.labels.dispose();
  }
  assert.equal(liveTensors(), before - 2 - 2, "no tensor leaks (the model's 2 and the split's 2 freed)");
});

test('evaluateCode: a wrong parity model gives recovery < 1 and ranks of the wrong reconstructions', () => {
  manualSeed(4);
  const f = linearF(16, 10);
  const fp = linearF(16, 10); // a different linear map: reconstructions are wrong
  const split = syntheticSplit(f, 200, 10);
  try {
    const e = evaluateCode({ code: new AdditionCode(2), workers: { base: f, parity: [fp] }, test: split, classes: 10 });
    assert.ok(e.degraded.recovery < 0.6);
    assert.equal(e.degraded.count, 200);
    assert.ok(e.wrongRanks.count > 0);
    assert.ok(Math.abs(e.wrongRanks.rank2 + e.wrongRanks.rank3 + e.wrongRanks.other - 1) < 1e-12);
    assert.equal(e.byBaseCorrect.baseCorrect.count + e.byBaseCorrect.baseWrong.count, e.degraded.count);
    assert.equal(overallAccuracy(0.9, 0.5, 0.25), 0.8);
  } finally {
    f.dispose();
    fp.dispose();
    split.images.dispose();
    split.labels.dispose();
  }
});

/** A toy non-systematic code for a linear F: 3 workers run F on x1 + x2, x1 - x2, x1 + 2 x2; any 2 decode. */
class ToyMDS implements Code {
  readonly name = 'toy-mds(k=2, n=3)';
  readonly family = 'toy-mds';
  readonly k = 2;
  readonly r = 1;
  readonly n = 3;
  readonly systematic = false;
  private readonly rows = [
    [1, 1],
    [1, -1],
    [1, 2],
  ];
  encode(x: Tensor): CodedQuery[] {
    checkGroupInput(this, x);
    return this.rows.map(([a, b]) => ({
      fn: { kind: 'base' as const },
      inputs: [tidy(() => x.select(1, 0).mul(a).add(x.select(1, 1).mul(b)))],
    }));
  }
  canDecode(a: Availability): boolean {
    return a.length === 3 && a.filter(Boolean).length >= 2;
  }
  decode(outputs: readonly (Tensor | null)[]): Decoded {
    checkOutputs(this, outputs);
    const av = availabilityOf(outputs);
    if (!this.canDecode(av)) throw new UndecodableError(this.name, av, 'fewer than 2 outputs');
    const use = av
      .map((a, i) => (a ? i : -1))
      .filter((i) => i >= 0)
      .slice(0, 2);
    const inv = inverse(use.map((i) => this.rows[i]));
    const outs = [0, 1].map((q) => tidy(() => outputs[use[0]]!.mul(inv[q][0]).add(outputs[use[1]]!.mul(inv[q][1]))));
    return { outputs: outs, reconstructed: [true, true] };
  }
  evaluationPatterns(): Availability[] {
    return [...patternsWithMissing(3, 0), ...patternsWithMissing(3, 1)];
  }
  modules(): Map<string, Module> {
    return new Map();
  }
  config(): CodeConfig {
    return { family: this.family, k: 2, r: 1 };
  }
}

test('evaluateCode: non-systematic codes decode every output, grouped by straggler count', async () => {
  manualSeed(5);
  const f = linearF(16, 10);
  const split = syntheticSplit(f, 60, 10);
  const dir = mkdtempSync(join(tmpdir(), 'coded-metrics-'));
  try {
    const e = evaluateCode({ code: new ToyMDS(), workers: { base: f }, test: split, classes: 10 });
    assert.equal(e.systematic, false);
    assert.deepEqual(
      e.byMissing.map((m) => [m.missing, m.patterns, m.count]),
      [
        [0, 1, 60],
        [1, 3, 180],
      ],
    );
    assert.ok(e.degraded.recovery > 0.999);
    assert.ok(Math.abs(e.degraded.accuracy - e.baseAccuracy) < 1e-12);
    assert.match(formatCodeEvaluation(e), /\| stragglers \|/);
    const out = await writeOverallAccuracyPlot(e, join(dir, 'plot'));
    assert.match(readFileSync(out.svg, 'utf8'), /<svg/);
    assert.ok(existsSync(out.png));
    assert.deepEqual([...readFileSync(out.png).subarray(1, 4)].map((c) => String.fromCharCode(c)).join(''), 'PNG');
  } finally {
    f.dispose();
    split.images.dispose();
    split.labels.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
