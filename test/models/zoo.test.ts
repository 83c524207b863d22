import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn, tidy, noGrad, manualSeed } from '../../src/index.js';
import { buildModel, MODELS, modelNames } from '../../src/models/index.js';

const grey = { channels: 1, height: 28, width: 28, classes: 10 };
const rgb = { channels: 3, height: 32, width: 32, classes: 10 };

// parameter counts of the standard definitions (torchvision / kuangliu pytorch-cifar conventions)
const cases: [string, typeof grey, number | null][] = [
  ['logistic-regression', grey, 784 * 10 + 10],
  ['base-mlp', grey, 784 * 200 + 200 + 200 * 100 + 100 + 100 * 10 + 10],
  ['lenet5', grey, 156 + 2416 + 48120 + 10164 + 850],
  ['vgg11', rgb, 9231114],
  ['resnet18', rgb, 11173962],
  ['resnet18', grey, null],
  ['resnet152', rgb, 58156618],
];

for (const [name, spec, params] of cases) {
  test(`${name} on ${spec.channels}x${spec.height}x${spec.width} returns [N, classes] logits${params ? ` with ${params} parameters` : ''}`, () => {
    manualSeed(0);
    const m = buildModel(name, spec);
    try {
      if (params !== null) assert.equal(m.numParameters(), params);
      const shape = tidy(() => noGrad(() => m.eval().forward(randn([2, spec.channels, spec.height, spec.width])).shape));
      assert.deepEqual(shape, [2, spec.classes]);
    } finally {
      m.dispose();
    }
  });
}

test('the paper init gives linear weights std 0.01 and zero biases', () => {
  manualSeed(0);
  const m = buildModel('base-mlp', grey);
  try {
    const sd = m.stateDict();
    const std = sd.get('fc1.weight')!.std().item();
    assert.ok(Math.abs(std - 0.01) < 0.0005, `std ${std}`);
    assert.equal(sd.get('fc1.bias')!.abs().sum().item(), 0);
  } finally {
    m.dispose();
  }
});

test('unknown models and unsupported input shapes are refused with a clear error', () => {
  assert.throws(() => buildModel('resnet50', grey), /unknown model 'resnet50': choose one of/);
  assert.throws(() => buildModel('resnet152', grey), /does not take 1x28x28 inputs/);
  assert.equal(modelNames().length, MODELS.length);
});
