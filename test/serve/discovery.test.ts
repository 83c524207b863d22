// DNS discovery of instances: entries, the pool's add / drain on a virtual clock with scripted
// instances, the resolver against a DNS server inside the test, and the frontend end to end
// with real instance processes on 127.0.0.x while the records change under load.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { pino } from 'pino';
import '../../src/codes/index.js';
import { codeFromConfig } from '../../src/codes/registry.js';
import { VirtualClock, systemClock } from '../../src/serve/clock.js';
import { Pool, type Task } from '../../src/serve/pool.js';
import { Discovery, parseDnsEntry } from '../../src/serve/discovery.js';
import { validateFrontendConfig } from '../../src/serve/config.js';
import { tensorCodec } from '../../src/serve/group-codec.js';
import { ServingPolicy, type QueryResult } from '../../src/serve/policy.js';
import type { InferCall, InstanceClient, InstanceFailure } from '../../src/serve/instance-client.js';
import { Frontend } from '../../src/serve/frontend.js';
import { V2GrpcClient } from '../../src/serve/client.js';
import { startInstanceProcess, type ChildInstance } from '../../src/serve/processes.js';
import { manualSeed, tensor, tidy, noGrad } from '../../src/engine/index.js';
import { buildModel } from '../../src/models/registry.js';
import { TestDnsServer } from '../helpers/dns-server.js';

const silent = pino({ level: 'silent' });

test('dns entries: dns:///NAME:PORT and dns:NAME parse (default port 8001); bad entries are config errors naming the pool', () => {
  assert.deepEqual(parseDnsEntry('dns:///coded-base.default.svc.cluster.local:9001'), {
    name: 'coded-base.default.svc.cluster.local',
    port: 9001,
  });
  assert.deepEqual(parseDnsEntry('dns:coded-parity-0'), { name: 'coded-parity-0', port: 8001 });
  assert.throws(() => parseDnsEntry('dns://10.0.0.10/base:8001'), /discovery.*servers/);
  assert.throws(() => parseDnsEntry('dns:///base:99999'), /out of range/);
  assert.throws(() => parseDnsEntry('dns:///bad name:1'), /not a host name/);
  const cfg = (instances: string[]) => ({ name: 'x', mode: 'none', grpcPort: 0, pools: { base: { model: 'm', instances } } });
  assert.doesNotThrow(() => validateFrontendConfig(cfg(['dns:///base:8001', '10.0.0.3:8001'])));
  assert.throws(() => validateFrontendConfig(cfg(['dns:///base:0'])), /pools\.base: instance entry 'dns:\/\/\/base:0'/);
  assert.throws(() => validateFrontendConfig({ ...cfg(['dns:///base']), discovery: { intervalMs: 1000, typo: 1 } }), /discovery/);
});

/** An instance whose requests the test completes or fails by hand. */
class HeldInstance implements InstanceClient {
  readonly calls: { call: InferCall; done: (out: Float32Array) => void; failed: (e: InstanceFailure) => void }[] = [];
  closed = false;
  infer(call: InferCall, done: (out: Float32Array) => void, failed: (e: InstanceFailure) => void): void {
    this.calls.push({ call, done, failed });
  }
  modelReady(): Promise<boolean> {
    return Promise.resolve(true);
  }
  close(): void {
    this.closed = true;
  }
  /** answer the oldest open request with 2x */
  answer(): void {
    const c = this.calls.shift()!;
    c.done(c.call.data.map((v) => 2 * v));
  }
  /** fail every open request as a vanished instance does */
  die(): void {
    for (const c of this.calls.splice(0)) c.failed({ message: 'connection refused', retryable: true, instanceDown: true });
  }
}

function heldPool(policy: 'single-queue' | 'round-robin', addresses: string[]) {
  const clock = new VirtualClock();
  const insts = new Map<string, HeldInstance>();
  const pool = new Pool({
    name: 'base',
    model: 'm',
    addresses,
    inputName: 'input',
    policy,
    concurrency: 1,
    maxQueue: 100,
    healthIntervalMs: 1e9,
    healthTimeoutMs: 1e9,
    healthFailures: 1,
    log: silent,
    clock,
    connect: (a) => {
      const h = new HeldInstance();
      insts.set(a, h);
      return h;
    },
  });
  pool.assumeHealthy();
  return { clock, pool, insts };
}

function task(results: { out?: number[]; err?: string }[], maxAttempts = 1): Task {
  const t: Task = {
    source: 1,
    data: Float32Array.of(1, 2),
    shape: [2],
    expiresAt: 1e9,
    attempts: 0,
    cancelled: false,
    done: (out) => results.push({ out: [...out] }),
    fail: (e, retryable) => results.push({ err: `${e.message} (retryable ${retryable}, attempts ${t.attempts}/${maxAttempts})` }),
  };
  return t;
}

for (const policy of ['single-queue', 'round-robin'] as const) {
  test(`pool (${policy}): a removed instance's failed in-flight request runs again on another instance without using an attempt; it gets no new work and is closed when idle`, () => {
    const { pool, insts } = heldPool(policy, ['a', 'b']);
    const results: { out?: number[]; err?: string }[] = [];
    const t1 = task(results);
    const t2 = task(results);
    pool.submit(t1);
    pool.submit(t2);
    const a = insts.get('a')!;
    const b = insts.get('b')!;
    assert.equal(a.calls.length + b.calls.length, 2);
    const onA = a.calls.length;
    assert.equal(onA, 1, 'one request on each instance');
    // a leaves DNS; a third task arrives: only b may take it
    assert.deepEqual(pool.setAddresses(['b']), { added: [], removed: ['a'] });
    assert.deepEqual(pool.addresses, ['b']);
    assert.equal(pool.drainingCount, 1);
    const t3 = task(results);
    pool.submit(t3);
    assert.equal(a.calls.length, 1, 'a removed instance gets no new work');
    // a goes away: its request fails; it is queued again (first in line) and not failed
    a.die();
    assert.equal(results.length, 0, `the task was not failed: ${JSON.stringify(results)}`);
    assert.equal(t1.attempts, 0, 'the failure on a removed instance used no attempt');
    assert.ok(a.closed, 'the removed instance is closed once nothing is in flight');
    assert.equal(pool.drainingCount, 0);
    // b serves t2, then t1 (requeued first), then t3
    b.answer();
    b.answer();
    b.answer();
    assert.equal(results.length, 3);
    assert.ok(
      results.every((r) => r.out !== undefined && r.out[0] === 2 && r.out[1] === 4),
      JSON.stringify(results),
    );
    assert.equal(t1.attempts, 1);
  });
}

test('pool: a removed instance that answers its in-flight request is used once and then closed; added instances take queued work; an empty pool parks tasks (round-robin too)', () => {
  for (const policy of ['single-queue', 'round-robin'] as const) {
    const { pool, insts } = heldPool(policy, ['a']);
    const results: { out?: number[]; err?: string }[] = [];
    pool.submit(task(results));
    pool.setAddresses([]);
    assert.equal(pool.instances.length, 0);
    pool.submit(task(results));
    assert.equal(pool.queued, 1, `${policy}: the task waits for an instance`);
    insts.get('a')!.answer();
    assert.equal(results.length, 1);
    assert.ok(insts.get('a')!.closed);
    pool.setAddresses(['c', 'd']);
    const c = insts.get('c')!;
    const d = insts.get('d')!;
    assert.equal(c.calls.length + d.calls.length, 1, `${policy}: a new instance took the parked task`);
    (c.calls.length > 0 ? c : d).answer();
    assert.equal(results.length, 2);
    assert.ok(
      results.every((r) => r.out !== undefined),
      JSON.stringify(results),
    );
    // an address that leaves and comes back while draining gets a new connection
    pool.submit(task(results));
    const busy = c.calls.length > 0 ? 'c' : 'd';
    const old = insts.get(busy)!;
    pool.setAddresses([busy === 'c' ? 'd' : 'c']);
    pool.setAddresses(['c', 'd']);
    assert.notEqual(insts.get(busy), old);
    old.answer();
    assert.equal(results.length, 3);
    assert.ok(old.closed);
  }
});

test('coded policy: base and parity instances replaced mid-group on a virtual clock: every query is answered exactly once', () => {
  const clock = new VirtualClock();
  const insts = new Map<string, HeldInstance>();
  const connect = (a: string) => {
    const h = new HeldInstance();
    insts.set(a, h);
    return h;
  };
  const mk = (name: string, addresses: string[]) => {
    const p = new Pool({
      name,
      model: 'm',
      addresses,
      inputName: 'input',
      policy: 'single-queue',
      concurrency: 1,
      maxQueue: 100,
      healthIntervalMs: 1e9,
      healthTimeoutMs: 1e9,
      healthFailures: 1,
      log: silent,
      clock,
      connect,
    });
    p.assumeHealthy();
    return p;
  };
  const pools = new Map([
    ['base', mk('base', ['b1', 'b2'])],
    ['parity:0', mk('parity:0', ['p1'])],
  ]);
  const code = codeFromConfig({ family: 'addition', k: 2, r: 1 });
  const policy = new ServingPolicy({
    mode: 'coded',
    codec: tensorCodec(code, [2], [2]),
    pools,
    clock,
    log: silent,
    inputShape: [2],
    defaultOutput: new Float32Array(2),
    sloMs: 5000,
    decodeDeadlineMs: 10,
    maxWaitMs: 2,
    parityDelayMs: 0,
    onMiss: 'default',
    maxPendingQueries: 100,
    maxAttempts: 1,
    hedgeMs: null,
    fallback: true,
  });
  const answers = new Map<number, QueryResult[]>();
  for (let i = 0; i < 2; i++)
    policy.submit([Float32Array.of(i + 1, i + 2)], (_, r) => answers.set(i, [...(answers.get(i) ?? []), r as QueryResult]));
  // both base instances and the parity instance are replaced; the old ones die
  pools.get('base')!.setAddresses(['b3']);
  pools.get('parity:0')!.setAddresses(['p2']);
  for (const a of ['b1', 'b2', 'p1']) insts.get(a)!.die();
  for (let step = 0; step < 10; step++) {
    for (const a of ['b3', 'p2']) while (insts.get(a)!.calls.length > 0) insts.get(a)!.answer();
    clock.advance(1);
  }
  clock.advance(6000);
  for (let i = 0; i < 2; i++) {
    const a = answers.get(i) ?? [];
    assert.equal(a.length, 1, `query ${i} answered ${a.length} times`);
    assert.equal(a[0].defaulted, false, `query ${i} got the default`);
    assert.deepEqual([...a[0].data], [2 * (i + 1), 2 * (i + 2)]);
  }
});

test('discovery against a DNS server: records follow the table; NXDOMAIN empties a pool; SERVFAIL keeps it', async () => {
  const dns = await TestDnsServer.start();
  const { pool } = heldPool('single-queue', []);
  const d = new Discovery({ intervalMs: 1e9, servers: [dns.address], timeoutMs: 500, clock: systemClock, log: silent });
  try {
    dns.set('base.coded.test', ['127.0.0.3', '127.0.0.2']);
    d.watch(pool, ['dns:///base.coded.test:9000', '10.1.1.1:8001']);
    await d.refresh();
    assert.deepEqual(pool.addresses.sort(), ['10.1.1.1:8001', '127.0.0.2:9000', '127.0.0.3:9000']);
    dns.set('base.coded.test', ['127.0.0.4', '127.0.0.2']);
    await d.refresh();
    assert.deepEqual(pool.addresses.sort(), ['10.1.1.1:8001', '127.0.0.2:9000', '127.0.0.4:9000']);
    assert.deepEqual(d.changes, { added: 4, removed: 1 });
    assert.deepEqual(d.rounds, { started: 2, ok: 2, failed: 0 });
    dns.failing = true;
    await d.refresh();
    assert.deepEqual(pool.addresses.sort(), ['10.1.1.1:8001', '127.0.0.2:9000', '127.0.0.4:9000'], 'a failing DNS keeps the instances');
    assert.equal(d.rounds.failed, 1);
    dns.failing = false;
    dns.remove('base.coded.test');
    await d.refresh();
    assert.deepEqual(pool.addresses, ['10.1.1.1:8001'], 'a name that no longer exists has no instances');
    assert.ok(dns.queries >= 4);
  } finally {
    d.close();
    await dns.close();
  }
});

test('discovery re-resolves every intervalMs on its clock (virtual here), only when a pool lists a DNS name, and stops on close', async () => {
  const dns = await TestDnsServer.start();
  const clock = new VirtualClock();
  const { pool } = heldPool('single-queue', []);
  const staticOnly = new Discovery({ intervalMs: 1000, servers: [dns.address], clock, log: silent });
  staticOnly.watch(pool, ['10.0.0.1:8001']);
  staticOnly.start();
  clock.advance(5000);
  assert.equal(staticOnly.rounds.started, 0, 'static addresses are not re-resolved');
  const d = new Discovery({ intervalMs: 1000, servers: [dns.address], timeoutMs: 500, clock, log: silent });
  try {
    dns.set('base.coded.test', ['127.0.0.2']);
    d.watch(pool, ['dns:///base.coded.test:9000']);
    d.start();
    clock.advance(999);
    assert.equal(d.rounds.started, 0);
    clock.advance(1);
    assert.equal(d.rounds.started, 1, 'a round begins when the interval has passed');
    await d.refresh(); // the same round
    assert.equal(d.rounds.started, 1);
    assert.deepEqual(pool.addresses, ['127.0.0.2:9000']);
    // the next round is armed once this one finished
    dns.set('base.coded.test', ['127.0.0.3']);
    await new Promise((r) => setImmediate(r));
    clock.advance(1000);
    assert.equal(d.rounds.started, 2);
    await d.refresh();
    assert.deepEqual(pool.addresses, ['127.0.0.3:9000']);
    d.close();
    await new Promise((r) => setImmediate(r));
    clock.advance(10_000);
    assert.equal(d.rounds.started, 2, 'no rounds after close');
  } finally {
    d.close();
    await dns.close();
  }
});

// ---------------------------------------------------------------------------------------------
// end to end

const D = 16;
const C = 5;

function localLinear(seed: number) {
  manualSeed(seed);
  const m = buildModel('logistic-regression', { channels: 1, height: 1, width: D, classes: C });
  m.eval();
  return { f: (x: Float32Array) => tidy(() => noGrad(() => m.forward(tensor(x, [1, D])).dataFloat32())), dispose: () => m.dispose() };
}

/** A port free on every 127.0.0.x the test uses (instances behind one name share the port, as pods behind a Service). */
async function freePort(hosts: string[]): Promise<number> {
  for (let attempt = 0; attempt < 20; attempt++) {
    const port = await new Promise<number>((resolve, reject) => {
      const s = createServer().listen(0, hosts[0], () => {
        const a = s.address();
        s.close(() => (typeof a === 'object' && a !== null ? resolve(a.port) : reject(new Error('no port'))));
      });
    });
    const free = await Promise.all(
      hosts.map(
        (h) =>
          new Promise<boolean>((resolve) => {
            const s = createServer();
            s.once('error', () => resolve(false));
            s.listen(port, h, () => s.close(() => resolve(true)));
          }),
      ),
    );
    if (free.every(Boolean)) return port;
  }
  throw new Error('no port free on every test address');
}

test('frontend with DNS discovery (coded, real instances on 127.0.0.x): instances added and removed (killed, stopped) during 5000 queries; none lost, none duplicated, every answer exact', async () => {
  const ip = (n: number) => `127.0.0.${n}`;
  const baseHosts = [2, 3, 4, 5, 6].map(ip);
  const parityHosts = [10, 11].map(ip);
  const port = await freePort([...baseHosts, ...parityHosts]);
  const dns = await TestDnsServer.start();
  const procs = new Map<string, ChildInstance>();
  let fe: Frontend | null = null;
  let client: V2GrpcClient | null = null;
  const F = localLinear(7);
  try {
    const started = await Promise.allSettled([
      // stragglers: 1% of requests stall 600 ms (reconstructed at the 400 ms decode deadline);
      // 127.0.0.2 answers every request after 250 ms, so it has requests in flight when it is removed and killed
      ...baseHosts.map(async (h) =>
        procs.set(
          h,
          await startInstanceProcess([
            '--model',
            `linear:${D}:${C}:7`,
            '--name',
            'base',
            '--host',
            h,
            '--grpc-port',
            String(port),
            '--slow-prob',
            '0.01',
            '--slow-ms',
            '600',
            '--seed',
            h.slice(8),
            ...(h === ip(2) ? ['--latency', 'const:250'] : []),
          ]),
        ),
      ),
      ...parityHosts.map(async (h) =>
        procs.set(
          h,
          await startInstanceProcess(['--model', `linear:${D}:${C}:7`, '--name', 'parity0', '--host', h, '--grpc-port', String(port)]),
        ),
      ),
    ]);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    dns.set('base.coded.test', [ip(2), ip(3)]);
    dns.set('parity.coded.test', [ip(10)]);
    const config = validateFrontendConfig({
      name: 'clf',
      mode: 'coded',
      code: { family: 'linear', k: 2, r: 1 },
      grpcPort: 0,
      httpPort: 0,
      pools: {
        base: { model: 'base', instances: [`dns:///base.coded.test:${port}`] },
        parity: [{ model: 'parity0', instances: [`dns:///parity.coded.test:${port}`] }],
      },
      // re-resolution is driven by the test (fe.discovery.refresh()), not by time
      discovery: { servers: [dns.address], intervalMs: 3_600_000, timeoutMs: 2000 },
      sloMs: 20000,
      decodeDeadlineMs: 400,
      maxWaitMs: 2,
      instanceConcurrency: 4,
      maxAttempts: 1,
      health: { intervalMs: 200, timeoutMs: 1000, failures: 2 },
    });
    fe = await Frontend.start({ config, logger: silent });
    client = new V2GrpcClient(`127.0.0.1:${fe.grpcPort}`);
    const addrs = (pool: string) => (
      fe!.poolStats(), [...(fe as unknown as { pools: Map<string, Pool> }).pools.get(pool)!.addresses].sort()
    );
    assert.deepEqual(addrs('base'), [`${ip(2)}:${port}`, `${ip(3)}:${port}`]);

    // the changes, each when this many queries have been answered
    const steps: { at: number; what: string; run: () => Promise<void> }[] = [
      {
        at: 600,
        what: 'base: 2 instances added',
        run: async () => {
          dns.set('base.coded.test', [ip(2), ip(3), ip(4), ip(5)]);
          await fe!.discovery.refresh();
        },
      },
      {
        at: 1400,
        what: 'base: 127.0.0.2 removed, then killed (its in-flight requests fail)',
        run: async () => {
          dns.set('base.coded.test', [ip(3), ip(4), ip(5)]);
          await fe!.discovery.refresh();
          await procs.get(ip(2))!.stop('SIGKILL');
        },
      },
      {
        at: 2000,
        what: 'DNS fails (SERVFAIL): pools kept',
        run: async () => {
          dns.failing = true;
          await fe!.discovery.refresh();
          dns.failing = false;
        },
      },
      {
        at: 2400,
        what: 'parity: 127.0.0.10 replaced by 127.0.0.11, then stopped',
        run: async () => {
          dns.set('parity.coded.test', [ip(11)]);
          await fe!.discovery.refresh();
          await procs.get(ip(10))!.stop('SIGTERM');
        },
      },
      {
        at: 3000,
        what: 'base: 127.0.0.3 removed, then stopped',
        run: async () => {
          dns.set('base.coded.test', [ip(4), ip(5)]);
          await fe!.discovery.refresh();
          await procs.get(ip(3))!.stop('SIGTERM');
        },
      },
      {
        at: 3400,
        what: 'base: 127.0.0.6 added',
        run: async () => {
          dns.set('base.coded.test', [ip(4), ip(5), ip(6)]);
          await fe!.discovery.refresh();
        },
      },
    ];
    const N = 5000;
    const CONC = 32;
    let next = 0;
    let answered = 0;
    const perQuery = new Uint8Array(N);
    let wrong = 0;
    let defaults = 0;
    let errors = 0;
    let reconstructed = 0;
    const problems: string[] = [];
    const stepsDone: string[] = [];
    let chain = Promise.resolve();
    let stepIdx = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= N) return;
        const x = Float32Array.from({ length: D }, (_, j) => Math.sin(0.37 * i + j));
        try {
          const r = await client!.infer('clf', 'input', x, [1, D], 30000);
          perQuery[i]++;
          if (r.parameters.default === true) defaults++;
          else {
            if (r.parameters.reconstructed === true) reconstructed++;
            const want = F.f(x);
            if (want.some((v, j) => Math.abs(v - r.data[j]) > 1e-4)) wrong++;
          }
        } catch (e) {
          errors++;
          if (problems.length < 5) problems.push(`query ${i}: ${(e as Error).message}`);
        }
        answered++;
        while (stepIdx < steps.length && answered >= steps[stepIdx].at) {
          const s = steps[stepIdx++];
          chain = chain.then(async () => {
            await s.run();
            stepsDone.push(s.what);
          });
        }
      }
    };
    await Promise.all(Array.from({ length: CONC }, worker));
    await chain;
    const duplicated = [...perQuery].filter((n) => n > 1).length;
    const counts = fe.counts;
    const answersAtFrontend = counts.original + counts.reconstructed + counts.default + counts.error;
    const poolsOf = (fe as unknown as { pools: Map<string, Pool> }).pools;
    const requeued = [...poolsOf.values()].reduce((n, p) => n + p.requeuedFromRemoved, 0);
    const report = {
      requeuedFromRemoved: requeued,
      queries: N,
      answered,
      lost: defaults + errors,
      defaults,
      errors,
      duplicated,
      wrong,
      reconstructed,
      frontendAnswers: answersAtFrontend,
      steps: stepsDone.length,
      changes: fe.discovery.changes,
    };
    console.log(`# discovery under load: ${JSON.stringify(report)}`);
    assert.deepEqual(problems, []);
    assert.equal(stepsDone.length, steps.length, `steps run: ${stepsDone.join('; ')}`);
    assert.equal(answered, N);
    assert.equal(defaults + errors, 0, 'lost queries');
    assert.equal(duplicated, 0);
    assert.equal(wrong, 0);
    assert.equal(answersAtFrontend, N, 'the frontend answered each query exactly once');
    assert.equal(fe.pendingQueries, 0);
    assert.deepEqual(
      addrs('base'),
      [ip(4), ip(5), ip(6)].map((h) => `${h}:${port}`),
    );
    assert.deepEqual(addrs('parity:0'), [`${ip(11)}:${port}`]);
    // 3 found at start, then 4 added and 3 removed
    assert.deepEqual(fe.discovery.changes, { added: 7, removed: 3 });
    const metrics = await (await fetch(`http://127.0.0.1:${fe.httpPort}/metrics`)).text();
    assert.match(metrics, /coded_pool_instances\{pool="base"\} 3/);
    assert.match(metrics, /coded_pool_instances\{pool="parity:0"\} 1/);
    assert.match(metrics, /coded_discovery_changes_total\{pool="base",change="removed"\} 2/);
    assert.match(metrics, /coded_discovery_rounds_total\{result="failed"\} 1/);
  } finally {
    client?.close();
    await fe?.close();
    await Promise.all([...procs.values()].map((p) => p.stop('SIGKILL')));
    await dns.close();
    F.dispose();
  }
});
