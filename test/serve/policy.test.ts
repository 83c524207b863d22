// The serving policy on a virtual clock with scripted instances: every decision (decode,
// fallback, hedge, parity delay, SLO) is checked at exact simulated times, never with sleeps.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import '../../src/codes/index.js';
import { codeFromConfig } from '../../src/codes/registry.js';
import { VirtualClock, type Clock } from '../../src/serve/clock.js';
import { Pool } from '../../src/serve/pool.js';
import { tensorCodec } from '../../src/serve/group-codec.js';
import { ServingPolicy, type PolicyOptions, type QueryResult, type SlowQueryStory } from '../../src/serve/policy.js';
import { FaultInjector } from '../../src/serve/faults.js';
import { SimulatedInstance } from '../../src/plan/simulated-instance.js';
import { Rng } from '../../src/data/rng.js';
import { ServeError } from '../../src/serve/v2.js';
import { ServiceTimeWindow, predictedLatencyMs, admissionVerdict } from '../../src/serve/admission.js';

const silent = pino({ level: 'silent' });
const D = 4;

/** Instances whose k-th request takes script[k] ms (then `rest` ms); they compute F(x) = 2x (linear: the addition code decodes exactly). */
function scripted(clock: VirtualClock, script: number[], rest = 1, faults?: FaultInjector) {
  let n = 0;
  return new SimulatedInstance({
    clock,
    serviceMs: () => script[n++] ?? rest,
    compute: (x) => x.map((v) => 2 * v),
    ...(faults ? { faults } : {}),
  });
}

interface Harness {
  clock: VirtualClock;
  policy: ServingPolicy;
  pools: Map<string, Pool>;
  answers: Map<number, { at: number; r: QueryResult | Error }[]>;
  /** submit one query at the current time */
  ask(id: number, x: Float32Array): void;
}

interface Setup extends Partial<PolicyOptions> {
  mode: PolicyOptions['mode'];
  /** timers fire this many ms before the clock reads their time (as Node timers may, against performance.now) */
  early?: number;
  family?: string;
  /** instances are built on the harness' clock */
  base: (c: VirtualClock) => SimulatedInstance[];
  parity?: (c: VirtualClock) => SimulatedInstance[][];
}

function setup(o: Setup): Harness {
  const clock = new VirtualClock();
  const make = (name: string, insts: SimulatedInstance[]) => {
    const byAddr = new Map(insts.map((s, i) => [`${name}-${i}`, s]));
    const p = new Pool({
      name,
      model: 'm',
      addresses: [...byAddr.keys()],
      inputName: 'input',
      policy: 'single-queue',
      concurrency: 1,
      maxQueue: 1000,
      healthIntervalMs: 1e9,
      healthTimeoutMs: 1e9,
      healthFailures: 1,
      log: silent,
      clock,
      connect: (a) => byAddr.get(a)!,
    });
    p.assumeHealthy();
    return p;
  };
  const pools = new Map<string, Pool>([['base', make('base', o.base(clock))]]);
  (o.parity?.(clock) ?? []).forEach((insts, j) => pools.set(`parity:${j}`, make(`parity:${j}`, insts)));
  const early = o.early ?? 0;
  const policyClock: Clock =
    early === 0
      ? clock
      : { now: () => clock.now(), soon: (fn) => clock.soon(fn), after: (ms, fn) => clock.after(Math.max(0, ms - early), fn) };
  const code =
    o.mode === 'coded'
      ? codeFromConfig({ family: o.family ?? 'addition', k: 2, r: 1 })
      : o.mode === 'replication'
        ? codeFromConfig({ family: 'replication', k: 1, r: 1 })
        : null;
  const policy = new ServingPolicy({
    mode: o.mode,
    codec: code === null ? null : tensorCodec(code, [D], [D]),
    pools,
    clock: policyClock,
    log: silent,
    inputShape: [D],
    defaultOutput: new Float32Array(D),
    sloMs: o.sloMs ?? 5000,
    decodeDeadlineMs: o.decodeDeadlineMs ?? 10,
    maxWaitMs: o.maxWaitMs ?? 2,
    parityDelayMs: o.parityDelayMs ?? 0,
    onMiss: 'default',
    maxPendingQueries: 1000,
    maxAttempts: 2,
    hedgeMs: o.hedgeMs ?? null,
    fallback: o.fallback ?? true,
    copyBudget: o.copyBudget,
    singletonGroups: o.singletonGroups,
    admission: o.admission ?? null,
    slowQueryMs: o.slowQueryMs,
    events: o.events,
  });
  const answers = new Map<number, { at: number; r: QueryResult | Error }[]>();
  return {
    clock,
    policy,
    pools,
    answers,
    ask: (id, x) => policy.submit([x], (_, r) => answers.set(id, [...(answers.get(id) ?? []), { at: clock.now(), r }])),
  };
}

function only(h: Harness, id: number): { at: number; r: QueryResult } {
  const a = h.answers.get(id) ?? [];
  assert.equal(a.length, 1, `query ${id} answered ${a.length} times`);
  assert.ok(!(a[0].r instanceof Error), `query ${id} failed: ${(a[0].r as Error).message}`);
  return a[0] as { at: number; r: QueryResult };
}

const x1 = Float32Array.of(1, 2, 3, 4);
const x2 = Float32Array.of(10, 20, 30, 40);
const twice = (x: Float32Array) => [...x].map((v) => 2 * v);

test('a late original is reconstructed from its partner and the parity at the decode deadline, flagged, and exact for a linear F', () => {
  const h = setup({ mode: 'coded', base: (c) => [scripted(c, [1000]), scripted(c, [])], parity: (c) => [[scripted(c, [])]] });
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.run();
  const a1 = only(h, 1);
  const a2 = only(h, 2);
  assert.equal(a2.at, 1);
  assert.deepEqual([a2.r.reconstructed, a2.r.hedged], [false, false]);
  assert.equal(a1.at, 10, 'reconstructed at the decode deadline');
  assert.equal(a1.r.reconstructed, true);
  assert.deepEqual([...a1.r.data], twice(x1));
  assert.equal(h.policy.counts.copies, 0, 'a decodable group needs no fallback');
  assert.equal(h.policy.pending, 0);
});

test('a decode-deadline timer that fires a fraction of a millisecond early still reconstructs (the timer, not the clock reading, says the deadline passed)', () => {
  const h = setup({ mode: 'coded', early: 0.5, base: (c) => [scripted(c, [1000]), scripted(c, [])], parity: (c) => [[scripted(c, [])]] });
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.run();
  const a1 = only(h, 1);
  assert.equal(a1.r.reconstructed, true);
  assert.equal(a1.at, 9.5);
});

test('when the partner is late too, the fallback re-issues both originals to a free instance once they have run for the deadline; first answer wins, flagged hedged', () => {
  const h = setup({
    mode: 'coded',
    base: (c) => [scripted(c, [1000]), scripted(c, [1000]), scripted(c, [])],
    parity: (c) => [[scripted(c, [])]],
  });
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.run();
  const a1 = only(h, 1);
  const a2 = only(h, 2);
  // both originals started at t=0 on the two slow instances; at t=10 the group cannot decode
  // (only the parity is in): both go out again to the idle third instance (nothing else waits
  // in the queue, so query 2's copy is the next task served there)
  assert.deepEqual([a1.at, a2.at], [11, 12]);
  for (const [a, x] of [
    [a1, x1],
    [a2, x2],
  ] as const) {
    assert.deepEqual([a.r.reconstructed, a.r.hedged, a.r.defaulted], [false, true, false]);
    assert.deepEqual([...a.r.data], twice(x));
  }
  assert.equal(h.policy.counts.copies, 2);
  assert.equal(h.policy.counts.hedgedAnswers, 2);
});

test('without the fallback the same undecodable group waits for its stalled originals', () => {
  const h = setup({
    mode: 'coded',
    fallback: false,
    base: (c) => [scripted(c, [1000]), scripted(c, [1000]), scripted(c, [])],
    parity: (c) => [[scripted(c, [])]],
  });
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.run();
  assert.deepEqual([only(h, 1).at, only(h, 2).at], [1000, 1000]);
  assert.equal(h.policy.counts.copies, 0);
});

test('a copy goes out only once the original has *run* for the delay, and never behind queued work: queueing alone is not straggling', () => {
  // three instances: 1 and 2 busy for 30 ms with queries 1 and 2, the third busy for 12 ms with
  // query 3; query 4 waits in the queue. At t=10 queries 1 and 2 have run for 10 ms but no
  // instance is idle: no copy. At t=12 the third instance takes query 4 (queued until then: not
  // a straggler, no copy); at t=13 it is idle again and one copy goes out (query 1's), at 14
  // query 2's. Query 4, unanswered at t=10 like the others, never ran long: no copy.
  const h = setup({ mode: 'equal-resources', hedgeMs: 10, base: (c) => [scripted(c, [30]), scripted(c, [30]), scripted(c, [12])] });
  h.ask(1, x1);
  h.ask(2, x2);
  h.ask(3, x1);
  h.ask(4, x2);
  h.clock.run();
  assert.deepEqual([only(h, 3).at, only(h, 4).at], [12, 13]);
  assert.equal(only(h, 4).r.hedged, false);
  assert.ok(only(h, 1).at < 30 && only(h, 1).r.hedged, `query 1 at ${only(h, 1).at}`);
  assert.ok(only(h, 2).at < 30 && only(h, 2).r.hedged, `query 2 at ${only(h, 2).at}`);
  assert.equal(h.policy.counts.copies, 2);
});

test('no copy joins a backlog: with every instance busy and work queued, copies wait', () => {
  const h = setup({ mode: 'equal-resources', hedgeMs: 10, base: (c) => [scripted(c, [30]), scripted(c, [30])] });
  h.ask(1, x1);
  h.ask(2, x2);
  h.ask(3, x1);
  h.clock.run();
  assert.deepEqual([only(h, 1).at, only(h, 2).at, only(h, 3).at], [30, 30, 31]);
  assert.equal(h.policy.counts.copies, 0);
});

test('equal-resources with hedging: a query whose instance stalls is sent again after hedgeMs to another instance; the stalled copy is discarded', () => {
  const h = setup({ mode: 'equal-resources', hedgeMs: 10, base: (c) => [scripted(c, [1000]), scripted(c, [])] });
  h.ask(1, x1);
  h.clock.advance(3);
  h.ask(2, x2);
  h.clock.run();
  const a1 = only(h, 1);
  assert.equal(a1.at, 11);
  assert.deepEqual([a1.r.hedged, a1.r.reconstructed], [true, false]);
  assert.deepEqual([...a1.r.data], twice(x1));
  const a2 = only(h, 2);
  assert.equal(a2.at, 4);
  assert.equal(a2.r.hedged, false);
  assert.equal(h.policy.counts.copies, 1);
  assert.equal(h.policy.counts.tasks, 3);
});

test('the copy budget caps hedged copies when every request is slow (an overload): without it every query is copied', () => {
  // 10 instances, every request takes 100 ms, a query every 20 ms: instances are often idle, so
  // hedging after 10 ms would copy every query (doubling the load of a slow system)
  const run = (copyBudget: number | null) => {
    const h = setup({
      mode: 'equal-resources',
      hedgeMs: 10,
      copyBudget,
      base: (c) => Array.from({ length: 10 }, () => scripted(c, [], 100)),
    });
    for (let i = 0; i < 200; i++) {
      h.ask(i, x1);
      h.clock.advance(20);
    }
    h.clock.run();
    for (let i = 0; i < 200; i++) only(h, i);
    return h.policy.counts;
  };
  const unlimited = run(null);
  assert.equal(unlimited.copies, 200, 'no budget: every query gets a copy');
  assert.equal(unlimited.copiesDenied, 0);
  const capped = run(0.05);
  // bursts of max(1, 100 x 0.05) = 5 copies, then 0.05 per arriving query
  assert.ok(capped.copies <= 5 + 0.05 * 200, `copies ${capped.copies} exceed the budget`);
  assert.ok(capped.copies >= 10, `copies ${capped.copies}: the budget should still allow some`);
  assert.equal(capped.copies + capped.copiesDenied, 200, 'every due copy is either sent or counted as denied');
});

test('a copy the spent budget refused goes out once arrivals refill it, to the query that has waited longest; one answered first counts as denied', () => {
  // a budget of 0.01 copies per query holds one token: query 1's copy takes it, so queries 2 and
  // 3 (their originals stuck for 1 s too) wait for the token the next 100 arrivals add; query 2
  // has waited longer and gets it
  const run = (arrivals: number) => {
    const stories: SlowQueryStory[] = [];
    const h = setup({
      mode: 'equal-resources',
      hedgeMs: 10,
      copyBudget: 0.01,
      slowQueryMs: 500,
      events: { slowQuery: (st) => stories.push(st) },
      base: (c) => [scripted(c, [1000]), scripted(c, [1000]), scripted(c, [1000]), scripted(c, []), scripted(c, [])],
    });
    h.ask(1, x1);
    h.ask(2, x2);
    h.clock.advance(5);
    h.ask(3, x1);
    h.clock.advance(15);
    for (let i = 0; i < arrivals; i++) {
      h.ask(100 + i, x1);
      h.clock.advance(2);
    }
    h.clock.run();
    return { h, stories, a1: only(h, 1), a2: only(h, 2), a3: only(h, 3) };
  };
  const refilled = run(100);
  assert.equal(refilled.a1.r.hedged, true);
  assert.equal(refilled.a1.at, 11, "query 1's copy went out at the hedge (10 ms) and took 1 ms");
  assert.equal(refilled.a2.r.hedged, true, "query 2's copy went out when the 100th arrival refilled the budget");
  assert.equal(refilled.a2.at, 20 + 99 * 2 + 1);
  assert.deepEqual([...twice(x2)], [...refilled.a2.r.data]);
  assert.equal(refilled.a3.r.hedged, false, 'query 3 waited less and got no token');
  assert.equal(refilled.a3.at, 1005);
  assert.deepEqual([refilled.h.policy.counts.copies, refilled.h.policy.counts.copiesDenied], [2, 1]);
  // too few arrivals: queries 2 and 3 wait for their originals, and their copies count as denied
  const starved = run(50);
  assert.equal(starved.a2.r.hedged, false);
  assert.equal(starved.a2.at, 1000);
  assert.deepEqual([starved.h.policy.counts.copies, starved.h.policy.counts.copiesDenied], [1, 2]);
  const story = starved.stories.find((st) => st.latencyMs === 1000);
  assert.ok(story?.copyDenied, 'the slow-query story says its copy was refused');
});

test('closing the frontend answers queries whose copy waits for the budget (as unavailable) and counts those copies as denied', () => {
  const h = setup({
    mode: 'equal-resources',
    hedgeMs: 10,
    copyBudget: 0.01,
    base: (c) => [scripted(c, [1000]), scripted(c, [1000]), scripted(c, [])],
  });
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.advance(20); // query 1's copy took the only token and answered; query 2's waits
  only(h, 1);
  h.policy.close();
  h.clock.run();
  const a2 = h.answers.get(2) ?? [];
  assert.equal(a2.length, 1);
  assert.ok(a2[0].r instanceof Error && /shutting down/.test(a2[0].r.message));
  assert.deepEqual([h.policy.counts.copies, h.policy.counts.copiesDenied], [1, 1]);
});

test('the copy budget also caps the coded fallback', () => {
  // every original and parity query stalls 500 ms: no group can decode by its deadline
  const slow = (c: VirtualClock) => Array.from({ length: 20 }, () => scripted(c, [], 500));
  const h = setup({ mode: 'coded', copyBudget: 0.02, base: slow, parity: (c) => [slow(c)] });
  for (let i = 0; i < 100; i++) {
    h.ask(i, i % 2 ? x1 : x2);
    h.clock.advance(30);
  }
  h.clock.run();
  for (let i = 0; i < 100; i++) only(h, i);
  assert.ok(h.policy.counts.copies <= 2 + 0.02 * 100, `fallback copies ${h.policy.counts.copies} exceed the budget`);
  assert.ok(h.policy.counts.copiesDenied > 0);
});

test("singletonGroups 'copy': a group that closes with one query sends no padding and no parity; a late original gets a fallback copy", () => {
  const run = (singletonGroups: 'pad' | 'copy') => {
    const h = setup({
      mode: 'coded',
      singletonGroups,
      maxWaitMs: 2,
      decodeDeadlineMs: 10,
      base: (c) => [scripted(c, [1000]), scripted(c, []), scripted(c, [])],
      parity: (c) => [[scripted(c, [])]],
    });
    h.ask(1, x1); // alone: its group closes after 2 ms; its original stalls
    h.clock.advance(50);
    h.ask(2, x2); // alone too, answered at once
    h.clock.run();
    return { h, a1: only(h, 1), a2: only(h, 2) };
  };
  const copy = run('copy');
  assert.equal(copy.a1.at, 11, 'the copy goes out once the original has run for the deadline (10 ms), answers 1 ms later');
  assert.deepEqual([copy.a1.r.hedged, copy.a1.r.reconstructed], [true, false]);
  assert.deepEqual([...copy.a1.r.data], twice(x1));
  assert.equal(copy.a2.r.hedged, false);
  assert.equal(copy.h.pools.get('parity:0')!.requests, 0, 'no parity query for lone queries');
  assert.equal(copy.h.pools.get('base')!.requests, 3, 'two originals and one copy');
  const pad = run('pad');
  assert.equal(
    pad.h.pools.get('parity:0')!.requests,
    1,
    'pad: the stalled lone query is padded and encoded (the other was answered before its group closed)',
  );
  assert.equal(pad.a1.r.hedged, true, 'pad: the padding copy answers the stalled query');
});

test('slow-query stories: a query answered after slowQueryMs is told with each request (role, instance, created / started / finished after arrival)', () => {
  const stories: SlowQueryStory[] = [];
  // coded: query 1's original stalls, its partner and the parity are on time -> reconstructed at the deadline (10 ms)
  const h = setup({
    mode: 'coded',
    slowQueryMs: 5,
    events: { slowQuery: (s) => stories.push(s) },
    base: (c) => [scripted(c, [1000]), scripted(c, [])],
    parity: (c) => [[scripted(c, [])]],
  });
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.run();
  assert.equal(only(h, 1).r.reconstructed, true);
  assert.equal(stories.length, 1, 'only the slow query is told');
  const s = stories[0];
  assert.deepEqual([s.latencyMs, s.outcome, s.byCopy, s.groupSize], [10, 'reconstructed', false, 2]);
  const byRole = new Map(s.tasks.map((t) => [t.role, t]));
  assert.deepEqual(byRole.get('original'), {
    role: 'original',
    pool: 'base',
    instance: 'base-0',
    createdMs: 0,
    startedMs: 0,
    finishedMs: null,
    cancelled: false,
  });
  assert.deepEqual(byRole.get('partner'), {
    role: 'partner',
    pool: 'base',
    instance: 'base-1',
    createdMs: 0,
    startedMs: 0,
    finishedMs: 1,
    cancelled: false,
  });
  assert.deepEqual([byRole.get('parity')!.pool, byRole.get('parity')!.finishedMs], ['parity:0', 1]);
  // uncoded with hedging: the copy is told too
  const told: SlowQueryStory[] = [];
  const e = setup({
    mode: 'equal-resources',
    hedgeMs: 10,
    slowQueryMs: 5,
    events: { slowQuery: (x) => told.push(x) },
    base: (c) => [scripted(c, [1000]), scripted(c, [])],
  });
  e.ask(1, x1);
  e.clock.run();
  assert.equal(told.length, 1);
  assert.deepEqual(
    told[0].tasks.map((t) => [t.role, t.instance, t.startedMs, t.finishedMs]),
    [
      ['original', 'base-0', 0, null],
      ['copy', 'base-1', 10, 11],
    ],
  );
  assert.equal(told[0].byCopy, true);
});

test('equal-resources without hedging waits for the straggler', () => {
  const h = setup({ mode: 'equal-resources', base: (c) => [scripted(c, [1000]), scripted(c, [])] });
  h.ask(1, x1);
  h.clock.run();
  assert.equal(only(h, 1).at, 1000);
});

test('parityDelayMs: no parity query goes out for groups whose originals answer within the delay; a late original makes it go out and is reconstructed', () => {
  const h = setup({
    mode: 'coded',
    parityDelayMs: 3,
    decodeDeadlineMs: 5,
    base: (c) => [scripted(c, [1, 1, 50]), scripted(c, [1, 1])],
    parity: (c) => [[scripted(c, [])]],
  });
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.run();
  assert.deepEqual([only(h, 1).at, only(h, 2).at], [1, 1]);
  const parity = h.pools.get('parity:0')!;
  assert.equal(parity.instances[0].served, 0, 'parity sent although both originals answered within the delay');
  // a partial group: its padding copy is redundancy too and stays home
  h.ask(3, x1);
  h.clock.run();
  assert.equal(only(h, 3).at, h.answers.get(3)![0].at);
  assert.equal(
    h.pools.get('base')!.instances.reduce((s, i) => s + i.served, 0),
    3,
    'the padding copy was sent although its original answered in time',
  );
  // now a group whose first original stalls (50 ms on instance 0): the parity goes out at the
  // delay, and the query is reconstructed at its deadline
  const t0 = h.clock.now();
  h.ask(4, x2);
  h.ask(5, x1);
  h.clock.run();
  const a4 = only(h, 4);
  assert.equal(a4.r.reconstructed, true);
  assert.equal(a4.at - t0, 5);
  assert.deepEqual([...a4.r.data], twice(x2));
  assert.equal(parity.instances[0].served, 1);
});

test('every accepted query is answered exactly once under random stalls, slow periods and failures, in every mode', () => {
  for (const mode of ['coded', 'equal-resources', 'replication', 'none'] as const) {
    for (const seed of [1, 2, 3]) {
      const rng = new Rng(seed);
      const f = (i: number) =>
        new FaultInjector({
          latency: { kind: 'none' },
          slowProb: 0.1,
          slowMs: 40,
          failProb: 0.05,
          crashAfter: 0,
          seed: seed * 10 + i,
          slowPeriods: { meanOnMs: 30, meanOffMs: 200, factor: 5, addMs: 3 },
        });
      const h = setup({
        mode,
        hedgeMs: mode === 'equal-resources' ? 4 : undefined,
        sloMs: 120,
        decodeDeadlineMs: 6,
        base: (c) => [0, 1, 2].map((i) => scripted(c, [], 1 + i, f(i))),
        parity: mode === 'coded' ? (c) => [[scripted(c, [], 2, f(7))]] : undefined,
      });
      const N = 400;
      let t = 0;
      for (let i = 0; i < N; i++) {
        t += -Math.log(1 - rng.float()) * 3;
        h.clock.runUntil(t);
        h.ask(i, Float32Array.of(i, 1, 2, 3));
      }
      h.clock.run();
      for (let i = 0; i < N; i++) {
        const a = h.answers.get(i) ?? [];
        assert.equal(a.length, 1, `${mode} seed ${seed}: query ${i} answered ${a.length} times`);
        const r = a[0].r as QueryResult;
        if (!r.defaulted) assert.deepEqual([...r.data], [2 * i, 2, 4, 6], `${mode} seed ${seed}: query ${i} got another query's output`);
      }
      assert.equal(h.policy.pending, 0);
      const c = h.policy.counts;
      assert.equal(c.original + c.reconstructed + c.default + c.error, N);
    }
  }
});

test('replication sends exactly two copies of every query (no fallback copies on top)', () => {
  const h = setup({ mode: 'replication', base: (c) => [scripted(c, [50]), scripted(c, []), scripted(c, [])] });
  for (let i = 0; i < 5; i++) h.ask(i, Float32Array.of(i, 0, 0, 0));
  h.clock.run();
  for (let i = 0; i < 5; i++) assert.deepEqual([...only(h, i).r.data], [2 * i, 0, 0, 0]);
  assert.equal(h.policy.counts.copies, 0);
  assert.equal(h.policy.counts.tasks, 10);
});

test("a pool never runs more than its concurrency on an instance, even when an expired task's failure handler submits new work", () => {
  const clock = new VirtualClock();
  let inflight = 0;
  let maxInflight = 0;
  const inner = scripted(clock, [20], 1);
  const counting = {
    infer: (
      call: Parameters<SimulatedInstance['infer']>[0],
      done: (o: Float32Array) => void,
      failed: Parameters<SimulatedInstance['infer']>[2],
    ) => {
      maxInflight = Math.max(maxInflight, ++inflight);
      inner.infer(
        call,
        (o) => (inflight--, done(o)),
        (e) => (inflight--, failed(e)),
      );
    },
    modelReady: () => Promise.resolve(true),
    close: () => {},
  };
  const pool = new Pool({
    name: 'base',
    model: 'm',
    addresses: ['a'],
    inputName: 'input',
    policy: 'single-queue',
    concurrency: 1,
    maxQueue: 100,
    healthIntervalMs: 1e9,
    healthTimeoutMs: 1e9,
    healthFailures: 1,
    log: silent,
    clock,
    connect: () => counting,
  });
  pool.assumeHealthy();
  const done: string[] = [];
  const task = (name: string, expiresAt: number, onFail?: () => void) => ({
    source: 1,
    data: x1,
    shape: [D],
    expiresAt,
    attempts: 0,
    cancelled: false,
    done: () => done.push(name),
    fail: () => {
      done.push(`${name} expired`);
      onFail?.();
    },
  });
  pool.submit(task('long', 1000));
  // expires while 'long' runs; its failure handler submits 'retry' from inside the pump
  pool.submit(task('short', 10, () => pool.submit(task('retry', 1000))));
  pool.submit(task('last', 1000));
  clock.run();
  assert.equal(maxInflight, 1);
  assert.deepEqual(done, ['long', 'short expired', 'last', 'retry']);
  assert.equal(pool.requests, 3);
});

/** Submit one query; a refusal is returned (thrown synchronously by submit), an acceptance gives null. */
function tryAsk(h: Harness, id: number, x: Float32Array): ServeError | null {
  try {
    h.ask(id, x);
    return null;
  } catch (e) {
    assert.ok(e instanceof ServeError, String(e));
    return e;
  }
}

test('admission control: at 10x capacity the excess is refused at once (overloaded, with a retry-after), every accepted query meets the budget, and service is normal right after', () => {
  // 2 instances of 10 ms: capacity 200 queries/s. Budget 100 ms, SLO 1000 ms.
  const h = setup({
    mode: 'none',
    sloMs: 1000,
    admission: { maxPredictedLatencyMs: 100, minSamples: 5 },
    base: (c) => [scripted(c, [], 10), scripted(c, [], 10)],
  });
  // light load first: the pool measures its service time (10 ms)
  for (let i = 0; i < 10; i++) {
    assert.equal(tryAsk(h, i, x1), null);
    h.clock.advance(20);
  }
  h.clock.run();
  // 2000 queries/s (10x) for 1 s: one every 0.5 ms
  const arrivals = new Map<number, number>();
  let refused = 0;
  for (let i = 100; i < 2100; i++) {
    h.clock.runUntil(h.clock.now() + 0.5);
    const e = tryAsk(h, i, x1);
    if (e === null) arrivals.set(i, h.clock.now());
    else {
      refused++;
      assert.equal(e.kind, 'overloaded');
      assert.match(e.message, /predicted latency \d+ ms .* exceeds the admission limit of 100 ms/);
      assert.ok(e.retryAfterMs !== undefined && e.retryAfterMs >= 1000);
    }
  }
  h.clock.run();
  const excess = 2000 - 200; // what 1 s at capacity cannot serve
  assert.ok(refused >= 0.9 * excess, `refused ${refused} of an excess of ${excess}`);
  for (const [id, at] of arrivals) {
    const a = only(h, id);
    assert.equal(a.r.defaulted, false, `accepted query ${id} got the default`);
    assert.ok(a.at - at <= 100 + 10, `accepted query ${id} took ${a.at - at} ms`);
  }
  assert.equal(h.policy.counts.rejected, refused);
  assert.equal(h.policy.counts.default, 0);
  // right after: light load is served at once, nothing refused
  for (let i = 5000; i < 5010; i++) {
    const t0 = h.clock.now();
    assert.equal(tryAsk(h, i, x1), null);
    h.clock.advance(20);
    assert.equal(only(h, i).at - t0, 10);
  }
});

test('without admission control the same overload is accepted and answered late with defaults (what admission control prevents)', () => {
  const h = setup({ mode: 'none', sloMs: 1000, base: (c) => [scripted(c, [], 10), scripted(c, [], 10)] });
  for (let i = 0; i < 900; i++) {
    h.clock.runUntil(h.clock.now() + 0.5);
    assert.equal(tryAsk(h, i, x1), null);
  }
  h.clock.run();
  assert.equal(h.policy.counts.rejected, 0);
  assert.ok(h.policy.counts.default > 500, `defaults ${h.policy.counts.default}`);
});

test("admission control admits before minSamples, never refuses a query that starts at once (even with a model slower than the budget), and counts replication's two copies", () => {
  // one instance of 500 ms, budget 100 ms
  const h = setup({
    mode: 'none',
    sloMs: 5000,
    admission: { maxPredictedLatencyMs: 100, minSamples: 1 },
    base: (c) => [scripted(c, [], 500)],
  });
  assert.equal(tryAsk(h, 1, x1), null, 'no measurement yet: admitted');
  assert.equal(tryAsk(h, 2, x1), null, 'no measurement yet: admitted although queued');
  h.clock.run();
  assert.equal(tryAsk(h, 3, x1), null, 'a free instance: admitted though 500 ms > budget');
  assert.ok(tryAsk(h, 4, x1) instanceof ServeError, 'queued behind 500 ms of work: refused');
  h.clock.run();
  assert.equal(h.answers.has(4), false);
  // replication: each query is two requests to the base pool
  const r = setup({
    mode: 'replication',
    sloMs: 5000,
    admission: { maxPredictedLatencyMs: 15, minSamples: 1 },
    base: (c) => [scripted(c, [], 10), scripted(c, [], 10)],
  });
  tryAsk(r, 1, x1);
  r.clock.run();
  assert.equal(tryAsk(r, 2, x1), null, 'two copies, two free instances');
  r.clock.advance(0); // the second copy goes out after the first (clock.soon)
  assert.ok(tryAsk(r, 3, x1) instanceof ServeError, 'two more copies behind two running ones: 20 ms > 15');
});

test('service-time window: mean of the last samples, each clipped; predicted latency drains the backlog through the slots', () => {
  const w = new ServiceTimeWindow(4, 100);
  assert.equal(w.meanMs, null);
  for (const v of [10, 10, 10, 10, 5000]) w.record(v);
  assert.equal(w.count, 4);
  assert.equal(w.meanMs, (10 + 10 + 10 + 100) / 4, 'the oldest sample left the window; the stall counts as the clip');
  // samples age out: after an overload, its slow answers stop counting
  const aged = new ServiceTimeWindow(8, Infinity, 1000);
  aged.record(400, 0);
  aged.record(400, 100);
  aged.record(10, 1050);
  assert.equal(aged.meanMs, (400 + 10) / 2, 'the sample of t=0 is over 1000 ms old at t=1050');
  aged.expire(2101);
  assert.equal(aged.count, 0);
  assert.equal(aged.meanMs, null);
  assert.equal(predictedLatencyMs({ serviceMs: 10, slots: 4, queued: 0, inflight: 2 }, 1), 10);
  assert.equal(predictedLatencyMs({ serviceMs: 10, slots: 4, queued: 8, inflight: 4 }, 1), 10 + (9 * 10) / 4);
  assert.equal(
    admissionVerdict({ serviceMs: 10, slots: 4, queued: 8, inflight: 4 }, 10, 1, { maxPredictedLatencyMs: 100, minSamples: 5 }),
    null,
  );
  // a batch of 64 on an idle pool predicts 10 + 60 x 10 / 4 = 160 ms but starts now: admitted
  assert.equal(
    admissionVerdict({ serviceMs: 10, slots: 4, queued: 0, inflight: 3 }, 10, 64, { maxPredictedLatencyMs: 100, minSamples: 5 }),
    null,
  );
  assert.notEqual(
    admissionVerdict({ serviceMs: 10, slots: 4, queued: 0, inflight: 4 }, 10, 64, { maxPredictedLatencyMs: 100, minSamples: 5 }),
    null,
  );
  const v = admissionVerdict({ serviceMs: 10, slots: 4, queued: 80, inflight: 4 }, 10, 1, { maxPredictedLatencyMs: 100, minSamples: 5 });
  assert.ok(v !== null && v.predictedMs > 100 && v.retryAfterMs === 1000);
});

test('admission control in coded mode: the base pool that answers the originals decides; at 10x the excess is refused and every accepted query is answered within the limit, none with the default', () => {
  // 2 base instances of 10 ms and 1 parity instance of 10 ms (addition k=2): 200 queries/s
  const h = setup({
    mode: 'coded',
    sloMs: 1000,
    decodeDeadlineMs: 50,
    admission: { maxPredictedLatencyMs: 100, minSamples: 5 },
    base: (c) => [scripted(c, [], 10), scripted(c, [], 10)],
    parity: (c) => [[scripted(c, [], 10)]],
  });
  for (let i = 0; i < 10; i++) {
    assert.equal(tryAsk(h, i, x1), null);
    h.clock.advance(20);
  }
  h.clock.run();
  const arrivals = new Map<number, number>();
  let refused = 0;
  for (let i = 100; i < 2100; i++) {
    h.clock.runUntil(h.clock.now() + 0.5);
    if (tryAsk(h, i, i % 2 === 0 ? x1 : x2) === null) arrivals.set(i, h.clock.now());
    else refused++;
  }
  h.clock.run();
  assert.ok(refused >= 0.9 * (2000 - 200), `refused ${refused}`);
  for (const [id, at] of arrivals) {
    const a = only(h, id);
    assert.equal(a.r.defaulted, false);
    assert.ok(a.at - at <= 110, `accepted query ${id} took ${a.at - at} ms`);
  }
});
