// Accuracy of a classifier on a split, overall and per class, and its predictions.
import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import type { Device } from '../engine/dtype.js';
import type { Module } from '../nn/module.js';
import type { Split } from '../data/split.js';

export interface AccuracyResult {
  accuracy: number;
  correct: number;
  total: number;
  perClass: { correct: number; total: number; accuracy: number }[];
}

export function classifierAccuracy(
  model: Module,
  data: Split,
  { batchSize = 1000, flatten = false, numClasses = 10, device = 'cpu' as Device } = {},
): AccuracyResult {
  model.eval();
  const perClass = Array.from({ length: numClasses }, () => ({ correct: 0, total: 0, accuracy: 0 }));
  noGrad(() => {
    for (let start = 0; start < data.size; start += batchSize) {
      const len = Math.min(batchSize, data.size - start);
      const [pred, labels] = tidy(() => {
        let x = data.images.narrow(0, start, len);
        if (flatten) x = x.flatten(1);
        if (device !== 'cpu') x = x.to(device);
        return [model.forward(x).argmax(1).toList(), data.labels.narrow(0, start, len).toList()];
      });
      for (let i = 0; i < len; i++) {
        const c = perClass[labels[i]];
        if (c === undefined) throw new RangeError(`label ${labels[i]} is outside the ${numClasses} classes`);
        c.total++;
        if (pred[i] === labels[i]) c.correct++;
      }
    }
  });
  let correct = 0;
  for (const c of perClass) {
    c.accuracy = c.total ? c.correct / c.total : 0;
    correct += c.correct;
  }
  return { accuracy: data.size ? correct / data.size : 0, correct, total: data.size, perClass };
}
