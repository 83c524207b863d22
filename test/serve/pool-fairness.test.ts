// Fair queueing in the instance pool (src/serve/fair-queue.ts, src/serve/pool.ts; issue 15 item
// 2: one request must not stall everyone): one line per request, served round-robin. Instances
// are held by the test (each request is answered by hand) or simulated on a VirtualClock; no
// wall-clock time anywhere.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { VirtualClock } from '../../src/serve/clock.js';
import { FairQueue } from '../../src/serve/fair-queue.js';
import { Pool, RECENT_MAX_AGE_MS, type Task } from '../../src/serve/pool.js';
import type { InferCall, InstanceClient, InstanceFailure } from '../../src/serve/instance-client.js';
import { SimulatedInstance } from '../../src/plan/simulated-instance.js';
import { ServingPolicy, type QueryResult } from '../../src/serve/policy.js';
import { ServeError } from '../../src/serve/v2.js';
import { admissionVerdict, predictedLatencyMs } from '../../src/serve/admission.js';
import { Rng } from '../../src/data/rng.js';

const silent = pino({ level: 'silent' });

/** An instance whose requests stay open until the test answers them. */
class HeldInstance implements InstanceClient {
  readonly calls: { call: InferCall; done: (out: Float32Array) => void; failed: (e: InstanceFailure) => void }[] = [];
  infer(call: InferCall, done: (out: Float32Array) => void, failed: (e: InstanceFailure) => void): void {
    this.calls.push({ call, done, failed });
  }
  modelReady(): Promise<boolean> {
    return Promise.resolve(true);
  }
  close(): void {}
  /** answer the oldest open request (its input back) */
  answer(): void {
    const c = this.calls.shift()!;
    c.done(c.call.data.slice());
  }
}

function heldPool(policy: 'single-queue' | 'round-robin' | 'fastest-free', n: number, concurrency = 1) {
  const clock = new VirtualClock();
  const insts = Array.from({ length: n }, () => new HeldInstance());
  const pool = new Pool({
    name: 'base',
    model: 'm',
    addresses: insts.map((_, i) => `i${i}`),
    inputName: 'input',
    policy,
    concurrency,
    maxQueue: 100000,
    healthIntervalMs: 1e9,
    healthTimeoutMs: 1e9,
    healthFailures: 1,
    log: silent,
    clock,
    connect: (a) => insts[Number(a.slice(1))],
  });
  pool.assumeHealthy();
  return { clock, pool, insts };
}

/** The order in which tasks reach instances, by label (the task's data carries its label's index). */
interface Probe {
  labels: string[];
  dispatched: string[];
  done: Map<string, number>;
  failed: Map<string, number>;
  task(source: number, label: string, o?: Partial<Task>): Task;
}

function probe(insts: HeldInstance[]): Probe {
  const p: Probe = {
    labels: [],
    dispatched: [],
    done: new Map(),
    failed: new Map(),
    task(source, label, o = {}) {
      const id = p.labels.push(label) - 1;
      return {
        source,
        data: Float32Array.of(id),
        shape: [1],
        expiresAt: 1e9,
        attempts: 0,
        cancelled: false,
        done: () => p.done.set(label, (p.done.get(label) ?? 0) + 1),
        fail: () => p.failed.set(label, (p.failed.get(label) ?? 0) + 1),
        ...o,
      };
    },
  };
  // every call an instance receives is recorded in dispatch order
  for (const inst of insts) {
    const infer = inst.infer.bind(inst);
    inst.infer = (call, done, failed) => {
      p.dispatched.push(p.labels[call.data[0]]);
      infer(call, done, failed);
    };
  }
  return p;
}

test('fair queue: one line per source served round-robin, FIFO inside a source; a new source joins the end of the round; the front lane goes first', () => {
  const q = new FairQueue<{ s: number; i: number }>((t) => t.s);
  for (let i = 0; i < 4; i++) q.push({ s: 1, i });
  q.push({ s: 2, i: 0 });
  q.push({ s: 2, i: 1 });
  assert.equal(q.length, 6);
  assert.equal(q.sources, 2);
  assert.deepEqual(q.shift(), { s: 1, i: 0 });
  // source 3 arrives after source 1 was served: it waits for source 2's turn, then has its own
  q.push({ s: 3, i: 0 });
  q.unshift({ s: 9, i: 0 });
  const order = [];
  for (let t = q.shift(); t !== undefined; t = q.shift()) order.push(`${t.s}.${t.i}`);
  assert.deepEqual(order, ['9.0', '2.0', '1.1', '3.0', '2.1', '1.2', '1.3']);
  assert.equal(q.length, 0);
  assert.equal(q.sources, 0);
  // what a new source of 2 tasks waits for: the front lane, and at most 2 of each waiting line
  for (let i = 0; i < 10; i++) q.push({ s: 1, i });
  q.push({ s: 2, i: 0 });
  q.unshift({ s: 9, i: 0 });
  assert.equal(q.aheadOfNewSource(2), 1 + 2 + 1);
  assert.equal(q.aheadOfNewSource(1), 1 + 1 + 1);
  assert.deepEqual(
    q.drain().map((t) => `${t.s}.${t.i}`),
    ['9.0', ...Array.from({ length: 10 }, (_, i) => `1.${i}`), '2.0'],
  );
  assert.equal(q.length, 0);
});

for (const policy of ['single-queue', 'round-robin'] as const) {
  test(`pool (${policy}): a single query submitted after a request of 64 is dispatched in the next round of free slots, not after the 64`, () => {
    const { pool, insts } = heldPool(policy, 2);
    const p = probe(insts);
    for (let i = 0; i < 64; i++) pool.submit(p.task(1, `big${i}`));
    pool.submit(p.task(2, 'single'));
    assert.deepEqual(p.dispatched, ['big0', 'big1'], 'two slots, both taken by the big request');
    if (policy === 'single-queue') {
      // each instance finishes its request: the next round of free slots serves each waiting request once
      insts[0].answer();
      insts[1].answer();
      assert.deepEqual(p.dispatched, ['big0', 'big1', 'big2', 'single'], 'after one more task of the big request (it was waiting first)');
    } else {
      // round-robin assigns tasks to instances at submission: the single query waits on i0, behind one more task of the big request there
      insts[0].answer();
      insts[0].answer();
      assert.deepEqual(p.dispatched, ['big0', 'big1', 'big2', 'single']);
    }
    // the rest of the big request follows, in order, each exactly once
    for (let n = 0; n < 200 && insts.some((i) => i.calls.length > 0); n++) for (const i of insts) if (i.calls.length > 0) i.answer();
    assert.equal(p.dispatched.length, 65);
    const big = p.dispatched.filter((l) => l.startsWith('big'));
    // one queue: the big request's tasks in order (round-robin: in order on each instance)
    assert.deepEqual(
      policy === 'single-queue' ? big : [...big].sort((a, b) => Number(a.slice(3)) - Number(b.slice(3))),
      Array.from({ length: 64 }, (_, i) => `big${i}`),
    );
    assert.equal(p.done.size, 65);
    assert.ok([...p.done.values()].every((c) => c === 1));
  });
}

test('pool: three large requests and a late single query; the single query waits for at most one task of each', () => {
  const { pool, insts } = heldPool('single-queue', 1);
  const p = probe(insts);
  for (const s of [1, 2, 3]) for (let i = 0; i < 20; i++) pool.submit(p.task(s, `r${s}.${i}`));
  pool.submit(p.task(4, 'single'));
  for (let n = 0; n < 4; n++) insts[0].answer();
  // r1.0 was running; then one turn each of requests 1, 2, 3 (the order they joined the round), then the single query
  assert.deepEqual(p.dispatched, ['r1.0', 'r1.1', 'r2.0', 'r3.0', 'single']);
});

test('pool: a hedged copy is served before every request line; cancelled and expired queued tasks are skipped in their turn', () => {
  const { clock, pool, insts } = heldPool('single-queue', 1);
  const p = probe(insts);
  pool.submit(p.task(1, 'a0'));
  pool.submit(p.task(1, 'a1'));
  const cancelled = p.task(1, 'a2');
  pool.submit(cancelled);
  pool.submit(p.task(2, 'b0', { expiresAt: 5 }));
  pool.submit(p.task(3, 'c0'));
  pool.submit(p.task(1, 'hedge', { hedge: true }));
  cancelled.cancelled = true;
  clock.advance(10);
  for (let n = 0; n < 10 && insts[0].calls.length > 0; n++) insts[0].answer();
  // a0 was running; the hedge first, then request 1's turn (a1), request 2's (b0 expired), request 3's (c0); a2 was cancelled
  assert.deepEqual(p.dispatched, ['a0', 'hedge', 'a1', 'c0']);
  assert.deepEqual([...p.failed.keys()], ['b0'], 'expired in the queue: failed once');
  assert.equal(p.done.has('a2'), false);
});

test('pool: a hedged copy goes to the free instance that has been fastest lately, never to the one running its first copy; unmeasured instances are tried first', () => {
  const labelOn = (insts: HeldInstance[], p: Probe, label: string) =>
    insts.findIndex((x) => x.calls.some((c) => p.labels[c.call.data[0]] === label));
  for (const policy of ['single-queue', 'round-robin'] as const) {
    const { clock, pool, insts } = heldPool(policy, 4);
    const p = probe(insts);
    // one request each, answered after 40, 30, 5 and 20 ms: instance 2 has been fastest lately
    for (let i = 0; i < 4; i++) pool.submit(p.task(1, `warm${i}`));
    const took = [40, 30, 5, 20];
    for (const ms of [...took].sort((a, b) => a - b)) {
      clock.advance(ms - clock.now());
      insts[took.indexOf(ms)].answer();
    }
    assert.deepEqual(
      pool.instances.map((c) => c.recentMs),
      took,
    );
    // an original is placed as before (the first free instance; round-robin's next in turn): instance 0
    pool.submit(p.task(2, 'orig'));
    assert.equal(labelOn(insts, p, 'orig'), 0, policy);
    // its hedged copy: not on instance 0, and of the others the fastest lately (not the next in line, 1)
    pool.submit(p.task(2, 'hedge', { hedge: true, avoid: 'i0' }));
    assert.equal(labelOn(insts, p, 'hedge'), 2, policy);
  }
  // before anything was measured the first free instance other than the original's takes a hedge, as before
  const fresh = heldPool('single-queue', 3);
  const q = probe(fresh.insts);
  fresh.pool.submit(q.task(1, 'orig'));
  fresh.pool.submit(q.task(1, 'hedge', { hedge: true, avoid: 'i0' }));
  assert.equal(labelOn(fresh.insts, q, 'hedge'), 1);
});

test('pool (fastest-free): each task goes to the free instance that has been fastest lately; a slow one gets work when the faster ones are busy, and none is left idle while tasks wait', () => {
  const { clock, pool, insts } = heldPool('fastest-free', 3);
  const p = probe(insts);
  const on = (label: string) => insts.findIndex((x) => x.calls.some((c) => p.labels[c.call.data[0]] === label));
  // one request each, answered after 30, 5 and 20 ms
  for (let i = 0; i < 3; i++) pool.submit(p.task(1, `warm${i}`));
  const took = [30, 5, 20];
  for (const ms of [...took].sort((a, b) => a - b)) {
    clock.advance(ms - clock.now());
    insts[took.indexOf(ms)].answer();
  }
  pool.submit(p.task(2, 'a'));
  assert.equal(on('a'), 1, 'the fastest lately, not the first free');
  pool.submit(p.task(3, 'b'));
  assert.equal(on('b'), 2, 'the fastest of those still free');
  pool.submit(p.task(4, 'c'));
  assert.equal(on('c'), 0, 'the slowest, once the faster ones are busy');
  pool.submit(p.task(5, 'd'));
  assert.equal(on('d'), -1, 'waits for a free instance');
  insts[0].answer();
  assert.equal(on('d'), 0, 'the only free one takes it');
  // three tasks for three free instances: every instance gets one, the fastest the first in line
  for (const x of insts) while (x.calls.length > 0) x.answer();
  for (const l of ['e', 'f', 'g']) pool.submit(p.task(6, l));
  assert.deepEqual(
    insts.map((x) => x.calls.length),
    [1, 1, 1],
  );
});

test('pool (fastest-free): an instance passed over as slow and given no work since is tried again once its measure is a second old', () => {
  const { clock, pool, insts } = heldPool('fastest-free', 2);
  const p = probe(insts);
  const on = (label: string) => insts.findIndex((x) => x.calls.some((c) => p.labels[c.call.data[0]] === label));
  pool.submit(p.task(1, 'w0'));
  pool.submit(p.task(1, 'w1'));
  clock.advance(5);
  insts[1].answer();
  clock.advance(95);
  insts[0].answer(); // instance 0: 100 ms, instance 1: 5 ms
  pool.submit(p.task(2, 'a'));
  assert.equal(on('a'), 1);
  insts[1].answer();
  // instance 1 keeps answering fast; instance 0 gets nothing while its measure is recent
  clock.advance(RECENT_MAX_AGE_MS - 1);
  pool.submit(p.task(3, 'b'));
  assert.equal(on('b'), 1);
  insts[1].answer();
  clock.advance(2);
  pool.submit(p.task(4, 'c'));
  assert.equal(on('c'), 0, 'instance 0 is measured again');
});

test('pool: a hedged copy never runs beside its first copy, though it was passed to a faster instance; round-robin never leaves a copy queued behind an idle instance', () => {
  const labelOn = (insts: HeldInstance[], p: Probe, label: string) =>
    insts.findIndex((x) => x.calls.some((c) => p.labels[c.call.data[0]] === label));
  // each instance's recent request time, as if measured just now
  const warm = (clock: VirtualClock, pool: Pool, took: number[]) => took.forEach((ms, j) => pool.instances[j].observe(ms, clock.now()));
  {
    // single queue, 2 slots each, recent 40 / 5 / 20 ms; every slot busy while two copies queue:
    // h2 avoids instance 0 (its first copy runs there), h1 avoids instance 2
    const { clock, pool, insts } = heldPool('single-queue', 3, 2);
    const p = probe(insts);
    warm(clock, pool, [40, 5, 20]);
    for (let i = 0; i < 6; i++) pool.submit(p.task(2, `busy${i}`));
    pool.submit(p.task(3, 'h2', { hedge: true, avoid: 'i0' }));
    pool.submit(p.task(3, 'h1', { hedge: true, avoid: 'i2' }));
    // every instance finishes one request
    for (const x of insts) x.answer();
    assert.notEqual(labelOn(insts, p, 'h2'), 0, 'h2 is not beside its first copy');
    assert.notEqual(labelOn(insts, p, 'h1'), 2, 'h1 is not beside its first copy');
    assert.ok(labelOn(insts, p, 'h1') >= 0 && labelOn(insts, p, 'h2') >= 0, 'both copies went out');
  }
  {
    // round-robin, 2 slots: recent 5 / 40 / 20 ms; instance 0 has one request running; a copy that
    // avoids instance 2 goes to the least busy other one (instance 1) and runs there at once
    const { clock, pool, insts } = heldPool('round-robin', 3, 2);
    const p = probe(insts);
    warm(clock, pool, [5, 40, 20]);
    pool.submit(p.task(2, 'running'));
    pool.submit(p.task(3, 'copy', { hedge: true, avoid: 'i2' }));
    assert.equal(labelOn(insts, p, 'copy'), 1, 'sent, not left queued for a faster instance that never reads that queue');
  }
});

test('pool: a slow request makes its instance look slow and a fast one brings it back; a quick failure never makes it look faster', () => {
  const { clock, pool, insts } = heldPool('single-queue', 1);
  const p = probe(insts);
  const conn = pool.instances[0];
  const run = (ms: number, fail = false) => {
    pool.submit(p.task(1, `t${p.labels.length}`, { expiresAt: 1e12 }));
    clock.advance(ms);
    const c = insts[0].calls.shift()!;
    if (fail) c.failed({ message: 'refused', retryable: false, instanceDown: false });
    else c.done(c.call.data.slice());
  };
  run(10);
  assert.equal(conn.recentMs, 10);
  run(110);
  assert.ok(Math.abs(conn.recentMs! - 40) < 1e-9, `one 110 ms request weighs 0.3: ${conn.recentMs}`);
  run(1, true);
  assert.ok(Math.abs(conn.recentMs! - 40) < 1e-9, 'a quick failure leaves it');
  run(200, true);
  assert.ok(conn.recentMs! > 40, 'a slow failure (a timeout) counts');
  for (let i = 0; i < 20; i++) run(10);
  assert.ok(conn.recentMs! < 11, `fast again: ${conn.recentMs}`);
});

test('pool: with random interleavings of requests, answers, cancellations and expiries every task reaches an instance at most once, every live task exactly once, in its request order, within the concurrency limit', () => {
  for (const policy of ['single-queue', 'round-robin', 'fastest-free'] as const) {
    for (let seed = 1; seed <= 40; seed++) {
      const rng = new Rng(seed);
      const concurrency = 1 + rng.int(3);
      const { clock, pool, insts } = heldPool(policy, 1 + rng.int(4), concurrency);
      const p = probe(insts);
      const tasks = new Map<string, Task>();
      const bySource = new Map<number, string[]>();
      let sources = 0;
      for (let step = 0; step < 300; step++) {
        const r = rng.float();
        if (r < 0.3) {
          // a new request of 1..40 tasks, some with short deadlines
          const s = ++sources;
          const n = rng.bernoulli(0.3) ? 1 + rng.int(40) : 1;
          for (let i = 0; i < n; i++) {
            const label = `s${s}.${i}`;
            const t = p.task(s, label, rng.bernoulli(0.1) ? { expiresAt: clock.now() + rng.int(20) } : {});
            tasks.set(label, t);
            bySource.set(s, [...(bySource.get(s) ?? []), label]);
            pool.submit(t);
          }
        } else if (r < 0.4 && tasks.size > 0) {
          const all = [...tasks.values()];
          all[rng.int(all.length)].cancelled = true;
        } else if (r < 0.5) {
          clock.advance(rng.int(5));
          pool.pump();
        } else {
          const busy = insts.filter((i) => i.calls.length > 0);
          if (busy.length > 0) busy[rng.int(busy.length)].answer();
        }
        for (const i of insts) assert.ok(i.calls.length <= concurrency, `${policy} seed ${seed}: concurrency exceeded`);
      }
      // drain: answer everything still running
      for (let n = 0; n < 100000 && insts.some((i) => i.calls.length > 0); n++) for (const i of insts) if (i.calls.length > 0) i.answer();
      const msg = `${policy} seed ${seed}`;
      assert.equal(pool.queued, 0, `${msg}: queue empty at the end`);
      assert.equal(new Set(p.dispatched).size, p.dispatched.length, `${msg}: a task reached an instance twice`);
      for (const [label, t] of tasks) {
        const sent = p.dispatched.includes(label);
        const outcomes = (p.done.get(label) ?? 0) + (p.failed.get(label) ?? 0);
        if (sent) assert.equal(p.done.get(label), 1, `${msg}: ${label} sent but not answered once`);
        else if (!t.cancelled) assert.equal(p.failed.get(label), 1, `${msg}: ${label} neither sent nor failed (expired)`);
        assert.ok(outcomes <= 1, `${msg}: ${label} had ${outcomes} outcomes`);
        if (!t.cancelled && t.expiresAt === 1e9) assert.ok(sent, `${msg}: live task ${label} never sent`);
      }
      if (policy === 'single-queue') {
        // one queue: each request's tasks reach the instances in the order they were submitted
        const pos = new Map(p.dispatched.map((l, i) => [l, i]));
        for (const [s, labels] of bySource) {
          const sent = labels.filter((l) => pos.has(l)).map((l) => pos.get(l)!);
          assert.deepEqual(
            sent,
            [...sent].sort((a, b) => a - b),
            `${msg}: request ${s} out of order`,
          );
        }
      }
    }
  }
});

/** The serving policy (uncoded) over one pool of simulated 10 ms instances on a virtual clock. */
function admissionHarness(instances: number) {
  const clock = new VirtualClock();
  const sims = Array.from(
    { length: instances },
    () => new SimulatedInstance({ clock, serviceMs: () => 10, compute: (x) => x.map((v) => 2 * v) }),
  );
  const pool = new Pool({
    name: 'base',
    model: 'm',
    addresses: sims.map((_, i) => `i${i}`),
    inputName: 'input',
    policy: 'single-queue',
    concurrency: 1,
    maxQueue: 10000,
    healthIntervalMs: 1e9,
    healthTimeoutMs: 1e9,
    healthFailures: 1,
    log: silent,
    clock,
    connect: (a) => sims[Number(a.slice(1))],
  });
  pool.assumeHealthy();
  const policy = new ServingPolicy({
    mode: 'none',
    codec: null,
    pools: new Map([['base', pool]]),
    clock,
    log: silent,
    inputShape: [1],
    defaultOutput: new Float32Array(1),
    sloMs: 5000,
    decodeDeadlineMs: 10,
    maxWaitMs: 2,
    parityDelayMs: 0,
    onMiss: 'default',
    maxPendingQueries: 10000,
    maxAttempts: 1,
    hedgeMs: null,
    fallback: false,
    admission: { maxPredictedLatencyMs: 100, minSamples: 5 },
  });
  const answered = new Map<string, { at: number; r: QueryResult | Error }>();
  const ask = (name: string, n: number): ServeError | null => {
    try {
      policy.submit(
        Array.from({ length: n }, () => Float32Array.of(1)),
        (i, r) => answered.set(n === 1 ? name : `${name}.${i}`, { at: clock.now(), r }),
      );
      return null;
    } catch (e) {
      assert.ok(e instanceof ServeError, String(e));
      return e;
    }
  };
  // measure service times first
  for (let i = 0; i < 10; i++) {
    assert.equal(ask(`warm${i}`, 1), null);
    clock.run();
  }
  return { clock, pool, ask, answered };
}

test('admission control follows the fair queue: a single query behind a batch of 64 is admitted (and answered within the budget); another batch, or a flood of single queries, is still refused', () => {
  const h = admissionHarness(2);
  const t0 = h.clock.now();
  assert.equal(h.ask('batch', 64), null, 'idle pool: a large batch starts now');
  assert.equal(h.pool.queued, 62);
  // FIFO arithmetic would predict 10 + (62 + 2 + 1 - 2) x 10 / 2 = 325 ms and refuse it
  assert.equal(h.ask('single', 1), null, 'one task ahead of it per waiting request: 20 ms predicted');
  assert.ok(h.ask('batch2', 64) instanceof ServeError, 'a second batch waits for most of the first: refused');
  // single queries keep coming: each is one more request ahead of the next, until the budget is met
  let admitted = 0;
  let refusal: ServeError | null = null;
  for (let i = 0; i < 40 && refusal === null; i++) {
    refusal = h.ask(`flood${i}`, 1);
    if (refusal === null) admitted++;
  }
  assert.ok(refusal !== null, 'a flood of single queries is refused once the budget would be missed');
  assert.match(refusal.message, /ahead of this request/);
  assert.ok(admitted >= 10 && admitted < 40, `admitted ${admitted} single queries`);
  h.clock.run();
  const single = h.answered.get('single')!;
  assert.ok(!(single.r instanceof Error) && !single.r.defaulted);
  assert.equal(single.at - t0, 20, 'answered in the second round of the two instances');
  for (let i = 0; i < admitted; i++) {
    const a = h.answered.get(`flood${i}`)!;
    assert.ok(a.at - t0 <= 100 + 10, `flood${i} answered after ${a.at - t0} ms (budget 100 ms)`);
  }
  assert.equal([...h.answered.keys()].filter((k) => k.startsWith('batch.')).length, 64, 'the batch is served in full');
});

test('predicted latency counts only the queued tasks ahead of the new request when the pool says so', () => {
  const fifo = { serviceMs: 10, slots: 2, queued: 62, inflight: 2 };
  assert.equal(predictedLatencyMs(fifo, 1), 10 + ((62 + 2 + 1 - 2) * 10) / 2);
  assert.equal(predictedLatencyMs({ ...fifo, ahead: 1 }, 1), 10 + ((1 + 2 + 1 - 2) * 10) / 2);
  const o = { maxPredictedLatencyMs: 100, minSamples: 5 };
  assert.notEqual(admissionVerdict(fifo, 10, 1, o), null);
  assert.equal(admissionVerdict({ ...fifo, ahead: 1 }, 10, 1, o), null);
});
