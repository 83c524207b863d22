import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { pino } from 'pino';
import { Frontend } from '../../src/serve/frontend.js';
import { validateFrontendConfig, type FrontendConfig } from '../../src/serve/config.js';
import { startInstanceProcess, type ChildInstance } from '../../src/serve/processes.js';
import { InstanceServer } from '../../src/serve/instance.js';
import { servedModelFrom } from '../../src/serve/served-model.js';
import { V2GrpcClient } from '../../src/serve/client.js';
import { manualSeed, tensor, tidy, noGrad } from '../../src/engine/index.js';
import { buildModel } from '../../src/models/registry.js';

const D = 16;
const C = 5;
const silent = pino({ level: 'silent' });

/** The same seeded linear map the instances build (src/serve/model-builder.ts). */
function localLinear(seed: number) {
  manualSeed(seed);
  const m = buildModel('logistic-regression', { channels: 1, height: 1, width: D, classes: C });
  m.eval();
  return {
    f: (x: Float32Array) => tidy(() => noGrad(() => m.forward(tensor(x, [1, D])).dataFloat32())),
    dispose: () => m.dispose(),
  };
}

test('frontend (coded, linear code, real instance processes): reconstructions equal the originals; killing a base instance during 5000 queries loses none', async () => {
  const insts: ChildInstance[] = [];
  let fe: Frontend | null = null;
  const client: { c: V2GrpcClient | null } = { c: null };
  const F = localLinear(7);
  try {
    // base 0 is a straggler (5% of requests +100 ms), base 1 gets killed mid-run
    insts.push(
      ...(await Promise.all([
        startInstanceProcess(['--model', `linear:${D}:${C}:7`, '--name', 'base', '--slow-prob', '0.05', '--slow-ms', '100', '--seed', '5']),
        startInstanceProcess(['--model', `linear:${D}:${C}:7`, '--name', 'base']),
        startInstanceProcess(['--model', `linear:${D}:${C}:7`, '--name', 'parity0']),
      ])),
    );
    const config: FrontendConfig = validateFrontendConfig({
      name: 'clf',
      mode: 'coded',
      code: { family: 'linear', k: 2, r: 1 },
      grpcPort: 0,
      pools: {
        base: { model: 'base', instances: [insts[0].address, insts[1].address] },
        parity: [{ model: 'parity0', instances: [insts[2].address] }],
      },
      sloMs: 3000,
      decodeDeadlineMs: 20,
      maxWaitMs: 2,
      instanceConcurrency: 8,
      health: { intervalMs: 100, timeoutMs: 200, failures: 1 },
    });
    fe = await Frontend.start({ config, logger: silent });
    client.c = new V2GrpcClient(`127.0.0.1:${fe.grpcPort}`);
    const N = 5000;
    const CONC = 32;
    let next = 0;
    let answered = 0;
    let reconstructed = 0;
    let maxErr = 0;
    let killed = false;
    const problems: string[] = [];
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= N) return;
        const x = Float32Array.from({ length: D }, (_, j) => Math.sin(0.37 * i + j));
        try {
          const r = await client.c!.infer('clf', 'input', x, [1, D], 10000);
          if (r.parameters.default === true) problems.push(`query ${i}: default response`);
          if (r.parameters.reconstructed === true) {
            reconstructed++;
            if (!/^linear\(/.test(String(r.parameters.code)))
              problems.push(`query ${i}: reconstruction marked with code ${String(r.parameters.code)}`);
          }
          const want = F.f(x);
          for (let j = 0; j < C; j++) maxErr = Math.max(maxErr, Math.abs(r.data[j] - want[j]));
        } catch (e) {
          problems.push(`query ${i}: ${(e as Error).message}`);
        }
        answered++;
        if (!killed && answered >= 1000) {
          killed = true;
          await insts[1].stop('SIGKILL');
        }
      }
    };
    await Promise.all(Array.from({ length: CONC }, worker));
    assert.deepEqual(problems.slice(0, 5), []);
    assert.equal(answered, N);
    assert.ok(killed);
    assert.ok(reconstructed > 20, `only ${reconstructed} reconstructions`);
    assert.ok(maxErr < 1e-4, `reconstructed/original outputs differ from F(x) by ${maxErr}`);
    assert.equal(fe.counts.default + fe.counts.error, 0);
    assert.equal(fe.counts.original + fe.counts.reconstructed, N);
    assert.equal(fe.pendingQueries, 0);
  } finally {
    client.c?.close();
    await fe?.close();
    await Promise.all(insts.map((i) => i.stop('SIGKILL')));
    F.dispose();
  }
});

test('frontend: malformed requests get 400 while serving continues; overload gets 429 / RESOURCE_EXHAUSTED; Clipper predict, metrics, replication mode', async () => {
  const inst = await InstanceServer.start({
    model: servedModelFrom('noop:4', 'm'),
    httpPort: null,
    grpcPort: 0,
    faults: { latency: { kind: 'const', ms: 40 }, slowProb: 0, slowMs: 0, failProb: 0, crashAfter: 0, seed: 1 },
  });
  const base = { model: 'm', instances: [`127.0.0.1:${inst.grpcPort}`] };
  const fe = await Frontend.start({
    config: validateFrontendConfig({
      name: 'echo',
      app: 'echo-app',
      mode: 'none',
      httpPort: 0,
      grpcPort: 0,
      pools: { base },
      maxPendingQueries: 6,
      sloMs: 5000,
    }),
    logger: silent,
  });
  const rep = await Frontend.start({
    config: validateFrontendConfig({ name: 'echo', mode: 'replication', httpPort: 0, pools: { base }, sloMs: 5000 }),
    logger: silent,
  });
  const gc = new V2GrpcClient(`127.0.0.1:${fe.grpcPort}`);
  const url = (p: string, port = fe.httpPort) => `http://127.0.0.1:${port}${p}`;
  const post = (p: string, body: string, port?: number) =>
    fetch(url(p, port), { method: 'POST', body, headers: { 'content-type': 'application/json' } });
  try {
    const good = JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] });
    for (const bad of [
      '{oops',
      JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 5], data: [1, 2, 3, 4, 5] }] }),
      JSON.stringify({ inputs: 3 }),
    ]) {
      const r = await post('/v2/models/echo/infer', bad);
      assert.equal(r.status, 400);
      assert.ok(((await r.json()) as { error: string }).error.length > 0);
    }
    const ok = await post('/v2/models/echo/infer', good);
    assert.equal(ok.status, 200);
    const body = (await ok.json()) as { outputs: { data: number[] }[]; parameters: { reconstructed: boolean; mode: string } };
    assert.deepEqual(body.outputs[0].data, [1, 2, 3, 4]);
    assert.equal(body.parameters.reconstructed, false);
    // Clipper-style
    const cp = await post('/echo-app/predict', JSON.stringify({ input: [4, 3, 2, 1] }));
    assert.equal(cp.status, 200);
    const cj = (await cp.json()) as { output: number[]; default: boolean; reconstructed: boolean };
    assert.deepEqual(cj.output, [4, 3, 2, 1]);
    assert.equal(cj.default, false);
    assert.equal((await post('/echo-app/predict', JSON.stringify({ input: [1] }))).status, 400);
    assert.equal((await post('/other/predict', JSON.stringify({ input: [1, 2, 3, 4] }))).status, 404);
    // overload: 20 concurrent single queries against a bound of 6 pending
    const codes = await Promise.all(
      Array.from({ length: 20 }, () => post('/v2/models/echo/infer', good).then(async (r) => (await r.arrayBuffer(), r.status))),
    );
    assert.ok(codes.filter((c) => c === 429).length >= 10, `codes ${codes.join(',')}`);
    assert.ok(codes.filter((c) => c === 200).length >= 1);
    assert.ok(codes.every((c) => c === 200 || c === 429));
    const grpcCodes = await Promise.all(
      Array.from({ length: 20 }, () =>
        gc.infer('echo', 'input', new Float32Array(4), [1, 4], 5000).then(
          () => 0,
          (e: grpc.ServiceError) => e.code,
        ),
      ),
    );
    assert.ok(grpcCodes.includes(grpc.status.RESOURCE_EXHAUSTED));
    // serving continues
    assert.equal((await post('/v2/models/echo/infer', good)).status, 200);
    const metrics = await (await fetch(url('/metrics'))).text();
    assert.match(metrics, /coded_queries_total\{mode="none",outcome="original",code=""\} \d+/);
    assert.match(metrics, /coded_rejected_total/);
    assert.match(metrics, /coded_pool_queue_depth\{pool="base"\}/);
    for (const p of ['/v2/health/live', '/v2/health/ready', '/v2/models/echo', '/v2/models/echo/ready'])
      assert.equal((await fetch(url(p))).status, 200, p);
    // replication: both copies go to the base pool, the first answer wins
    const rr = await post('/v2/models/echo/infer', good, rep.httpPort);
    assert.equal(rr.status, 200);
    assert.deepEqual(((await rr.json()) as { outputs: { data: number[] }[] }).outputs[0].data, [1, 2, 3, 4]);
    assert.equal(rep.counts.original, 1);
    assert.throws(() => validateFrontendConfig({ name: 'x', mode: 'coded', httpPort: 0, pools: { base } }), /needs exactly one of "code"/);
    assert.throws(() => validateFrontendConfig({ name: 'x', mode: 'none', httpPort: 0, pools: { base }, sloMs: -1 }), /sloMs/);
    assert.equal(
      validateFrontendConfig({ name: 'x', mode: 'none', httpPort: 0, pools: { base }, dispatch: 'fastest-free' }).dispatch,
      'fastest-free',
    );
    assert.throws(() => validateFrontendConfig({ name: 'x', mode: 'none', httpPort: 0, pools: { base }, dispatch: 'random' }), /dispatch/);
  } finally {
    gc.close();
    await fe.close();
    await rep.close();
    await inst.close();
  }
});

test('frontend admission control: a query predicted to miss the limit is refused at once with 429 + Retry-After / RESOURCE_EXHAUSTED + grpc-retry-pushback-ms, counted in /metrics', async () => {
  // the instance answers metadata only; inference goes to a held instance client on a virtual clock
  const { VirtualClock } = await import('../../src/serve/clock.js');
  const inst = await InstanceServer.start({ model: servedModelFrom('noop:4', 'm'), httpPort: null, grpcPort: 0 });
  const clock = new VirtualClock();
  const held: { data: Float32Array; done: (o: Float32Array) => void }[] = [];
  let arrived: () => void = () => {};
  const connect = () => ({
    infer: (call: { data: Float32Array }, done: (o: Float32Array) => void) => {
      held.push({ data: call.data, done });
      arrived();
    },
    modelReady: () => Promise.resolve(true),
    close: () => {},
  });
  const next = () => new Promise<void>((r) => (arrived = r));
  const fe = await Frontend.start({
    config: validateFrontendConfig({
      name: 'echo',
      mode: 'none',
      httpPort: 0,
      grpcPort: 0,
      pools: { base: { model: 'm', instances: [`127.0.0.1:${inst.grpcPort}`] } },
      sloMs: 5000,
      admission: { maxPredictedLatencyMs: 50, minSamples: 1 },
    }),
    logger: silent,
    clock,
    connect,
  });
  const gc = new V2GrpcClient(`127.0.0.1:${fe.grpcPort}`);
  const post = () =>
    fetch(`http://127.0.0.1:${fe.httpPort}/v2/models/echo/infer`, {
      method: 'POST',
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 4], data: [1, 2, 3, 4] }] }),
      headers: { 'content-type': 'application/json' },
    });
  try {
    // one query measured at 40 ms of (virtual) service time
    let n = next();
    const first = post();
    await n;
    clock.advance(40);
    held[0].done(held[0].data);
    assert.equal((await first).status, 200);
    // a second one occupies the only instance
    n = next();
    const second = post();
    await n;
    // a third would wait 40 ms for it and run 40 ms: 80 > 50
    const r = await post();
    assert.equal(r.status, 429);
    assert.match(((await r.json()) as { error: string }).error, /predicted latency 80 ms .*exceeds the admission limit of 50 ms/);
    assert.equal(r.headers.get('retry-after'), '1');
    const e = await gc.infer('echo', 'input', new Float32Array(4), [1, 4], 5000).then(
      () => null,
      (err: grpc.ServiceError) => err,
    );
    assert.ok(e !== null);
    assert.equal(e.code, grpc.status.RESOURCE_EXHAUSTED);
    assert.deepEqual(e.metadata.get('grpc-retry-pushback-ms'), ['1000']);
    const metrics = await (await fetch(`http://127.0.0.1:${fe.httpPort}/metrics`)).text();
    assert.match(metrics, /coded_rejected_total\{mode="none",reason="latency"\} 2/);
    assert.match(metrics, /coded_predicted_latency_seconds\{pool="base"\} 0\.08/);
    held[1].done(held[1].data);
    assert.equal((await second).status, 200);
    assert.equal(fe.counts.rejected, 2);
  } finally {
    gc.close();
    await fe.close();
    await inst.close();
  }
});

test('frontend (equal resources, hedged): an answer that came from a hedged copy is flagged copy = true; the others are not', async () => {
  // replica 0 holds every request for 20 s; replica 1 answers at once; hedged copies after 20 ms
  const insts = await Promise.all([
    startInstanceProcess(['--model', `linear:${D}:${C}:7`, '--name', 'base', '--slow-prob', '1', '--slow-ms', '20000']),
    startInstanceProcess(['--model', `linear:${D}:${C}:7`, '--name', 'base']),
  ]);
  let fe: Frontend | null = null;
  let c: V2GrpcClient | null = null;
  try {
    const config: FrontendConfig = validateFrontendConfig({
      name: 'clf',
      mode: 'equal-resources',
      grpcPort: 0,
      hedgeMs: 20,
      sloMs: 15000,
      copyBudget: null,
      pools: { base: { model: 'base', instances: insts.map((i) => i.address) } },
    });
    fe = await Frontend.start({ config, logger: silent });
    c = new V2GrpcClient(`127.0.0.1:${fe.grpcPort}`);
    const x = new Float32Array(D).fill(0.25);
    // one query at a time: the first that lands on replica 0 (the first idle one, once healthy) stalls
    // there and is answered by its copy; the others are answered by replica 1 at once
    const rs: Awaited<ReturnType<V2GrpcClient['infer']>>[] = [];
    for (let i = 0; i < 20 && !rs.some((r) => r.parameters.copy === true); i++) rs.push(await c.infer('clf', 'input', x, [1, D], 15000));
    const copies = rs.filter((r) => r.parameters.copy === true).length;
    assert.equal(copies, 1, `one answer should come from a copy: ${JSON.stringify(rs.map((r) => r.parameters))}`);
    for (const r of rs) {
      assert.equal(r.parameters.default, false);
      if (r !== rs[rs.length - 1]) assert.equal(r.parameters.copy, undefined);
    }
  } finally {
    c?.close();
    await fe?.close();
    await Promise.all(insts.map((i) => i.stop('SIGKILL')));
  }
});
