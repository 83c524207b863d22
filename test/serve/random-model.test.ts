import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tensor, tidy, noGrad, manualSeed } from '../../src/index.js';
import { buildModel } from '../../src/models/registry.js';
import { InstanceServer } from '../../src/serve/instance.js';
import { V2GrpcClient } from '../../src/serve/client.js';
import { servedModelFrom, parseRandomModelSpec, RANDOM_MODEL_SPEC } from '../../src/serve/served-model.js';

test('random:MODEL:CxHxW:CLASSES[:SEED] parses into a zoo name, an input shape, a class count and a seed (default 1)', () => {
  assert.deepEqual(parseRandomModelSpec('random:resnet18:3x224x224:1000'), {
    model: 'resnet18',
    input: { channels: 3, height: 224, width: 224 },
    classes: 1000,
    seed: 1,
  });
  assert.deepEqual(parseRandomModelSpec('random:resnet18:3x224x224:1000:42'), {
    model: 'resnet18',
    input: { channels: 3, height: 224, width: 224 },
    classes: 1000,
    seed: 42,
  });
  // model names with colons of their own (the mlp:... family)
  assert.deepEqual(parseRandomModelSpec('random:mlp:200,100:dropout=0.2:1x28x28:10:7'), {
    model: 'mlp:200,100:dropout=0.2',
    input: { channels: 1, height: 28, width: 28 },
    classes: 10,
    seed: 7,
  });
  const m = servedModelFrom('random:resnet18:3x224x224:1000');
  assert.equal(m.name, 'resnet18');
  assert.deepEqual(m.inputShape, [3, 224, 224]);
  assert.deepEqual(m.outputShape, [1000]);
  assert.deepEqual(m.sideInputs, []);
  assert.equal(servedModelFrom('random:mlp:64,32:1x28x28:10', 'named').name, 'named');
  assert.equal(servedModelFrom('random:mlp:64,32:1x28x28:10').name, 'mlp_64_32', 'a V2-safe default name');
});

test('malformed random:... specs are refused with an error naming the syntax', () => {
  const syntax = new RegExp(RANDOM_MODEL_SPEC.replace(/[[\]]/g, '\\$&'));
  for (const bad of [
    'random:resnet18',
    'random:resnet18:3x224x224',
    'random:3x224x224:1000',
    'random:resnet18:224x224:1000',
    'random:resnet18:3x0x224:1000',
    'random:resnet18:3xax224:1000',
    'random:resnet18:3x224x224:0',
    'random:resnet18:3x224x224:ten',
    'random:resnet18:3x224x224:1000:1.5',
    'random:resnet18:1000:3x224x224',
  ]) {
    assert.throws(
      () => servedModelFrom(bad),
      (e: Error) => syntax.test(e.message) && e.message.includes(`'${bad}'`),
      bad,
    );
  }
  assert.throws(() => servedModelFrom('random:resnet18:3x224x224:1000', undefined, 0), /parity-code checkpoints only/);
  assert.throws(
    () => servedModelFrom('random:resnet18:3x224x224:1000', undefined, undefined, 'H[0]'),
    /--worker applies to code checkpoints/,
  );
});

test('an instance serving random:MODEL answers what that zoo model computes with the same seed; unknown models and shapes it does not take fail its start', async () => {
  const spec = { channels: 1, height: 28, width: 28, classes: 10 };
  const s = await InstanceServer.start({ model: servedModelFrom('random:lenet5:1x28x28:10:3'), httpPort: null, grpcPort: 0 });
  const client = new V2GrpcClient(`127.0.0.1:${s.grpcPort}`);
  manualSeed(3);
  const local = buildModel('lenet5', spec).eval();
  try {
    const x = Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => Math.sin(i));
    const r = await client.infer('lenet5', 'input', x, [2, 1, 28, 28], 10000);
    assert.deepEqual(r.shape, [2, 10]);
    const want = tidy(() => noGrad(() => local.forward(tensor(x, [2, 1, 28, 28])).dataFloat32()));
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(r.data[i] - want[i]) < 1e-5, `output ${i}: ${r.data[i]} vs ${want[i]}`);
  } finally {
    client.close();
    local.dispose();
    await s.close();
  }
  await assert.rejects(
    InstanceServer.start({ model: servedModelFrom('random:resnet50:3x224x224:1000'), httpPort: null, grpcPort: 0 }),
    /unknown model 'resnet50'/,
  );
  await assert.rejects(
    InstanceServer.start({ model: servedModelFrom('random:resnet152:1x28x28:10'), httpPort: null, grpcPort: 0 }),
    /does not take 1x28x28 inputs/,
  );
});
