import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { InstanceServer } from '../../src/serve/instance.js';
import { servedModelFrom } from '../../src/serve/served-model.js';
import { V2GrpcClient } from '../../src/serve/client.js';
import { V2RestClient, V2RestError, parseRestAddress, parseBinaryInferResponse } from '../../src/serve/rest-client.js';
import { restInstanceClient, instanceConnector, grpcInstanceClient, type InstanceFailure } from '../../src/serve/instance-client.js';
import { Frontend } from '../../src/serve/frontend.js';
import { validateFrontendConfig } from '../../src/serve/config.js';
import { NO_FAULTS } from '../../src/serve/faults.js';
import { Pool, type Task } from '../../src/serve/pool.js';
import { VirtualClock } from '../../src/serve/clock.js';

const D = 6;
const C = 3;
const silent = pino({ level: 'silent' });

function inferOnce(client: ReturnType<typeof restInstanceClient>, data: Float32Array) {
  return new Promise<{ out?: Float32Array; failure?: InstanceFailure }>((resolve) =>
    client.infer(
      { model: 'linear', inputName: 'input', data, shape: [1, D], timeoutMs: 5000 },
      (out) => resolve({ out }),
      (failure) => resolve({ failure }),
    ),
  );
}

test('REST client: binary infer answers exactly what gRPC answers, with metadata, readiness and the batch dimension', async () => {
  const s = await InstanceServer.start({ model: servedModelFrom(`linear:${D}:${C}:7`), httpPort: 0, grpcPort: 0, maxBatch: 8 });
  const rest = new V2RestClient(`127.0.0.1:${s.httpPort}`);
  const grpc = new V2GrpcClient(`127.0.0.1:${s.grpcPort}`);
  try {
    const x = Float32Array.from({ length: 3 * D }, (_, i) => Math.cos(i) * 2);
    const a = await rest.infer('linear', 'input', x, [3, D], 5000, { id: 'q7' });
    const b = await grpc.infer('linear', 'input', x, [3, D], 5000);
    assert.deepEqual(a.shape, [3, C]);
    assert.deepEqual(Array.from(a.data), Array.from(b.data));
    const m = await rest.modelMetadata('linear', 5000);
    assert.deepEqual(m.inputs[0].shape, [-1, D]);
    assert.equal(m.outputs[0].name, 'output');
    assert.equal(await rest.modelReady('linear', 5000), true);
    assert.equal(await rest.modelReady('other', 5000), false);
    assert.equal(await rest.serverLive(5000), true);
    // many requests in flight share keep-alive connections and each gets its own answer
    const xs = Array.from({ length: 40 }, (_, q) => Float32Array.from({ length: D }, (_, i) => q + i / 10));
    const outs = await Promise.all(xs.map((v) => rest.infer('linear', 'input', v, [1, D], 5000)));
    const refs = await Promise.all(xs.map((v) => grpc.infer('linear', 'input', v, [1, D], 5000)));
    outs.forEach((o, q) => assert.deepEqual(Array.from(o.data), Array.from(refs[q].data), `query ${q}`));
  } finally {
    rest.close();
    grpc.close();
    await s.close();
  }
});

test('REST client: errors carry the HTTP status, the server message and the gRPC code that means the same', async () => {
  const s = await InstanceServer.start({ model: servedModelFrom(`linear:${D}:${C}:7`), httpPort: 0, grpcPort: null, maxBatch: 2 });
  const rest = new V2RestClient(`http://127.0.0.1:${s.httpPort}/`);
  try {
    const unknown = await rest.infer('other', 'input', new Float32Array(D), [1, D], 5000).catch((e: unknown) => e);
    assert.ok(unknown instanceof V2RestError);
    assert.equal(unknown.status, 404);
    assert.equal(unknown.code, 5);
    assert.match(unknown.message, /other/);
    const tooBig = await rest.infer('linear', 'input', new Float32Array(3 * D), [3, D], 5000).catch((e: unknown) => e);
    assert.ok(tooBig instanceof V2RestError);
    assert.equal(tooBig.status, 400);
    assert.equal(tooBig.code, 3);
  } finally {
    rest.close();
    await s.close();
  }
  // nothing listens there any more: no answer, UNAVAILABLE
  const gone = new V2RestClient(`127.0.0.1:${s.httpPort}`);
  const e = await gone.infer('linear', 'input', new Float32Array(D), [1, D], 5000).catch((err: unknown) => err);
  gone.close();
  assert.ok(e instanceof V2RestError);
  assert.equal(e.status, 0);
  assert.equal(e.code, 14);
});

test('REST addresses and binary answers: bad forms are refused with the expected form named', () => {
  assert.deepEqual(parseRestAddress('10.0.0.5:8000'), { host: '10.0.0.5', port: 8000 });
  assert.deepEqual(parseRestAddress('http://triton.default.svc:8000'), { host: 'triton.default.svc', port: 8000 });
  assert.deepEqual(parseRestAddress('[::1]:8000'), { host: '::1', port: 8000 });
  assert.throws(() => parseRestAddress('https://x:1'), /use HOST:PORT or http:\/\/HOST:PORT/);
  assert.throws(() => parseRestAddress('nohost'), /bad REST address 'nohost'/);
  const head = Buffer.from(JSON.stringify({ outputs: [{ name: 'o', shape: [1, 2], parameters: { binary_data_size: 8 } }] }));
  // an odd header length leaves the floats unaligned in the body: they are still read right
  const body = Buffer.concat([head, Buffer.from(Float32Array.from([1.5, -2]).buffer)]);
  assert.deepEqual(Array.from(parseBinaryInferResponse('x', body, String(head.length)).data), [1.5, -2]);
  assert.throws(() => parseBinaryInferResponse('x', body, String(body.length + 1)), /bad Inference-Header-Content-Length/);
  assert.throws(() => parseBinaryInferResponse('x', body.subarray(0, body.length - 1), String(head.length)), /claims 8 bytes/);
  assert.throws(() => parseBinaryInferResponse('x', Buffer.from('{"outputs": [tru'), undefined), /JSON header does not parse/);
});

test('REST instance client: an injected failure may go elsewhere, a closed instance is down, a bad request is neither', async () => {
  const failing = await InstanceServer.start({
    model: servedModelFrom(`linear:${D}:${C}:7`),
    httpPort: 0,
    grpcPort: null,
    faults: { ...NO_FAULTS, failProb: 1 },
  });
  const ok = await InstanceServer.start({ model: servedModelFrom(`linear:${D}:${C}:7`), httpPort: 0, grpcPort: null, maxBatch: 1 });
  const a = restInstanceClient(`127.0.0.1:${failing.httpPort}`);
  const b = restInstanceClient(`127.0.0.1:${ok.httpPort}`);
  try {
    const f1 = (await inferOnce(a, new Float32Array(D))).failure;
    assert.deepEqual(f1 && { retryable: f1.retryable, instanceDown: f1.instanceDown }, { retryable: true, instanceDown: false });
    const good = await inferOnce(
      b,
      Float32Array.from({ length: D }, (_, i) => i),
    );
    assert.equal(good.out?.length, C);
    const bad = await new Promise<InstanceFailure>((resolve) =>
      b.infer(
        { model: 'linear', inputName: 'input', data: new Float32Array(2 * D), shape: [2, D], timeoutMs: 5000 },
        () => resolve({ message: 'answered', retryable: false, instanceDown: false }),
        resolve,
      ),
    );
    assert.deepEqual({ retryable: bad.retryable, instanceDown: bad.instanceDown }, { retryable: false, instanceDown: false });
    assert.match(bad.message, /HTTP 400/);
  } finally {
    a.close();
    b.close();
    await failing.close();
    await ok.close();
  }
  const gone = restInstanceClient(`127.0.0.1:${ok.httpPort}`);
  const f2 = (await inferOnce(gone, new Float32Array(D))).failure;
  gone.close();
  assert.deepEqual(f2 && { retryable: f2.retryable, instanceDown: f2.instanceDown }, { retryable: true, instanceDown: true });
  assert.equal(instanceConnector('rest'), restInstanceClient);
  assert.equal(instanceConnector('grpc'), grpcInstanceClient);
});

test('frontend with REST pools (coded, linear code): every answer over REST equals F(x), and the parity pool is reached over REST too', async () => {
  const insts = await Promise.all(
    ['base', 'base', 'parity0'].map((name) =>
      InstanceServer.start({ model: servedModelFrom(`linear:${D}:${C}:7`, name), httpPort: 0, grpcPort: null, maxBatch: 8 }),
    ),
  );
  const ref = await InstanceServer.start({
    model: servedModelFrom(`linear:${D}:${C}:7`, 'base'),
    httpPort: 0,
    grpcPort: null,
    maxBatch: 8,
  });
  const at = (s: InstanceServer) => `127.0.0.1:${s.httpPort}`;
  const fe = await Frontend.start({
    config: validateFrontendConfig({
      name: 'clf',
      mode: 'coded',
      code: { family: 'linear', k: 2, r: 1 },
      httpPort: 0,
      pools: {
        base: { model: 'base', instances: [at(insts[0]), at(insts[1])], protocol: 'rest' },
        parity: [{ model: 'parity0', instances: [at(insts[2])], protocol: 'rest' }],
      },
      sloMs: 60000,
      decodeDeadlineMs: 60000,
      maxWaitMs: 1,
    }),
    logger: silent,
  });
  const client = new V2RestClient(`127.0.0.1:${fe.httpPort}`);
  const direct = new V2RestClient(at(ref));
  try {
    assert.deepEqual(fe.meta.input.shape, [D]);
    const xs = Array.from({ length: 30 }, (_, q) => Float32Array.from({ length: D }, (_, i) => Math.sin(q * D + i)));
    const got = await Promise.all(xs.map((x) => client.infer('clf', 'input', x, [1, D], 60000)));
    const want = await Promise.all(xs.map((x) => direct.infer('base', 'input', x, [1, D], 60000)));
    got.forEach((g, q) => {
      assert.deepEqual(g.shape, [1, C]);
      assert.deepEqual(Array.from(g.data), Array.from(want[q].data), `query ${q}`);
      assert.notEqual(g.parameters.default, true);
    });
    const metrics = await (await fetch(`http://127.0.0.1:${fe.httpPort}/metrics`)).text();
    const parityRequests = /coded_instance_requests_total\{[^}]*pool="parity:0"[^}]*\} (\d+)/.exec(metrics);
    assert.ok(
      parityRequests !== null && Number(parityRequests[1]) > 0,
      metrics
        .split('\n')
        .filter((l) => l.includes('requests_total'))
        .join('\n'),
    );
  } finally {
    client.close();
    direct.close();
    await fe.close();
    for (const s of [...insts, ref]) await s.close();
  }
});

test('closing a pool cuts its in-flight REST requests without calling the instance down or warning about it', () => {
  // a REST client cuts its keep-alive connections on close: the request in flight fails as "socket hang up", which
  // would otherwise read as an instance that went away
  const warnings: string[] = [];
  const log = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
  const inFlight: ((e: InstanceFailure) => void)[] = [];
  const pool = new Pool({
    name: 'base',
    model: 'm',
    addresses: ['10.0.0.1:8000'],
    inputName: 'input',
    policy: 'single-queue',
    concurrency: 1,
    maxQueue: 10,
    healthIntervalMs: 1e9,
    healthTimeoutMs: 1e9,
    healthFailures: 1,
    log,
    clock: new VirtualClock(),
    connect: () => ({
      infer: (_call, _done, failed) => inFlight.push(failed),
      modelReady: () => Promise.resolve(true),
      close: () => {
        for (const f of inFlight.splice(0)) f({ message: 'socket hang up', retryable: true, instanceDown: true });
      },
    }),
  });
  pool.assumeHealthy();
  const failures: string[] = [];
  const t: Task = {
    source: 1,
    data: new Float32Array(2),
    shape: [2],
    expiresAt: 1e9,
    attempts: 0,
    cancelled: false,
    done: () => failures.push('answered'),
    fail: (e) => failures.push(e.message),
  };
  pool.submit(t);
  assert.equal(inFlight.length, 1, 'the request went out');
  pool.close();
  assert.deepEqual(failures, ['10.0.0.1:8000: socket hang up']);
  assert.deepEqual(
    warnings.filter((w) => w.includes('instance out')),
    [],
  );
});

test('instances started at once in one process build their seeded models as their seeds say (no shared random draws)', async () => {
  const spec = 'random:mlp:64:1x16x16:10:5';
  const servers = await Promise.all(
    Array.from({ length: 6 }, () => InstanceServer.start({ model: servedModelFrom(spec, 'm'), httpPort: null, grpcPort: 0, maxBatch: 1 })),
  );
  const clients = servers.map((s) => new V2GrpcClient(`127.0.0.1:${s.grpcPort}`));
  try {
    const x = Float32Array.from({ length: 256 }, (_, i) => Math.sin(i));
    const outs = await Promise.all(clients.map((c) => c.infer('m', 'input', x, [1, 1, 16, 16], 10000)));
    for (let i = 1; i < outs.length; i++)
      assert.deepEqual(Array.from(outs[i].data), Array.from(outs[0].data), `instance ${i} vs instance 0`);
  } finally {
    for (const c of clients) c.close();
    for (const s of servers) await s.close();
  }
});

test('REST client: a request on a keep-alive connection the server dropped while it was idle goes again on a fresh one', async () => {
  const { createServer } = await import('node:http');
  // every connection answers its first request and drops itself, unanswered, on its second one (as a server
  // does when its keep-alive timeout fires just as a reused connection sends)
  const perSocket = new Map<unknown, number>();
  let connections = 0;
  let seen = 0;
  const server = createServer((req, res) => {
    seen++;
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    if (n === 1) connections++;
    if (n > 1) {
      req.socket.destroy();
      return;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ name: 'm', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 2] }], outputs: [] }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const c = new V2RestClient(`127.0.0.1:${port}`);
  try {
    assert.equal((await c.modelMetadata('m', 5000)).name, 'm');
    // the second goes out on the pooled connection, which drops it; it is sent again on a new connection
    assert.equal((await c.modelMetadata('m', 5000)).name, 'm');
    assert.equal(seen, 3);
    assert.equal(connections, 2);
  } finally {
    c.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});

test('REST client: after an idle spell in which the server dropped every pooled connection, a request still gets through (its retry does not take another stale one)', async () => {
  const { createServer } = await import('node:http');
  // requests are held until three are in, so the client pools three connections; each connection drops itself,
  // unanswered, on its second request (as after the server's keep-alive timeout)
  const perSocket = new Map<unknown, number>();
  const held: (() => void)[] = [];
  let seen = 0;
  const answer = (res: import('node:http').ServerResponse) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ name: 'm', inputs: [{ name: 'input', datatype: 'FP32', shape: [-1, 2] }], outputs: [] }));
  };
  const server = createServer((req, res) => {
    seen++;
    const n = (perSocket.get(req.socket) ?? 0) + 1;
    perSocket.set(req.socket, n);
    if (n > 1) {
      req.socket.destroy();
      return;
    }
    if (seen <= 3) {
      held.push(() => answer(res));
      if (held.length === 3) for (const h of held) h();
      return;
    }
    answer(res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  const c = new V2RestClient(`127.0.0.1:${port}`);
  try {
    const first = await Promise.all([0, 1, 2].map(() => c.modelMetadata('m', 5000)));
    assert.deepEqual(
      first.map((m) => m.name),
      ['m', 'm', 'm'],
    );
    assert.equal(perSocket.size, 3, 'three pooled connections');
    assert.equal((await c.modelMetadata('m', 5000)).name, 'm');
    assert.equal((await c.modelMetadata('m', 5000)).name, 'm');
  } finally {
    c.close();
    server.closeAllConnections();
    await new Promise((r) => server.close(r));
  }
});
