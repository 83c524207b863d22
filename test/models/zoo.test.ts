import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randn, tidy, noGrad, manualSeed } from '../../src/index.js';
import { buildModel, isModelName, MODELS, modelNames } from '../../src/models/index.js';

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

test("ResNet-18 on 3x224x224 is torchvision's ImageNet architecture: 11,689,512 parameters, [1, 3, 224, 224] -> [1, 1000]", () => {
  manualSeed(0);
  const m = buildModel('resnet18', { channels: 3, height: 224, width: 224, classes: 1000 });
  try {
    assert.equal(m.numParameters(), 11689512);
    const conv1 = m.stateDict().get('conv1.weight')!;
    assert.deepEqual(conv1.shape, [64, 3, 7, 7], 'the 7x7 stem');
    const shape = tidy(() => noGrad(() => m.eval().forward(randn([1, 3, 224, 224])).shape));
    assert.deepEqual(shape, [1, 1000]);
  } finally {
    m.dispose();
  }
});

test("ResNet-152 on 3x224x224 has torchvision's 60,192,808 parameters", () => {
  const m = buildModel('resnet152', { channels: 3, height: 224, width: 224, classes: 1000 });
  try {
    assert.equal(m.numParameters(), 60192808);
  } finally {
    m.dispose();
  }
});

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
  assert.equal(modelNames().length, MODELS.length + 1, 'the zoo names and the mlp:... family');
});

test("mlp:W1,W2 builds a fully connected model with those widths (mlp:200,100 has Base-MLP's state-dict layout)", () => {
  manualSeed(0);
  const a = buildModel('mlp:200,100', grey);
  const b = buildModel('base-mlp', grey);
  const c = buildModel('mlp:64,32,16', grey);
  try {
    assert.deepEqual([...a.stateDict().keys()], [...b.stateDict().keys()]);
    assert.equal(a.numParameters(), b.numParameters());
    assert.equal(c.numParameters(), 784 * 64 + 64 + 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10);
    assert.deepEqual(
      tidy(() => noGrad(() => c.eval().forward(randn([3, 1, 28, 28])).shape)),
      [3, 10],
    );
    assert.ok(isModelName('mlp:1024,512:dropout=0.25') && isModelName('mlp:8') && isModelName('base-mlp'));
  } finally {
    for (const m of [a, b, c]) m.dispose();
  }
});

test('mlp:...:dropout=P drops hidden units in training mode only', () => {
  manualSeed(0);
  const m = buildModel('mlp:256,128:dropout=0.5', grey);
  try {
    tidy(() =>
      noGrad(() => {
        const x = randn([4, 1, 28, 28]);
        const e1 = m.eval().forward(x);
        const e2 = m.forward(x);
        assert.equal(e1.sub(e2).abs().max().item(), 0, 'evaluation is deterministic');
        const t1 = m.train().forward(x);
        const t2 = m.forward(x);
        assert.ok(t1.sub(t2).abs().max().item() > 0, 'training draws different masks');
        assert.ok(t1.sub(e1).abs().max().item() > 0, 'training mode drops units');
      }),
    );
  } finally {
    m.dispose();
  }
});

test('malformed mlp:... names are refused with the syntax in the error', () => {
  for (const bad of ['mlp:', 'mlp:0', 'mlp:10,x', 'mlp:10:dropout=1', 'mlp:10:dropout=-0.1', 'mlp:10:drop=0.1', 'mlp 10']) {
    assert.equal(isModelName(bad), false, bad);
    assert.throws(() => buildModel(bad, grey), /mlp:W1,W2,...\[:dropout=P\]|hidden widths must be/, bad);
  }
});
