// The V2 (Open Inference Protocol) layer against KServe's REST spec and Triton's
// grpc_service.proto, and the bounds on what one request may cost (issue 15).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { connect as netConnect } from 'node:net';
import { connect as h2Connect, constants as h2c } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import Fastify from 'fastify';
import { InstanceServer } from '../../src/serve/instance.js';
import { servedModelFrom } from '../../src/serve/served-model.js';
import {
  grpcClientClass,
  messageLimits,
  mountV2Rest,
  rewriteOversize,
  oversizeMessage,
  typedValueCount,
  type ModelMeta,
  type V2Model,
} from '../../src/serve/v2.js';
import { validateFrontendConfig } from '../../src/serve/config.js';

const D = 6;
const C = 3;

async function req(port: number, method: string, path: string, body?: string | Buffer, headers: Record<string, string> = {}) {
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    ...(body !== undefined ? { body } : {}),
    headers: { 'content-type': 'application/json', ...headers },
  });
  return { status: r.status, headers: r.headers, text: Buffer.from(await r.arrayBuffer()).toString() };
}
const errorOf = (text: string) => (JSON.parse(text) as { error: string }).error;
const input = (extra: Record<string, unknown> = {}, data: unknown = Array(D).fill(0.5)) => ({
  name: 'input',
  datatype: 'FP32',
  shape: [1, D],
  data,
  ...extra,
});
/** an input whose values follow the JSON as binary data */
const binaryInput = () => ({ name: 'input', datatype: 'FP32', shape: [1, D], parameters: { binary_data_size: 4 * D } });
const body = (doc: Record<string, unknown>) => JSON.stringify(doc);

type Raw = grpc.Client & Record<string, (r: unknown, cb: (e: grpc.ServiceError | null, res?: unknown) => void) => void>;
function grpcCall(client: Raw, method: string, r: unknown): Promise<{ error: grpc.ServiceError | null; res?: unknown }> {
  return new Promise((resolve) => client[method](r, (error, res) => resolve({ error, res })));
}

async function withInstance(
  f: (s: InstanceServer, g: Raw) => Promise<void>,
  limits?: Parameters<typeof InstanceServer.start>[0]['limits'],
): Promise<void> {
  const s = await InstanceServer.start({
    model: servedModelFrom(`linear:${D}:${C}:7`),
    httpPort: 0,
    grpcPort: 0,
    maxBatch: 8,
    ...(limits !== undefined ? { limits } : {}),
  });
  const C2 = grpcClientClass();
  const g = new C2(`127.0.0.1:${s.grpcPort}`, grpc.credentials.createInsecure()) as unknown as Raw;
  try {
    await f(s, g);
  } finally {
    g.close();
    await s.close();
  }
}

test('V2 REST: GET /v2/ is server metadata; model routes exist with /versions/{v} too, and an unknown version is a 404', async () => {
  await withInstance(async (s) => {
    for (const p of ['/v2', '/v2/']) {
      const r = await req(s.httpPort, 'GET', p);
      assert.equal(r.status, 200, p);
      assert.deepEqual((JSON.parse(r.text) as { extensions: string[] }).extensions, ['binary_tensor_data']);
    }
    const meta = await req(s.httpPort, 'GET', '/v2/models/linear/versions/1');
    assert.equal(meta.status, 200);
    assert.deepEqual((JSON.parse(meta.text) as { versions: string[] }).versions, ['1']);
    const ready = await req(s.httpPort, 'GET', '/v2/models/linear/versions/1/ready');
    assert.deepEqual([ready.status, ready.text], [200, '']);
    const inf = await req(s.httpPort, 'POST', '/v2/models/linear/versions/1/infer', body({ inputs: [input()] }));
    assert.equal(inf.status, 200, inf.text);
    assert.deepEqual((JSON.parse(inf.text) as { outputs: { shape: number[] }[] }).outputs[0].shape, [1, C]);
    for (const [m, p] of [
      ['GET', '/v2/models/linear/versions/2'],
      ['GET', '/v2/models/linear/versions/2/ready'],
      ['POST', '/v2/models/linear/versions/2/infer'],
    ] as const) {
      const r = await req(s.httpPort, m, p, m === 'POST' ? body({ inputs: [input()] }) : undefined);
      assert.equal(r.status, 404, p);
      assert.match(errorOf(r.text), /has no version '2' \(versions: 1\)/);
    }
  });
});

test('V2 REST health: status code only with an empty body, 200 when true and 400 when not ready (KServe spec, as Triton)', async () => {
  await withInstance(async (s) => {
    for (const p of ['/v2/health/live', '/v2/health/ready', '/v2/models/linear/ready']) {
      const r = await req(s.httpPort, 'GET', p);
      assert.deepEqual([r.status, r.text], [200, ''], p);
    }
  });
  const meta: ModelMeta = {
    name: 'm',
    platform: 'test',
    versions: ['1'],
    input: { name: 'input', datatype: 'FP32', shape: [2] },
    output: { name: 'output', datatype: 'FP32', shape: [2] },
    maxBatch: 4,
  };
  const notReady: V2Model = { meta, live: () => true, ready: () => false, infer: () => Promise.reject(new Error('not ready')) };
  const app = Fastify();
  mountV2Rest(app, notReady, 1 << 20);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  try {
    assert.deepEqual(Object.values(await req(port, 'GET', '/v2/health/live')).slice(0, 1), [200]);
    for (const p of ['/v2/health/ready', '/v2/models/m/ready', '/v2/models/m/versions/1/ready']) {
      const r = await req(port, 'GET', p);
      assert.deepEqual([r.status, r.text], [400, ''], p);
    }
  } finally {
    await app.close();
  }
});

test('V2 REST requests the spec does not allow get a 400 naming the problem: NaN/Inf, data with binary_data_size, outputs not an array, a hex header length, a numeric id; clearer messages for batch 0 and over-nested data', async () => {
  await withInstance(async (s) => {
    const head = Buffer.from(body({ inputs: [binaryInput()] }));
    const withNaN = Buffer.concat([head, Buffer.from(Float32Array.of(1, NaN, 2, 3, 4, 5).buffer)]);
    const cases: [string | Buffer, RegExp, Record<string, string>?][] = [
      [
        '{"inputs":[{"name":"input","datatype":"FP32","shape":[1,6],"data":[1,2,3,4,5,1e400]}]}',
        /holds Infinity at flat index 5: inputs must be finite/,
      ],
      [body({ inputs: [input({}, [1, 2, 3, 4, 5, 1e39])] }), /holds Infinity at flat index 5/],
      [withNaN, /holds NaN at flat index 1/, { 'inference-header-content-length': String(head.length) }],
      [body({ inputs: [input({ parameters: { binary_data_size: 4 * D } })] }), /both "data" and a binary_data_size/],
      [body({ inputs: [input()], outputs: 'output' }), /"outputs" must be an array of requested outputs like \[\{"name": "output"\}\]/],
      [body({ inputs: [input()], outputs: ['output'] }), /each requested output must be an object/],
      [
        Buffer.concat([head, Buffer.alloc(4 * D)]),
        /'0x[0-9a-f]+' is not a decimal integer/,
        { 'inference-header-content-length': `0x${head.length.toString(16)}` },
      ],
      [body({ id: 42, inputs: [input()] }), /"id" must be a string .*send "id": "42"/],
      [
        body({ inputs: [{ name: 'input', datatype: 'FP32', shape: [0, D], data: [] }] }),
        /has batch 0 \(shape \[0, 6\]\): send at least one sample/,
      ],
      [body({ inputs: [input({}, [[[1, 2, 3, 4, 5, 6]]])] }), /"data" is nested 3 levels deep, more than its shape has dimensions \(2\)/],
      [body({ inputs: [input({}, [{ a: 1 }])] }), /"data" must hold numbers .*found an object/],
    ];
    for (const [b, re, h] of cases) {
      const r = await req(s.httpPort, 'POST', '/v2/models/linear/infer', b, h);
      assert.equal(r.status, 400, `${String(b).slice(0, 80)} -> ${r.status} ${r.text}`);
      assert.match(errorOf(r.text), re);
    }
    // the same binary request with a decimal length and finite values is served; a string id comes back
    const ok = Buffer.concat([Buffer.from(body({ id: '42', inputs: [binaryInput()] })), Buffer.alloc(4 * D)]);
    const r = await req(s.httpPort, 'POST', '/v2/models/linear/infer', ok, {
      'inference-header-content-length': String(ok.length - 4 * D),
    });
    assert.equal(r.status, 200, r.text);
    assert.equal((JSON.parse(r.text) as { id: string }).id, '42');
  });
});

test('V2 REST: an output JSON cannot carry (NaN) is refused with a message pointing to binary output, and sent as binary when asked', async () => {
  const meta: ModelMeta = {
    name: 'm',
    platform: 'test',
    versions: ['1'],
    input: { name: 'input', datatype: 'FP32', shape: [2] },
    output: { name: 'output', datatype: 'FP32', shape: [2] },
    maxBatch: 4,
  };
  const nanModel: V2Model = {
    meta,
    live: () => true,
    ready: () => true,
    infer: (r) =>
      Promise.resolve({ id: r.id, outputs: [{ name: 'output', shape: [1, 2], data: Float32Array.of(NaN, 1) }], parameters: {} }),
  };
  const app = Fastify();
  mountV2Rest(app, nanModel, 1 << 20);
  await app.listen({ host: '127.0.0.1', port: 0 });
  const port = (app.server.address() as { port: number }).port;
  try {
    const doc = { inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 2], data: [1, 2] }] };
    const r = await req(port, 'POST', '/v2/models/m/infer', body(doc));
    assert.equal(r.status, 500);
    assert.match(errorOf(r.text), /output 'output' holds NaN at flat index 0, which JSON cannot carry; request binary output/);
    const b = await req(port, 'POST', '/v2/models/m/infer', body({ ...doc, parameters: { binary_data_output: true } }));
    assert.equal(b.status, 200);
  } finally {
    await app.close();
  }
});

test('V2 gRPC: a wrong model_version is NOT_FOUND; typed contents with raw_input_contents, FP32 values in another typed field and NaN inputs are INVALID_ARGUMENT', async () => {
  await withInstance(async (_s, g) => {
    const x = Array.from({ length: D }, (_, i) => i / 10);
    const typed = { model_name: 'linear', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, D], contents: { fp32_contents: x } }] };
    const good = await grpcCall(g, 'ModelInfer', { ...typed, model_version: '1' });
    assert.equal(good.error, null);
    const cases: [string, unknown, grpc.status, RegExp][] = [
      ['ModelInfer', { ...typed, model_version: '3' }, grpc.status.NOT_FOUND, /has no version '3'/],
      ['ModelReady', { name: 'linear', version: '3' }, grpc.status.NOT_FOUND, /has no version '3'/],
      ['ModelMetadata', { name: 'linear', version: '3' }, grpc.status.NOT_FOUND, /has no version '3'/],
      [
        'ModelInfer',
        { ...typed, raw_input_contents: [Buffer.from(Float32Array.from(x).buffer)] },
        grpc.status.INVALID_ARGUMENT,
        /typed contents \(fp32_contents\) and the request has raw_input_contents/,
      ],
      [
        'ModelInfer',
        { model_name: 'linear', inputs: [{ name: 'input', datatype: 'FP32', shape: [1, D], contents: { fp64_contents: x } }] },
        grpc.status.INVALID_ARGUMENT,
        /carries its values in fp64_contents: FP32 values go in contents.fp32_contents/,
      ],
      [
        'ModelInfer',
        {
          model_name: 'linear',
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, D], contents: { fp32_contents: [NaN, 0, 0, 0, 0, 0] } }],
        },
        grpc.status.INVALID_ARGUMENT,
        /holds NaN at flat index 0/,
      ],
      [
        'ModelInfer',
        {
          model_name: 'linear',
          inputs: [{ name: 'input', datatype: 'FP32', shape: [1, D] }],
          raw_input_contents: [Buffer.from(Float32Array.of(0, 0, Infinity, 0, 0, 0).buffer)],
        },
        grpc.status.INVALID_ARGUMENT,
        /holds Infinity at flat index 2/,
      ],
    ];
    for (const [m, r, code, re] of cases) {
      const { error } = await grpcCall(g, m, r);
      assert.ok(error !== null, `${m} ${JSON.stringify(r).slice(0, 100)} accepted`);
      assert.equal(error.code, code, `${m}: ${error.details}`);
      assert.match(error.details, re);
    }
    assert.equal((await grpcCall(g, 'ModelReady', { name: 'linear', version: '1' })).error, null);
  });
});

test('bounded work: a deeply nested body, a JSON array over the value limit and typed contents over the limit are refused before they are parsed, naming the limit', async () => {
  await withInstance(async (s, g) => {
    const deep = `{"inputs":[{"name":"input","datatype":"FP32","shape":[1,6],"data":${'['.repeat(20000)}${']'.repeat(20000)}}]}`;
    const r1 = await req(s.httpPort, 'POST', '/v2/models/linear/infer', deep);
    assert.equal(r1.status, 400);
    assert.match(errorOf(r1.text), /nested deeper than 32 levels \(the limit/);
    // the model takes at most 8 x 6 values: the limit is that plus room for the rest of the document
    const flat = body({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, D], data: new Array(30000).fill(0) }] });
    const r2 = await req(s.httpPort, 'POST', '/v2/models/linear/infer', flat);
    assert.equal(r2.status, 400);
    assert.match(errorOf(r2.text), /more than 4144 values \(the limit for JSON tensors\): send large tensors as binary data/);
    // a JSON body larger than those values can need is refused from its Content-Length, unread
    const huge = body({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, D], data: new Array(300000).fill(0) }] });
    const r3 = await req(s.httpPort, 'POST', '/v2/models/linear/infer', huge);
    assert.equal(r3.status, 400);
    assert.match(errorOf(r3.text), /request JSON of 600\d+ bytes is larger than the 198144 bytes its values can need/);
    // (under the message limit of 1 MiB + 64 KiB, over the typed value limit)
    const big = await grpcCall(g, 'ModelInfer', {
      model_name: 'linear',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [45000, D], contents: { fp32_contents: new Array(270000).fill(0) } }],
    });
    assert.ok(big.error !== null);
    assert.equal(big.error.code, grpc.status.INVALID_ARGUMENT);
    assert.match(
      big.error.details,
      /typed contents carry 270000 values, more than the limit of 262144: send large tensors as raw_input_contents/,
    );
    // serving continues
    assert.equal((await req(s.httpPort, 'POST', '/v2/models/linear/infer', body({ inputs: [input()] }))).status, 200);
  });
});

/** A one-input model's metadata for the size-limit tests. */
function meta(shape: number[], maxBatch: number, side: number[][] = []): ModelMeta {
  return {
    name: 'm',
    platform: 'p',
    versions: ['1'],
    input: { name: 'input', datatype: 'FP32', shape },
    ...(side.length > 0 ? { sideInputs: side.map((sh, i) => ({ name: `side${i}`, datatype: 'FP32' as const, shape: sh })) } : {}),
    output: { name: 'output', datatype: 'FP32', shape: [10] },
    maxBatch,
  };
}

test('message limits follow the model: twice its largest request (every input at the largest batch, FP32) plus 64 KiB, at least 1 MiB + 64 KiB, at most 16 MiB', () => {
  const small = messageLimits(meta([D], 8));
  assert.equal(small.tensorBytes, 8 * D * 4);
  assert.equal(small.maxMessageBytes, 1024 * 1024 + 65536, 'the floor');
  assert.equal(small.maxJsonBytes, (8 * D + 4096) * 32 + 65536);
  assert.equal(small.maxBodyBytes, 1024 * 1024 + 65536);
  const image = messageLimits(meta([3, 224, 224], 8));
  assert.equal(image.tensorBytes, 8 * 3 * 224 * 224 * 4);
  assert.equal(image.maxMessageBytes, 2 * 8 * 3 * 224 * 224 * 4 + 65536);
  assert.equal(image.maxBodyBytes, image.maxMessageBytes, 'JSON holds at most 2^18 values: 8.4 MB, less');
  assert.equal(messageLimits(meta([3, 224, 224], 256)).maxMessageBytes, 16 * 1024 * 1024, 'the cap');
  // side inputs count too (a Lagrange worker's coefficient maps)
  assert.equal(messageLimits(meta([3, 224, 224], 4, [[3, 224, 224]])).tensorBytes, 2 * 4 * 3 * 224 * 224 * 4);
  // grpc-js's own messages are rewritten; others are left alone
  const m = meta([D], 8);
  assert.match(
    rewriteOversize('Received message larger than max (2000000 vs. 1114112)', m, 1114112) ?? '',
    /^request of 2000000 bytes is larger than this server's limit of 1114112 bytes for model 'm' \(set from its largest request: batch 8 of \[6\] FP32 values\): send smaller batches, at most 8 samples per request$/,
  );
  assert.match(
    rewriteOversize('Received message that decompresses to a size larger than 1114112', m, 1114112) ?? '',
    /^request is larger than/,
  );
  assert.equal(rewriteOversize('overloaded: retry later', m, 1114112), null);
});

test('a size limit set by maxBodyBytes is named as the configuration, not as the model, with how many samples fit', () => {
  const image = meta([3, 224, 224], 8); // 602112 bytes a sample, 4.8 MB a full batch
  const configured = 2 * 1024 * 1024; // 2 MiB: 3 samples fit
  const msg = oversizeMessage(image, configured, { bytes: 3_000_000, configured: true });
  assert.match(
    msg,
    /^request of 3000000 bytes is larger than this server's limit of 2097152 bytes for model 'm' \(set by the server's configuration, maxBodyBytes; the model's largest request, batch 8 of \[3, 224, 224\] FP32 values, is 4816896 bytes\)/,
  );
  assert.match(msg, /at most about 3 samples fit as binary tensor data, fewer as JSON\), or ask the operator to raise maxBodyBytes$/);
  assert.match(oversizeMessage(image, 100_000, { configured: true }), /not even one sample fits: ask the operator to raise maxBodyBytes$/);
  // a configured limit above the model's own: smaller batches are the fix
  assert.match(
    oversizeMessage(meta([6], 8), 20 * 1024 * 1024, { configured: true }),
    /set by the server's configuration.*: send smaller batches, at most 8 samples per request$/,
  );
  // a model-derived limit keeps the model's wording, and a configured limit equal to it the configuration's
  const derived = messageLimits(image).maxMessageBytes;
  assert.match(oversizeMessage(image, derived), /\(set from its largest request: batch 8 of/);
  assert.match(oversizeMessage(image, derived, { configured: true }), /\(set by the server's configuration, maxBodyBytes;/);
});

test('a request over the model-derived size limit gets RESOURCE_EXHAUSTED (gRPC) / 413 (REST) naming the limit, the model and the fix; a full batch still fits', async () => {
  await withInstance(async (s, g) => {
    const limit = 1024 * 1024 + 65536;
    const fix = new RegExp(
      `larger than this server's limit of ${limit} bytes for model 'linear' \\(set from its largest request: batch 8 of \\[6\\] FP32 values\\): send smaller batches, at most 8 samples per request`,
    );
    // gRPC: 2 MB of raw contents
    const n = 500000;
    const over = await grpcCall(g, 'ModelInfer', {
      model_name: 'linear',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [n / D, D] }],
      raw_input_contents: [Buffer.alloc(4 * n)],
    });
    assert.ok(over.error !== null);
    assert.equal(over.error.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.match(over.error.details, fix);
    assert.match(over.error.details, /^request of 20000\d\d bytes/);
    // REST: a 2 MB binary body
    const head = Buffer.from(body({ inputs: [{ ...binaryInput(), shape: [n / D, D], parameters: { binary_data_size: 4 * n } }] }));
    const r = await req(s.httpPort, 'POST', '/v2/models/linear/infer', Buffer.concat([head, Buffer.alloc(4 * n)]), {
      'content-type': 'application/octet-stream',
      'inference-header-content-length': String(head.length),
    });
    assert.equal(r.status, 413);
    assert.match(errorOf(r.text), fix);
    // the largest legal request is served over both
    const full = await grpcCall(g, 'ModelInfer', {
      model_name: 'linear',
      inputs: [{ name: 'input', datatype: 'FP32', shape: [8, D] }],
      raw_input_contents: [Buffer.alloc(4 * 8 * D)],
    });
    assert.equal(full.error, null);
    const data = Array(8 * D).fill(0.5);
    const ok = await req(s.httpPort, 'POST', '/v2/models/linear/infer', body({ inputs: [input({ shape: [8, D] }, data)] }));
    assert.equal(ok.status, 200, ok.text);
  });
});

test('typedValueCount counts typed values on the wire: packed fp32 by 4 bytes, fp64 by 8', () => {
  const C2 = grpcClientClass() as unknown as { service: Record<string, { requestSerialize: (r: unknown) => Buffer }> };
  const ser = C2.service.ModelInfer.requestSerialize;
  const b = ser({
    model_name: 'm',
    inputs: [
      { name: 'a', datatype: 'FP32', shape: [1, 3], contents: { fp32_contents: [1, 2, 3] } },
      { name: 'b', datatype: 'FP64', shape: [2], contents: { fp64_contents: [1, 2] } },
    ],
  });
  assert.equal(typedValueCount(b), 5);
  assert.equal(typedValueCount(ser({ model_name: 'm', raw_input_contents: [Buffer.alloc(4000)] })), 0);
});

test('slow senders are cut off: an HTTP request not received whole within requestTimeoutMs gets 408 and its connection closed; a gRPC stream whose message never completes is reset', async () => {
  await withInstance(
    async (s) => {
      // HTTP: headers and 10 of the 1000 body bytes announced, then nothing
      const answer = await new Promise<string>((resolve, reject) => {
        const sock = netConnect(s.httpPort, '127.0.0.1', () => {
          sock.write(
            `POST /v2/models/linear/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"inputs":`,
          );
        });
        let got = '';
        sock.on('data', (d) => (got += d.toString()));
        sock.on('close', () => resolve(got));
        sock.on('error', reject);
      });
      assert.match(answer, /^HTTP\/1\.1 408/);
      // gRPC: a ModelInfer stream with the 5-byte frame header of a 1000-byte message and 10 bytes of it
      const session = h2Connect(`http://127.0.0.1:${s.grpcPort}`);
      try {
        const code = await new Promise<number>((resolve, reject) => {
          const st = session.request({
            ':method': 'POST',
            ':path': '/inference.GRPCInferenceService/ModelInfer',
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          const frame = Buffer.alloc(15);
          frame.writeUInt32BE(1000, 1);
          st.write(frame);
          st.on('error', () => {});
          st.on('close', () => resolve(st.rstCode ?? -1));
          session.on('error', reject);
        });
        assert.equal(code, h2c.NGHTTP2_CANCEL);
      } finally {
        session.close();
      }
    },
    { requestTimeoutMs: 300 },
  );
});

test('frontend config takes limits and admission settings, and refuses unknown keys in them', () => {
  const base = { model: 'm', instances: ['127.0.0.1:1'] };
  const c = validateFrontendConfig({
    name: 'x',
    mode: 'none',
    httpPort: 0,
    pools: { base },
    limits: { maxJsonDepth: 16, requestTimeoutMs: 5000 },
    admission: { maxPredictedLatencyMs: 200 },
  });
  assert.equal(c.limits?.maxJsonDepth, 16);
  assert.throws(() => validateFrontendConfig({ name: 'x', mode: 'none', httpPort: 0, pools: { base }, limits: { maxDepth: 3 } }), /limits/);
  assert.throws(
    () => validateFrontendConfig({ name: 'x', mode: 'none', httpPort: 0, pools: { base }, admission: { maxPredictedLatencyMs: 0 } }),
    /admission/,
  );
});

test('the request timeout bounds receiving a request, not answering it: a call that computes longer than requestTimeoutMs is answered (REST and gRPC)', async () => {
  const { V2GrpcClient } = await import('../../src/serve/client.js');
  const s = await InstanceServer.start({
    model: servedModelFrom('noop:4', 'm'),
    httpPort: 0,
    grpcPort: 0,
    limits: { requestTimeoutMs: 200 },
    faults: { latency: { kind: 'const', ms: 600 }, slowProb: 0, slowMs: 0, failProb: 0, crashAfter: 0, seed: 1 },
  });
  const c = new V2GrpcClient(`127.0.0.1:${s.grpcPort}`);
  try {
    assert.deepEqual((await c.infer('m', 'input', Float32Array.of(1, 2, 3, 4), [1, 4], 10000)).shape, [1, 4]);
    const r = await req(
      s.httpPort,
      'POST',
      '/v2/models/m/infer',
      body({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
    );
    assert.equal(r.status, 200, r.text);
  } finally {
    c.close();
    await s.close();
  }
});

test('a refused upload leaves its connection open while the client sends the rest: the client reads the answer, its writes do not fail, and the connection serves the next request (REST, 413 and oversize JSON)', async () => {
  await withInstance(async (s) => {
    const cases = [
      {
        name: 'binary body over the size limit (413)',
        headers: 'content-type: application/octet-stream\r\ninference-header-content-length: 20\r\n',
        status: 413,
      },
      { name: 'JSON larger than its values can need (400)', headers: 'content-type: application/json\r\n', status: 400 },
    ];
    for (const c of cases) {
      const total = 4 * 1024 * 1024;
      const sock = netConnect(s.httpPort, '127.0.0.1');
      await new Promise<void>((r, j) => sock.once('connect', () => r()).once('error', j));
      let received = '';
      let closedByServer = false;
      let writeError: Error | null = null;
      sock.on('data', (d: Buffer) => {
        received += d.toString('latin1');
      });
      sock.on('end', () => {
        closedByServer = true;
      });
      sock.on('error', (e) => {
        writeError = e;
      });
      // waits on the socket's events (no turn or time limit: a hang is the test runner's timeout)
      const until = (cond: () => boolean, what: string) =>
        new Promise<void>((resolve) => {
          const check = () => {
            if (!cond()) return;
            for (const ev of ['data', 'end', 'error', 'close']) sock.off(ev, check);
            resolve();
          };
          for (const ev of ['data', 'end', 'error', 'close']) sock.on(ev, check);
          check();
        }).then(() => assert.ok(cond(), `${c.name}: ${what}`));
      // headers and the first chunk only: the server answers before the body is complete
      sock.write(`POST /v2/models/linear/infer HTTP/1.1\r\nhost: x\r\n${c.headers}content-length: ${total}\r\n\r\n`);
      sock.write(Buffer.alloc(64 * 1024, 0x5b));
      await until(() => /\r\n\r\n[\s\S]*\}/.test(received), 'the answer arrives while the body is still being sent');
      assert.match(received, new RegExp(`^HTTP/1.1 ${c.status} `), c.name);
      assert.doesNotMatch(received, /\r\nconnection: close\r\n/i, `${c.name}: the answer does not announce a close`);
      // the rest of the body: every write succeeds
      for (let sent = 64 * 1024; sent < total; sent += 256 * 1024) {
        const n = Math.min(256 * 1024, total - sent);
        if (!sock.write(Buffer.alloc(n, 0x5b))) await new Promise((r) => sock.once('drain', r));
      }
      received = '';
      sock.write('GET /v2/health/ready HTTP/1.1\r\nhost: x\r\n\r\n');
      await until(() => /^HTTP\/1.1 200 /.test(received) || closedByServer || writeError !== null, 'the next request is answered');
      assert.equal(writeError, null, `${c.name}: no write failed`);
      assert.equal(closedByServer, false, `${c.name}: the server kept the connection`);
      assert.match(received, /^HTTP\/1.1 200 /, `${c.name}: the same connection serves the next request`);
      sock.destroy();
    }
  });
});
