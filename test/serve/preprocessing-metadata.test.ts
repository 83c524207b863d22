// The preprocessing a served model expects (size, channels, mean, std) in its V2 metadata:
// `parameters.preprocessing`, a JSON string (or 'unknown'), over REST and gRPC; a coded
// frontend passes its base instance's on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { packageRoot } from '../../src/util/package-root.js';
import { fromGrpcParams } from '../../src/serve/v2.js';
import { InstanceServer } from '../../src/serve/instance.js';
import { Frontend } from '../../src/serve/frontend.js';
import { validateFrontendConfig } from '../../src/serve/config.js';
import { servedModelFrom } from '../../src/serve/served-model.js';
import { V2GrpcClient } from '../../src/serve/client.js';

const models = join(packageRoot(), 'models');
const fashion = { size: [28, 28], channels: 1, mean: [0.286], std: [0.353], scale: 1 / 255, source: 'dataset fashion-mnist' };

async function published(model: ReturnType<typeof servedModelFrom>): Promise<{ rest: unknown; grpc: unknown }> {
  const s = await InstanceServer.start({ model, httpPort: 0, grpcPort: 0 });
  const client = new V2GrpcClient(`127.0.0.1:${s.grpcPort}`);
  try {
    const rest = (await (await fetch(`http://127.0.0.1:${s.httpPort}/v2/models/${model.name}`)).json()) as {
      parameters?: { preprocessing?: string };
    };
    const g = await client.modelMetadata(model.name, 10000);
    const gp = g.parameters === undefined ? undefined : fromGrpcParams(g.parameters).preprocessing;
    const parse = (v: unknown) => (typeof v === 'string' && v !== 'unknown' ? JSON.parse(v) : v);
    return { rest: parse(rest.parameters?.preprocessing), grpc: parse(gp) };
  } finally {
    client.close();
    await s.close();
  }
}

test("instances publish their model's preprocessing in the V2 metadata (REST and gRPC): zoo checkpoints their dataset's normalisation, own model files 'unknown'", async () => {
  // a base checkpoint written before preprocessing was recorded: its normalisation and input shape
  assert.deepEqual(await published(servedModelFrom(join(models, 'fashion-mnist-base-mlp.safetensors'), 'base')), {
    rest: fashion,
    grpc: fashion,
  });
  // a parity checkpoint: its base's (from the dataset it names)
  assert.deepEqual(await published(servedModelFrom(join(models, 'fashion-mnist-base-mlp-addition-k2.safetensors'), 'parity')), {
    rest: fashion,
    grpc: fashion,
  });
  // a TorchScript file records none
  const pt = servedModelFrom(join(packageRoot(), 'examples', 'own-model', 'small_cnn.pt'), undefined, undefined, undefined, {
    inputShape: [3, 32, 32],
  });
  assert.deepEqual(await published(pt), { rest: 'unknown', grpc: 'unknown' });
  // synthetic models have nothing to publish
  assert.deepEqual(await published(servedModelFrom('noop:4', 'noop')), { rest: undefined, grpc: undefined });
});

test("a coded frontend publishes its base instance's preprocessing", async () => {
  const inst = await InstanceServer.start({
    model: servedModelFrom(join(models, 'fashion-mnist-base-mlp.safetensors'), 'm'),
    httpPort: null,
    grpcPort: 0,
  });
  let fe: Frontend | null = null;
  try {
    fe = await Frontend.start({
      config: validateFrontendConfig({
        name: 'coded',
        mode: 'none',
        httpPort: 0,
        grpcPort: 0,
        pools: { base: { model: 'm', instances: [`127.0.0.1:${inst.grpcPort}`] } },
        sloMs: 5000,
      }),
      logger: pino({ level: 'silent' }),
    });
    const meta = (await (await fetch(`http://127.0.0.1:${fe.httpPort}/v2/models/coded`)).json()) as {
      parameters?: { preprocessing?: string };
    };
    assert.deepEqual(JSON.parse(meta.parameters!.preprocessing!), fashion);
  } finally {
    await fe?.close();
    await inst.close();
  }
});
