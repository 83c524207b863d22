// Coded serving end to end over instances that serve a TorchScript file (`coded serve instance
// --model FILE.pt --input-shape 12`, in process): two base instances and a parity instance run
// F = a bias-free Linear(12, 3) (test/fixtures/linear.pt, made by make_linear_pt.py), behind a
// coded frontend with the linear (addition) code k = 2, r = 1. F is linear, so the parity
// instance can run F itself and F(x1) = F(x1 + x2) - F(x2) exactly: a reconstruction equals
// F(x) up to float rounding. One base instance is scripted (ScriptedConnections): it takes its
// request and answers nothing (late) or fails it; time moves only when the test advances it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { pino } from 'pino';
import { Frontend } from '../../src/serve/frontend.js';
import { validateFrontendConfig } from '../../src/serve/config.js';
import { InstanceServer } from '../../src/serve/instance.js';
import { servedModelFrom } from '../../src/serve/served-model.js';
import { V2GrpcClient } from '../../src/serve/client.js';
import { noGrad, tensor, tidy } from '../../src/engine/index.js';
import { TorchScriptModule } from '../../src/models/torchscript.js';
import { packageRoot } from '../../src/util/package-root.js';
import type { QueryResult } from '../../src/serve/policy.js';
import { hybridClock, ScriptedConnections, turns } from './scripted-connections.js';

const ptFile = join(packageRoot(), 'test', 'fixtures', 'linear.pt');
const D = 12;
const C = 3;
const DEADLINE_MS = 50;
const silent = pino({ level: 'silent' });

/** F(x) by a local forward of the same file, one query at a time (as the instances get them). */
function localF(xs: Float32Array[]): Float32Array[] {
  const m = TorchScriptModule.load(ptFile);
  try {
    return xs.map((x) => tidy(() => noGrad(() => m.forward(tensor(x, [1, D])).dataFloat32())));
  } finally {
    m.dispose();
  }
}

function queries(n: number, seed: number): Float32Array[] {
  return Array.from({ length: n }, (_, q) =>
    Float32Array.from({ length: D }, (_, j) => Math.sin(0.37 * (q + seed) + 1.1 * j) * (1 + j / 4)),
  );
}

interface Setup {
  servers: InstanceServer[];
  addr: (s: InstanceServer) => string;
  close: () => Promise<void>;
}

/** Two base instances and one parity instance, all serving linear.pt (F runs on the parity queries too: F is linear). */
async function startInstances(): Promise<Setup> {
  const servers: InstanceServer[] = [];
  const model = (name: string) => servedModelFrom(ptFile, name, undefined, undefined, { inputShape: [D] });
  for (const name of ['base', 'base', 'parity0'])
    servers.push(await InstanceServer.start({ model: model(name), httpPort: null, grpcPort: 0 }));
  return {
    servers,
    addr: (s) => `127.0.0.1:${s.grpcPort}`,
    close: async () => void (await Promise.all(servers.map((s) => s.close()))),
  };
}

async function codedFrontend(setup: Setup, conns: ScriptedConnections, clock: ReturnType<typeof hybridClock>['clock']): Promise<Frontend> {
  const [a, b, p] = setup.servers;
  return Frontend.start({
    config: validateFrontendConfig({
      name: 'ts-linear',
      mode: 'coded',
      code: { family: 'linear', k: 2, r: 1 },
      grpcPort: 0,
      sloMs: 5000,
      decodeDeadlineMs: DEADLINE_MS,
      maxWaitMs: 1,
      instanceConcurrency: 1,
      pools: {
        base: { model: 'base', instances: [setup.addr(a), setup.addr(b)] },
        parity: [{ model: 'parity0', instances: [setup.addr(p)] }],
      },
    }),
    logger: silent,
    connect: conns.connect,
    clock,
  });
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** One query of the pair was held: it is reconstructed within 1e-4 of F(x); the other is F's own answer, bit for bit. */
function checkPair(rs: QueryResult[], want: Float32Array[], what: string): void {
  assert.equal(rs.filter((r) => r.reconstructed).length, 1, `${what}: exactly the held query is reconstructed`);
  for (const [q, r] of rs.entries()) {
    assert.equal(r.defaulted, false, `${what}: query ${q} got the default response`);
    assert.equal(r.hedged, false, `${what}: query ${q} answered by a fallback copy, not by decoding`);
    assert.equal(r.data.length, C);
    if (r.reconstructed) {
      const d = maxAbsDiff(r.data, want[q]);
      assert.ok(d <= 1e-4, `${what}: reconstructed query ${q} differs from F(x) by ${d}`);
    } else {
      assert.deepEqual([...r.data], [...want[q]], `${what}: query ${q} is the base instance's original answer`);
    }
  }
}

test('coded serving over TorchScript instances: a late base instance is decoded around at the deadline (exact for a linear F, flagged reconstructed over V2); on-time answers are the originals', {
  timeout: 120_000,
}, async () => {
  const setup = await startInstances();
  const held = setup.servers[1];
  const conns = new ScriptedConnections(new Set([setup.addr(held)]));
  const time = hybridClock();
  let fe: Frontend | null = null;
  let client: V2GrpcClient | null = null;
  try {
    assert.equal(setup.servers[0].meta.platform, 'pytorch_libtorch');
    fe = await codedFrontend(setup, conns, time.clock);
    // every instance is reached through the frontend's V2 gRPC endpoint, as a client would
    client = new V2GrpcClient(`127.0.0.1:${fe.grpcPort}`);
    const xs = queries(2, 0);
    const want = localF(xs);
    const settled = [false, false];
    const pending = xs.map((x, q) =>
      client!.infer('ts-linear', 'input', x, [1, D], 30_000).finally(() => {
        settled[q] = true;
      }),
    );
    // the on-time base instance and the parity instance answer; the held one never does
    await conns.answers(2);
    await turns(20);
    assert.equal(conns.held, 1, 'the scripted base instance took one query of the group');
    assert.equal(
      settled.filter(Boolean).length,
      1,
      'the on-time query is answered at once; the held one waits for the decode deadline (time stands still)',
    );
    time.virtual.advance(DEADLINE_MS);
    const rs = await Promise.all(pending);
    assert.deepEqual(
      rs.map((r) => r.shape),
      [
        [1, C],
        [1, C],
      ],
    );
    checkPair(
      rs.map((r) => ({
        data: r.data,
        reconstructed: r.parameters.reconstructed === true,
        defaulted: r.parameters.default === true,
        hedged: false,
      })),
      want,
      'late instance',
    );
    const rec = rs.find((r) => r.parameters.reconstructed === true)!;
    assert.match(String(rec.parameters.code), /^linear\(/, 'a reconstruction names its code');
    assert.equal(fe.counts.reconstructed, 1);
    assert.equal(fe.counts.original, 1);
    assert.equal(fe.counts.default + fe.counts.error, 0);
  } finally {
    conns.release();
    client?.close();
    await fe?.close();
    await setup.close();
  }
});

test('coded serving over TorchScript instances: a base instance that fails its request is decoded around at once, without waiting for the deadline', {
  timeout: 120_000,
}, async () => {
  const setup = await startInstances();
  const conns = new ScriptedConnections(new Set([setup.addr(setup.servers[1])]));
  const time = hybridClock();
  let fe: Frontend | null = null;
  try {
    fe = await codedFrontend(setup, conns, time.clock);
    const xs = queries(2, 5);
    const want = localF(xs);
    const pending = Promise.all(fe.submit(xs));
    await conns.answers(2);
    await turns(20);
    assert.equal(conns.held, 1);
    // the held request fails (the clock has not moved: no deadline has passed)
    conns.release();
    const rs = await pending;
    assert.equal(time.virtual.now(), 0);
    checkPair(rs, want, 'failed instance');
  } finally {
    conns.release();
    await fe?.close();
    await setup.close();
  }
});

test('coded serving over TorchScript instances: with every instance on time, all answers are the originals, equal to a local forward of the file bit for bit', {
  timeout: 120_000,
}, async () => {
  const setup = await startInstances();
  const conns = new ScriptedConnections(new Set());
  let fe: Frontend | null = null;
  try {
    fe = await codedFrontend(setup, conns, hybridClock().clock);
    const xs = queries(6, 11);
    const want = localF(xs);
    // groups of two, one after another (each instance takes one request at a time)
    for (let g = 0; g < xs.length; g += 2) {
      const rs: QueryResult[] = await Promise.all(fe.submit(xs.slice(g, g + 2)));
      for (const [i, r] of rs.entries()) {
        assert.equal(r.reconstructed, false, `query ${g + i} was reconstructed with no instance late`);
        assert.equal(r.defaulted, false);
        assert.deepEqual([...r.data], [...want[g + i]], `query ${g + i}: the original answer, exactly F(x)`);
      }
    }
    assert.equal(fe.counts.original, xs.length);
    assert.equal(fe.counts.reconstructed + fe.counts.default + fe.counts.error, 0);
  } finally {
    await fe?.close();
    await setup.close();
  }
});
