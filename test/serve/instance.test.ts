import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { InstanceServer } from '../../src/serve/instance.js';
import { servedModelFrom } from '../../src/serve/served-model.js';
import { V2GrpcClient } from '../../src/serve/client.js';
import { parseLatency, FaultInjector } from '../../src/serve/faults.js';

const D = 6;
const C = 3;

async function post(port: number, path: string, body: string | Buffer, headers: Record<string, string> = {}) {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json', ...headers },
  });
  return { status: r.status, headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
}

function jsonReq(data: number[], shape = [data.length / D, D], extra: Record<string, unknown> = {}) {
  return JSON.stringify({ id: 'q1', inputs: [{ name: 'input', datatype: 'FP32', shape, data }], ...extra });
}

test('instance: REST JSON, binary extension and gRPC agree with each other; bad requests get 400 / INVALID_ARGUMENT and serving continues', async () => {
  const s = await InstanceServer.start({
    model: servedModelFrom(`linear:${D}:${C}:7`),
    httpPort: 0,
    grpcPort: 0,
    maxBatch: 8,
    maxBodyBytes: 4096,
  });
  const client = new V2GrpcClient(`127.0.0.1:${s.grpcPort}`);
  try {
    const x = Array.from({ length: 2 * D }, (_, i) => Math.sin(i + 1));
    // health, metadata
    for (const p of ['/v2/health/live', '/v2/health/ready', '/v2/models/linear/ready'])
      assert.equal((await fetch(`http://127.0.0.1:${s.httpPort}${p}`)).status, 200, p);
    const meta = (await (await fetch(`http://127.0.0.1:${s.httpPort}/v2/models/linear`)).json()) as { inputs: { shape: number[] }[] };
    assert.deepEqual(meta.inputs[0].shape, [-1, D]);
    assert.equal((await fetch(`http://127.0.0.1:${s.httpPort}/v2/models/other`)).status, 404);
    // JSON
    const r1 = await post(s.httpPort, '/v2/models/linear/infer', jsonReq(x));
    assert.equal(r1.status, 200, r1.body.toString());
    const j1 = JSON.parse(r1.body.toString()) as { id: string; outputs: { shape: number[]; data: number[] }[] };
    assert.equal(j1.id, 'q1');
    assert.deepEqual(j1.outputs[0].shape, [2, C]);
    // binary in, binary out
    const head = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [2, D], parameters: { binary_data_size: 4 * 2 * D } }],
        outputs: [{ name: 'output', parameters: { binary_data: true } }],
      }),
    );
    const bin = Buffer.from(Float32Array.from(x).buffer);
    const r2 = await post(s.httpPort, '/v2/models/linear/infer', Buffer.concat([head, bin]), {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(head.length),
    });
    assert.equal(r2.status, 200, r2.body.toString());
    const hl = Number(r2.headers.get('inference-header-content-length'));
    const out2 = new Float32Array(r2.body.buffer.slice(r2.body.byteOffset + hl, r2.body.byteOffset + r2.body.length));
    // gRPC raw
    const g = await client.infer('linear', 'input', Float32Array.from(x), [2, D], 5000);
    assert.deepEqual(g.shape, [2, C]);
    for (let i = 0; i < 2 * C; i++) {
      assert.ok(Math.abs(j1.outputs[0].data[i] - g.data[i]) < 1e-6);
      assert.ok(Math.abs(out2[i] - g.data[i]) < 1e-6);
    }
    assert.equal(await client.serverLive(1000), true);
    assert.equal(await client.serverReady(1000), true);
    assert.equal(await client.modelReady('linear', 1000), true);
    assert.deepEqual((await client.serverMetadata(1000)).extensions, ['binary_tensor_data']);
    assert.deepEqual((await client.modelMetadata('linear', 1000)).outputs[0].shape, [-1, C]);

    // bad REST requests: each a 400 with a message naming the problem
    const bad: [string | Buffer, RegExp, Record<string, string>?][] = [
      ['{not json', /not valid JSON/],
      [JSON.stringify({ inputs: [{ name: 'input', datatype: 'INT32', shape: [1, D], data: x.slice(0, D) }] }), /datatype FP32/],
      [jsonReq(x.slice(0, D), [1, D + 1]), /shape/],
      [jsonReq(x.slice(0, D - 1), [1, D]), /needs 6 values/],
      [jsonReq(Array(9 * D).fill(0), [9, D]), /exceeds/],
      [JSON.stringify({ inputs: [{ name: 'wrong', datatype: 'FP32', shape: [1, D], data: x.slice(0, D) }] }), /unknown input/],
      [JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, D], data: ['a'] }] }), /numbers/],
      [Buffer.concat([head, bin.subarray(0, 8)]), /past the end/, { 'inference-header-content-length': String(head.length) }],
    ];
    for (const [body, re, h] of bad) {
      const r = await post(s.httpPort, '/v2/models/linear/infer', body, h);
      assert.equal(r.status, 400, `${String(body).slice(0, 60)} -> ${r.status} ${r.body.toString()}`);
      assert.match((JSON.parse(r.body.toString()) as { error: string }).error, re);
    }
    // over maxBodyBytes: 413 naming the limit and the model
    const large = await post(
      s.httpPort,
      '/v2/models/linear/infer',
      JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, D], data: Array(2000).fill(0.5) }] }),
    );
    assert.equal(large.status, 413);
    assert.match(
      (JSON.parse(large.body.toString()) as { error: string }).error,
      /limit of 4096 bytes for model 'linear' \(set by the server's configuration, maxBodyBytes;.*send smaller batches/,
    );
    // bad gRPC requests
    await assert.rejects(
      client.infer('linear', 'input', new Float32Array(D - 1), [1, D], 2000),
      (e: grpc.ServiceError) => e.code === grpc.status.INVALID_ARGUMENT && /needs 6 values/.test(e.details),
    );
    await assert.rejects(
      client.infer('nope', 'input', new Float32Array(D), [1, D], 2000),
      (e: grpc.ServiceError) => e.code === grpc.status.NOT_FOUND,
    );
    const raw = new grpc.Client(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure());
    try {
      const err = await new Promise<grpc.ServiceError | null>((resolve) =>
        raw.makeUnaryRequest(
          '/inference.GRPCInferenceService/ModelInfer',
          (b: Buffer) => b,
          (b: Buffer) => b,
          Buffer.from([0x0a, 0xff, 0xff, 0xff, 0x01]),
          (e) => resolve(e),
        ),
      );
      assert.equal(err?.code, grpc.status.INVALID_ARGUMENT);
      assert.match(err!.details, /malformed protobuf/);
    } finally {
      raw.close();
    }
    // still serving
    const again = await post(s.httpPort, '/v2/models/linear/infer', jsonReq(x));
    assert.equal(again.status, 200);
  } finally {
    client.close();
    await s.close();
  }
});

test('instance: the event loop answers health checks while forward passes run; injected failures and crash-after-N', {
  timeout: 120_000,
}, async () => {
  let crashed = 0;
  // a forward pass that stays in progress until the test lets it finish (no timing involved)
  const noop = servedModelFrom('noop:4');
  let entered!: () => void;
  const inForward = new Promise<void>((r) => (entered = r));
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  let holdNext = true;
  const held: typeof noop = Object.assign(Object.create(Object.getPrototypeOf(noop) as object) as typeof noop, noop, {
    forward: async (data: Float32Array, batch: number, side?: Float32Array[]) => {
      if (holdNext) {
        holdNext = false;
        entered();
        await gate;
      }
      return noop.forward(data, batch, side);
    },
  });
  const s = await InstanceServer.start({
    model: held,
    httpPort: null,
    grpcPort: 0,
    faults: { latency: { kind: 'none' }, slowProb: 0, slowMs: 0, failProb: 0, crashAfter: 3, seed: 1 },
    onCrash: () => crashed++,
  });
  const client = new V2GrpcClient(`127.0.0.1:${s.grpcPort}`);
  try {
    let slowDone = false;
    const slow = client.infer('noop', 'input', new Float32Array(4).fill(2), [1, 4], 60_000).finally(() => void (slowDone = true));
    await inForward;
    assert.equal(await client.serverReady(60_000), true);
    assert.equal(slowDone, false, 'the health check was answered only after the forward pass finished');
    release();
    assert.deepEqual([...(await slow).data], [2, 2, 2, 2]);
    await client.infer('noop', 'input', new Float32Array(4), [1, 4], 5000);
    await assert.rejects(
      client.infer('noop', 'input', new Float32Array(4), [1, 4], 5000),
      (e: grpc.ServiceError) => e.code === grpc.status.UNAVAILABLE,
    );
    assert.equal(crashed, 1);
  } finally {
    client.close();
    await s.close();
  }
  const f = new FaultInjector({ latency: parseLatency('exp:2'), slowProb: 0.1, slowMs: 100, failProb: 0.05, crashAfter: 0, seed: 3 });
  let slowed = 0;
  let failed = 0;
  let sum = 0;
  for (let i = 0; i < 20000; i++) {
    const d = f.next();
    if (d.slowed) slowed++;
    if (d.fail) failed++;
    sum += d.delayMs - (d.slowed ? 100 : 0);
  }
  assert.ok(Math.abs(slowed / 20000 - 0.1) < 0.01 && Math.abs(failed / 20000 - 0.05) < 0.01);
  assert.ok(Math.abs(sum / 20000 - 2) < 0.1);
  assert.throws(() => parseLatency('gauss:1'), /bad latency distribution/);
});
