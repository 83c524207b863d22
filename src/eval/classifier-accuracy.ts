// Test accuracy of a classifier, overall and per class.
import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import type { Module } from '../nn/module.js';
import type { Split } from '../data/mnist-family.js';

export interface AccuracyResult {
  accuracy: number;
  correct: number;
  total: number;
  perClass: { correct: number; total: number; accuracy: number }[];
}

export function classifierAccuracy(model: Module, data: Split, { batchSize = 1000, flatten = false, numClasses = 10 } = {}): AccuracyResult {
  model.eval();
  const perClass = Array.from({ length: numClasses }, () => ({ correct: 0, total: 0, accuracy: 0 }));
  noGrad(() => {
    for (let start = 0; start < data.size; start += batchSize) {
      const len = Math.min(batchSize, data.size - start);
      const [pred, labels] = tidy(() => {
        const x0 = data.images.narrow(0, start, len);
        const x = flatten ? x0.flatten(1) : x0;
        return [model.forward(x).argmax(1).toList(), data.labels.narrow(0, start, len).toList()];
      });
      for (let i = 0; i < len; i++) {
        const c = perClass[labels[i]];
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
  return { accuracy: correct / data.size, correct, total: data.size, perClass };
}
