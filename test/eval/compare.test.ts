import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, tidy, randn, manualSeed } from '../../src/index.js';
import { zeros_ } from '../../src/engine/init.js';
import { AdditionCode, codeFromConfig } from '../../src/codes/index.js';
import { LogisticRegression } from '../../src/models/logistic-regression.js';
import { BaseMLP } from '../../src/models/index.js';
import { compareSchemes, comparisonSpec, formatComparison } from '../../src/eval/compare.js';
import { countMacs } from '../../src/eval/macs.js';
import type { Split } from '../../src/data/split.js';
import type { Module } from '../../src/nn/module.js';

/** n random 1x4x4 images labelled by F's own prediction (so the base model is 100% accurate) */
function splitFor(f: Module, n: number): Split {
  return tidy(() => {
    const images = randn([n, 1, 4, 4]).keep();
    const labels = f.forward(images).argmax(1).toList();
    return { images, labels: tensor(labels, [n], { dtype: 'int64' }).keep(), size: n };
  });
}

test('countMacs counts Linear layers and matrix products from their shapes, once', () => {
  manualSeed(1);
  const f = new BaseMLP({ inFeatures: 16, hidden: [8, 6], numClasses: 5 });
  const x = randn([3, 1, 4, 4]);
  assert.equal(countMacs(() => f.forward(x)).macs, 3 * (16 * 8 + 8 * 6 + 6 * 5));
  assert.equal(countMacs(() => randn([4, 7]).matmul(randn([7, 2]))).macs, 4 * 2 * 7);
  // restored afterwards
  assert.equal(countMacs(() => 0).macs, 0);
  f.dispose();
});

test('compareSchemes: accuracy of the k answers by straggler count; replication, no code (defaults credited 1/classes), exact parity decoding; MACs and workers per query', () => {
  manualSeed(2);
  const f = new LogisticRegression(16, 4);
  zeros_(f.fc.bias!); // linear F: the addition code's decoding is exact with F_P = F
  const test_ = splitFor(f, 40);
  try {
    const results = compareSchemes({
      schemes: [
        { label: 'no code', kind: 'replication', k: 2, n: 2 },
        { label: 'replication', kind: 'replication', k: 2, n: 3 },
        { label: 'addition', kind: 'code', code: new AdditionCode(2), workers: { base: f, parity: [f] } },
        { label: 'berrut', kind: 'code', code: codeFromConfig({ family: 'berrut', k: 2, r: 1 }), workers: { base: f } },
        { label: 'letcc', kind: 'code', code: codeFromConfig({ family: 'letcc', k: 2, r: 1 }), workers: { base: f } },
      ],
      base: f,
      test: test_,
      classes: 4,
      maxStragglers: 1,
      batchGroups: 7,
    });
    const [none, rep, add, berrut, letcc] = results;
    for (const r of results) {
      assert.equal(r.samples, 40);
      assert.equal(r.baseAccuracy, 1);
      assert.deepEqual(
        r.byStragglers.map((b) => b.stragglers),
        [0, 1],
      );
    }
    // no code: one of the two workers late -> half the answers default (credited 1/4)
    assert.deepEqual(
      none.byStragglers.map((b) => [b.patterns, b.accuracy, b.defaulted]),
      [
        [1, 1, 0],
        [2, 0.5 + 0.5 / 4, 0.5],
      ],
    );
    // replication over 3 workers: worker 0 and 2 serve query 0, worker 1 query 1; one late worker
    // (3 patterns): only worker 1 late loses an answer -> 1 of 6 answers defaulted
    assert.deepEqual(rep.byStragglers[1].patterns, 3);
    assert.ok(Math.abs(rep.byStragglers[1].defaulted - 1 / 6) < 1e-12);
    assert.ok(Math.abs(rep.byStragglers[1].accuracy - (5 / 6 + 1 / 6 / 4)) < 1e-12);
    // a linear F: the addition code decodes exactly
    assert.deepEqual(
      add.byStragglers.map((b) => [b.accuracy, b.recovery, b.defaulted]),
      [
        [1, 1, 0],
        [1, 1, 0],
      ],
    );
    // costs: n / k workers per query; extra MACs = the third worker's F (16 x 4) over 2 queries,
    // plus Berrut's coding: encode 3 x 2 x 16, decode 2 x 3 x 4 (all returned), per query
    assert.equal(none.workersPerQuery, 1);
    assert.equal(rep.workersPerQuery, 1.5);
    assert.equal(none.extraMacsPerQuery, 0);
    assert.equal(rep.extraMacsPerQuery, 64 / 2);
    assert.equal(berrut.codingMacsPerQuery, (3 * 2 * 16 + 2 * 3 * 4) / 2);
    assert.equal(berrut.extraMacsPerQuery, 64 / 2 + berrut.codingMacsPerQuery);
    assert.equal(letcc.codingMacsPerQuery, berrut.codingMacsPerQuery);
    assert.equal(none.encodeUsPerGroup, null);
    assert.ok(berrut.encodeUsPerGroup !== null && berrut.encodeUsPerGroup >= 0 && berrut.decodeUsPerGroup !== null);
    const md = formatComparison([{ k: 2, n: 3, results }]);
    assert.match(md, /\| no code \| 2 \| 2 \| 100.00% \| 62.50% \(50.00% def.\) \|/);
    const spec = comparisonSpec([{ k: 2, n: 3, results }]) as { data: { values: { scheme: string }[] } };
    assert.equal(spec.data.values.length, 5 * 2);
  } finally {
    test_.images.dispose();
    test_.labels.dispose();
    f.dispose();
  }
});
