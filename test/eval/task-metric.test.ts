import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, tidy, manualSeed, randn } from '../../src/index.js';
import { zeros_ } from '../../src/engine/init.js';
import { AdditionCode } from '../../src/codes/index.js';
import { Linear } from '../../src/nn/index.js';
import { Module } from '../../src/nn/module.js';
import type { Tensor } from '../../src/engine/tensor.js';
import { boxIoU, boxIntersectionOverUnion, classificationAccuracy } from '../../src/eval/task-metric.js';
import { evaluateCodeWithMetric } from '../../src/eval/metric-evaluation.js';
import { syntheticBoxes, disposeBoxDataset } from '../../src/data/synthetic-boxes.js';

test('box IoU against hand-computed boxes (overlap, containment, disjoint, degenerate prediction)', () => {
  tidy(() => {
    const a = tensor(Float32Array.from([0, 0, 2, 2, 0, 0, 4, 4, 0, 0, 1, 1, 0.2, 0.2, 0.4, 0.6, 3, 3, 1, 1]), [5, 4]);
    const b = tensor(Float32Array.from([1, 1, 3, 3, 1, 1, 2, 2, 2, 2, 3, 3, 0.2, 0.2, 0.4, 0.6, 0, 0, 4, 4]), [5, 4]);
    const iou = boxIoU(a, b).toList() as number[];
    // [0,2]^2 vs [1,3]^2: intersection 1, union 4 + 4 - 1 = 7
    const want = [1 / 7, 1 / 16, 0, 1, 0];
    iou.forEach((v, i) => assert.ok(Math.abs(v - want[i]) < 1e-6, `row ${i}: ${v} vs ${want[i]}`));
    assert.deepEqual(
      boxIntersectionOverUnion
        .scores(a, b)
        .toList()
        .map((v) => +(v as number).toFixed(6)),
      want.map((v) => +v.toFixed(6)),
    );
    assert.throws(() => boxIoU(a, b.narrow(0, 0, 2)), /expected two \[B, 4\] box tensors/);
    const acc = classificationAccuracy
      .scores(tensor(Float32Array.from([0.1, 0.9, 0.8, 0.2]), [2, 2]), tensor([1, 1], [2], { dtype: 'int64' }))
      .toList();
    assert.deepEqual(acc, [1, 0]);
  });
});

test('synthetic boxes: the same seed gives the same data; boxes lie in [0, 1] around the brightest rectangle', () => {
  const a = syntheticBoxes({ trainSize: 20, validationSize: 5, testSize: 5, seed: 4 });
  const b = syntheticBoxes({ trainSize: 20, validationSize: 5, testSize: 5, seed: 4 });
  const c = syntheticBoxes({ trainSize: 20, validationSize: 5, testSize: 5, seed: 5 });
  try {
    assert.deepEqual(a.test.boxes.toList(), b.test.boxes.toList());
    assert.notDeepEqual(a.test.boxes.toList(), c.test.boxes.toList());
    const boxes = a.train.boxes.toList() as number[];
    const img = a.train.images.toList() as number[];
    const s = a.options.side;
    for (let i = 0; i < 20; i++) {
      const [x0, y0, x1, y1] = boxes.slice(4 * i, 4 * i + 4).map((v) => Math.round(v * s));
      assert.ok(x0 >= 0 && y0 >= 0 && x1 <= s && y1 <= s && x1 - x0 >= 4 && y1 - y0 >= 4);
      // mean brightness inside the box well above outside
      let inside = 0;
      let outside = 0;
      for (let y = 0; y < s; y++)
        for (let x = 0; x < s; x++) {
          const v = img[i * s * s + y * s + x];
          if (x >= x0 && x < x1 && y >= y0 && y < y1) inside += v / ((x1 - x0) * (y1 - y0));
          else outside += v / (s * s - (x1 - x0) * (y1 - y0));
        }
      assert.ok(inside - outside > 1, `sample ${i}: inside ${inside}, outside ${outside}`);
    }
    assert.equal(a.meanBox.length, 4);
  } finally {
    for (const d of [a, b, c]) disposeBoxDataset(d);
  }
});

class LinearBoxes extends Module {
  readonly fc: Linear;
  constructor() {
    super();
    this.fc = this.registerModule('fc', new Linear(16, 4));
    zeros_(this.fc.bias!);
  }
  forward(x: Tensor): Tensor {
    return this.fc.forward(x.flatten(1));
  }
}

test('evaluateCodeWithMetric: a linear F with F_P = F decodes exactly (degraded IoU = base IoU); the default answer is scored as given', () => {
  manualSeed(5);
  const f = new LinearBoxes();
  tidy(() => {
    const inputs = randn([31, 1, 4, 4]);
    const targets = tidy(() => f.forward(inputs).add(0.05)); // boxes near F's outputs: base IoU < 1
    const e = evaluateCodeWithMetric({
      code: new AdditionCode(2),
      workers: { base: f, parity: [f] },
      inputs,
      targets,
      metric: boxIntersectionOverUnion,
      defaultOutput: [0, 0, 1, 1],
      batchGroups: 4,
    });
    assert.equal(e.samples, 30);
    assert.equal(e.metric, 'IoU');
    assert.equal(e.reconstructions, 30, 'each of the 2 patterns reconstructs one query of each of the 15 groups');
    assert.ok(Math.abs(e.degraded - e.base) < 1e-4, `degraded ${e.degraded} vs base ${e.base}`);
    // the default answer scored by hand over the same 30 samples
    const all = boxIoU(
      tensor(Float32Array.from(Array.from({ length: 31 }, () => [0, 0, 1, 1]).flat()), [31, 4]),
      targets,
    ).toList() as number[];
    // the grouping drops one sample (31 = 15 groups of 2 + 1): the baseline is a mean over 30 of the 31
    const total = all.reduce((x, y) => x + y, 0);
    assert.ok(
      all.some((v) => Math.abs((total - v) / 30 - e.defaultBaseline) < 1e-5),
      `default baseline ${e.defaultBaseline}`,
    );
    assert.deepEqual(
      e.byMissing.map((m) => [m.missing, m.patterns]),
      [[1, 2]],
    );
  });
  f.dispose();
});
