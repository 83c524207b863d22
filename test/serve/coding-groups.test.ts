// The coding-group state machine (ServingPolicy, src/serve/policy.ts) alone: no pools, no
// instances, no libtorch. Dispatch is a script that records every task the policy hands out
// and starts it at once; the test answers (or fails) each task by hand at exact times on a
// VirtualClock, with a plain-JS addition code (parity = X1 + X2, a missing output = parity -
// the other). Group close (full, and by maxWaitMs with padding), decode at the deadline, a
// failed original, the fallback and exactly-once answers, each checked at simulated times.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { VirtualClock } from '../../src/serve/clock.js';
import type { Dispatch, Task } from '../../src/serve/pool.js';
import type { CodedInput, GroupCodec } from '../../src/serve/group-codec.js';
import { ServingPolicy, type PolicyOptions, type QueryResult, type SlowQueryStory } from '../../src/serve/policy.js';
import { policySettings, validateFrontendConfig } from '../../src/serve/config.js';

const silent = pino({ level: 'silent' });
const D = 2;

/** Records tasks; each starts at once on instance NAME-N (N counts tasks). */
class ScriptedDispatch implements Dispatch {
  readonly tasks: Task[] = [];
  idleCount = 1;
  queued = 0;
  readonly serviceTimes = { count: 0 };
  constructor(
    readonly name: string,
    private readonly clock: VirtualClock,
  ) {}
  submit(t: Task): void {
    this.tasks.push(t);
    t.attempts++;
    t.ranOn = `${this.name}-${this.tasks.length - 1}`;
    t.startedAt = this.clock.now();
  }
  hasRoom(): boolean {
    return true;
  }
  load() {
    return null;
  }
}

const add = (a: Float32Array, b: Float32Array, sign = 1) => a.map((v, i) => v + sign * b[i]);

/** The addition code (k = 2, r = 1) in plain JS: parity = X1 + X2; decodes with any two of three outputs. */
const additionCodec: GroupCodec = {
  name: 'addition-js',
  k: 2,
  n: 3,
  systematic: true,
  approximateDecoding: false,
  pools: ['base', 'base', 'parity:0'],
  canDecode: (a) => a.filter(Boolean).length >= 2,
  encode: (q): CodedInput[] => [...q.map((x) => ({ data: x, shape: [D] })), { data: add(q[0], q[1]), shape: [D] }],
  decode: (o) => {
    const [y1, y2, p] = o;
    if (y1 !== null && y2 !== null) return { data: [y1, y2], reconstructed: [false, false] };
    if (y1 === null) return { data: [add(p!, y2!, -1), y2!], reconstructed: [true, false] };
    return { data: [y1, add(p!, y1, -1)], reconstructed: [false, true] };
  },
};

interface Harness {
  clock: VirtualClock;
  policy: ServingPolicy;
  base: ScriptedDispatch;
  parity: ScriptedDispatch;
  answers: Map<number, { at: number; r: QueryResult | Error }[]>;
  ask(id: number, x: Float32Array): void;
}

function setup(o: Partial<PolicyOptions> = {}): Harness {
  const clock = new VirtualClock();
  const base = new ScriptedDispatch('base', clock);
  const parity = new ScriptedDispatch('parity:0', clock);
  const policy = new ServingPolicy({
    mode: 'coded',
    codec: additionCodec,
    pools: new Map<string, Dispatch>([
      ['base', base],
      ['parity:0', parity],
    ]),
    clock,
    log: silent,
    inputShape: [D],
    defaultOutput: new Float32Array(D),
    sloMs: 1000,
    decodeDeadlineMs: 10,
    maxWaitMs: 5,
    parityDelayMs: 0,
    onMiss: 'default',
    maxPendingQueries: 100,
    maxAttempts: 1,
    hedgeMs: null,
    fallback: true,
    admission: null,
    ...o,
  });
  const answers = new Map<number, { at: number; r: QueryResult | Error }[]>();
  return {
    clock,
    policy,
    base,
    parity,
    answers,
    ask: (id, x) => policy.submit([x], (_, r) => answers.set(id, [...(answers.get(id) ?? []), { at: clock.now(), r }])),
  };
}

/** The one answer of query `id` (fails if it has none or several, or an error). */
function only(h: Harness, id: number): { at: number; r: QueryResult } {
  const a = h.answers.get(id) ?? [];
  assert.equal(a.length, 1, `query ${id} answered ${a.length} times`);
  assert.ok(!(a[0].r instanceof Error), `query ${id} failed: ${(a[0].r as Error).message}`);
  return a[0] as { at: number; r: QueryResult };
}

const x1 = Float32Array.of(1, 2);
const x2 = Float32Array.of(10, 20);
// outputs the script answers with (any values: decoding is checked against them)
const y1 = Float32Array.of(3, 4);
const y2 = Float32Array.of(30, 40);
const p12 = add(y1, y2);

test('a group closes when its k-th query arrives: originals go out on arrival, the parity right after (not at maxWaitMs)', () => {
  const h = setup();
  h.ask(1, x1);
  assert.equal(h.base.tasks.length, 1, 'the original goes out on arrival');
  h.clock.advance(1);
  h.ask(2, x2);
  assert.equal(h.base.tasks.length, 2);
  assert.equal(h.parity.tasks.length, 0, 'encoding waits until this event is done');
  h.clock.advance(0);
  assert.equal(h.parity.tasks.length, 1, 'the full group is encoded at once');
  assert.deepEqual([...h.parity.tasks[0].data], [...add(x1, x2)]);
  assert.equal(h.clock.now(), 1);
});

test('before any query was answered, a lone query closes its group at maxWaitMs padded with a copy of itself; the padding copy answering first answers it, flagged as a copy', () => {
  const h = setup();
  h.ask(1, x1);
  h.clock.advance(4.9);
  assert.equal(h.base.tasks.length, 1);
  assert.equal(h.parity.tasks.length, 0, 'the group is still open');
  h.clock.advance(0.1);
  assert.equal(h.base.tasks.length, 2, 'closed at maxWaitMs: the padding copy went out');
  assert.deepEqual([...h.base.tasks[1].data], [...x1]);
  assert.equal(h.parity.tasks.length, 1);
  assert.deepEqual([...h.parity.tasks[0].data], [...add(x1, x1)]);
  h.clock.advance(1);
  h.base.tasks[1].done(y1);
  const a = only(h, 1);
  assert.deepEqual([...a.r.data], [...y1]);
  assert.equal(a.r.hedged, true, 'answered by the padding copy');
  assert.equal(a.r.reconstructed, false);
  assert.ok(h.base.tasks[0].cancelled && h.parity.tasks[0].cancelled, 'the group is done: its other tasks are cancelled');
  h.base.tasks[0].done(y1);
  assert.equal(h.answers.get(1)!.length, 1, 'the original coming back later answers nothing');
});

/** A full group (x1, x2) whose first original and parity answer 1 ms after it arrived; the second original is still out. */
function groupMissingSecond(h: Harness): void {
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.advance(1);
  h.base.tasks[0].done(y1);
  h.parity.tasks[0].done(p12);
}

const x3 = Float32Array.of(100, 200);
const y3 = Float32Array.of(300, 400);

test("padding 'answered': a lone query is padded with the last query answered by the model itself (no padding request) and reconstructed from its parity alone", () => {
  const stories: SlowQueryStory[] = [];
  const h = setup({ slowQueryMs: 0, events: { slowQuery: (st) => stories.push(st) } });
  h.ask(1, x1);
  h.clock.advance(1);
  h.base.tasks[0].done(y1); // answered by the model: x1 -> y1 is known now
  h.clock.advance(10); // group 1 closed at 5 ms with its original back: it sent nothing more
  const before = [h.base.tasks.length, h.parity.tasks.length];
  h.ask(3, x3); // alone
  h.clock.advance(5);
  assert.equal(h.base.tasks.length, before[0] + 1, 'only the original went to the base pool: no padding request');
  assert.equal(h.parity.tasks.length, before[1] + 1);
  const parity = h.parity.tasks.at(-1)!;
  assert.deepEqual([...parity.data], [...add(x3, x1)], 'the parity encodes the lone query with the answered one');
  h.clock.advance(1);
  parity.done(add(y3, y1));
  assert.equal(h.answers.get(3), undefined, 'the original may still come: wait for the deadline');
  h.clock.runUntil(h.clock.now() + 10);
  const a = only(h, 3);
  assert.equal(a.r.reconstructed, true);
  assert.deepEqual([...a.r.data], [...y3], "parity output - the answered query's known output");
  assert.equal(h.base.tasks.at(-1)!.cancelled, true, 'the straggling original is cancelled');
  const story = stories.at(-1)!;
  assert.deepEqual(
    [story.groupSize, story.paddedWithAnswered, story.tasks.map((t) => t.role)],
    [1, 1, ['original', 'parity']],
    'the slow-query story tells the padding that cost no request',
  );
});

test("padding 'answered' uses only outputs of the model itself: a reconstructed answer never pads, and 'repeat' sends padding copies", () => {
  const h = setup();
  groupMissingSecond(h);
  h.clock.runUntil(10); // q2 is reconstructed
  assert.equal(only(h, 2).r.reconstructed, true);
  h.ask(3, x3);
  h.clock.advance(5);
  assert.deepEqual([...h.parity.tasks.at(-1)!.data], [...add(x3, x1)], 'padded with x1 (answered by the model), not x2 (reconstructed)');
  const r = setup({ padding: 'repeat' });
  r.ask(1, x1);
  r.clock.advance(1);
  r.base.tasks[0].done(y1);
  r.clock.advance(10);
  r.ask(3, x3);
  r.clock.advance(5);
  assert.equal(r.base.tasks.length, 3, 'repeat: two originals and the padding copy of the lone query still out');
  assert.deepEqual([...r.base.tasks[2].data], [...x3]);
  assert.deepEqual([...r.parity.tasks.at(-1)!.data], [...add(x3, x3)]);
});

/** The addition code for any k in plain JS: parity = X_1 + ... + X_k; decodes one missing output. */
function additionCodecK(k: number): GroupCodec {
  const sum = (xs: readonly Float32Array[]) => xs.reduce((a, b) => add(a, b));
  return {
    name: `addition-js-${k}`,
    k,
    n: k + 1,
    systematic: true,
    approximateDecoding: false,
    pools: [...Array(k).fill('base'), 'parity:0'],
    canDecode: (a) => a.filter(Boolean).length >= k,
    encode: (q): CodedInput[] => [...q.map((x) => ({ data: x, shape: [D] })), { data: sum(q), shape: [D] }],
    decode: (o) => {
      const miss = o.slice(0, k).indexOf(null);
      if (miss < 0) return { data: o.slice(0, k) as Float32Array[], reconstructed: Array(k).fill(false) };
      const others = o.slice(0, k).filter((y): y is Float32Array => y !== null);
      const data = o.slice(0, k).map((y, i) => (i === miss ? add(o[k]!, sum(others), -1) : y!));
      return { data, reconstructed: data.map((_, i) => i === miss) };
    },
  };
}

test("padding 'answered', k = 3: a group of 2 is padded with an answered query that is not its own, and its stalled original is reconstructed exactly", () => {
  const h = setup({ codec: additionCodecK(3) });
  h.ask(1, x1);
  h.clock.advance(1);
  h.base.tasks[0].done(y1);
  h.clock.advance(9); // group 1 closed alone at 5 ms, already answered: nothing more went out
  assert.deepEqual([h.base.tasks.length, h.parity.tasks.length], [1, 0]);
  h.ask(2, x2);
  h.ask(3, x3);
  h.clock.advance(1);
  h.base.tasks[1].done(y2); // answered: in the ring, but it is this group's own query
  h.clock.advance(4); // the group closes at maxWaitMs with 2 of 3 queries
  assert.equal(h.base.tasks.length, 3, 'no padding request');
  assert.deepEqual([...h.parity.tasks[0].data], [...add(add(x2, x3), x1)], 'padded with x1, not with its own x2');
  h.parity.tasks[0].done(add(add(y2, y3), y1));
  h.clock.runUntil(20);
  const a = only(h, 3);
  assert.equal(a.r.reconstructed, true);
  assert.deepEqual([...a.r.data], [...y3]);
});

test("padding 'answered' with parityDelayMs: a lone query still out after the delay sends its parity alone (no padding request) and is reconstructed at the deadline", () => {
  const h = setup({ parityDelayMs: 3 });
  h.ask(1, x1);
  h.clock.advance(1);
  h.base.tasks[0].done(y1);
  h.clock.advance(9);
  h.ask(3, x3); // alone; its group closes at 15 ms, the parity is due at 18 ms
  h.clock.runUntil(17.9);
  assert.equal(h.parity.tasks.length, 0, 'the parity waits for the delay');
  h.clock.runUntil(18);
  assert.equal(h.parity.tasks.length, 1);
  assert.equal(h.base.tasks.length, 2, 'two originals, no padding copy');
  assert.deepEqual([...h.parity.tasks[0].data], [...add(x3, x1)]);
  h.parity.tasks[0].done(add(y3, y1));
  h.clock.runUntil(20);
  const a = only(h, 3);
  assert.deepEqual([a.at, a.r.reconstructed, [...a.r.data]], [20, true, [...y3]]);
});

test('a late original is reconstructed exactly at the decode deadline (not before), flagged; the late original is then ignored', () => {
  const h = setup();
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.advance(2);
  h.base.tasks[0].done(y1);
  assert.equal(only(h, 1).r.reconstructed, false);
  h.clock.advance(1);
  h.parity.tasks[0].done(p12);
  h.clock.runUntil(9.99);
  assert.equal(h.answers.get(2), undefined, 'a systematic code waits for the original until the deadline');
  h.clock.runUntil(10);
  const a = only(h, 2);
  assert.equal(a.at, 10);
  assert.equal(a.r.reconstructed, true);
  assert.deepEqual([...a.r.data], [...y2], 'parity - partner');
  assert.equal(h.base.tasks[1].cancelled, true, 'the straggling original is cancelled');
  h.clock.advance(50);
  h.base.tasks[1].done(y2);
  assert.equal(h.answers.get(2)!.length, 1, 'answered exactly once');
  assert.deepEqual(h.policy.counts, { ...h.policy.counts, original: 1, reconstructed: 1, default: 0, error: 0, copies: 0 });
});

test('a failed original is decoded at once when the code can, before the deadline', () => {
  const h = setup();
  groupMissingSecond(h);
  h.clock.advance(1);
  h.base.tasks[1].fail(new Error('instance went away'), false);
  const a = only(h, 2);
  assert.equal(a.at, 2);
  assert.equal(a.r.reconstructed, true);
  assert.deepEqual([...a.r.data], [...y2]);
});

test('a failed original whose group cannot decode gets a fallback copy at once, away from the instance that failed it; the copy answers it', () => {
  const h = setup();
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.advance(0.5);
  h.base.tasks[0].done(y1);
  h.clock.advance(0.5);
  h.base.tasks[1].fail(new Error('instance went away'), false);
  assert.equal(h.base.tasks.length, 3, 'the parity is still out: a copy of the failed original goes out now');
  const copy = h.base.tasks[2];
  assert.equal(copy.hedge, true);
  assert.equal(copy.avoid, h.base.tasks[1].ranOn);
  assert.deepEqual([...copy.data], [...x2]);
  h.clock.advance(2);
  copy.done(y2);
  const a = only(h, 2);
  assert.equal(a.r.hedged, true);
  assert.equal(a.r.reconstructed, false);
  h.parity.tasks[0].done(p12);
  assert.equal(h.answers.get(2)!.length, 1);
  assert.equal(h.policy.counts.copies, 1);
});

test('at the decode deadline an undecodable group (partner and parity late too) copies each late original once it has run that long; first answer wins', () => {
  const h = setup();
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.runUntil(9.99);
  assert.equal(h.base.tasks.length, 2, 'no copies before the deadline');
  h.clock.runUntil(10);
  assert.equal(h.base.tasks.length, 4, 'both originals copied at the deadline');
  assert.deepEqual(
    h.base.tasks.slice(2).map((t) => [t.hedge, t.avoid]),
    [
      [true, h.base.tasks[0].ranOn],
      [true, h.base.tasks[1].ranOn],
    ],
  );
  h.clock.advance(1);
  h.base.tasks[2].done(y1);
  assert.equal(only(h, 1).r.hedged, true);
  h.base.tasks[0].done(y1);
  assert.equal(h.answers.get(1)!.length, 1, 'the original after its copy answers nothing');
  // the partner's original answers: q2 needs nothing else
  h.base.tasks[1].done(y2);
  assert.equal(only(h, 2).r.hedged, false);
  assert.equal(h.base.tasks[3].cancelled, true, "q2's copy is cancelled");
});

test('without the fallback an undecodable group waits, and the SLO answers with the default, once', () => {
  const h = setup({ fallback: false, sloMs: 100 });
  h.ask(1, x1);
  h.ask(2, x2);
  h.clock.advance(0);
  h.base.tasks[0].done(y1);
  h.clock.runUntil(99);
  assert.equal(h.base.tasks.length, 2, 'no copies');
  assert.equal(h.answers.get(2), undefined);
  h.clock.runUntil(100);
  const a = only(h, 2);
  assert.equal(a.r.defaulted, true);
  h.base.tasks[1].done(y2);
  h.parity.tasks[0].done(p12);
  assert.equal(h.answers.get(2)!.length, 1);
});

test('close answers every open query with an error, exactly once; answers after it are ignored', () => {
  const h = setup();
  h.ask(1, x1);
  h.ask(2, x2);
  h.ask(3, x1);
  h.policy.close();
  for (const id of [1, 2, 3]) {
    const a = h.answers.get(id) ?? [];
    assert.equal(a.length, 1);
    assert.ok(a[0].r instanceof Error && /shutting down/.test(a[0].r.message));
  }
  h.base.tasks[0].done(y1);
  h.clock.run();
  assert.deepEqual(
    [1, 2, 3].map((id) => h.answers.get(id)!.length),
    [1, 1, 1],
  );
  assert.equal(h.policy.pending, 0);
});

test("a frontend config's policy settings: the frontend's defaults, and the config's values where given", () => {
  const pools = { base: { model: 'm', instances: ['127.0.0.1:1'] } };
  const d = policySettings(
    validateFrontendConfig({ name: 'f', grpcPort: 0, mode: 'coded', code: { family: 'addition', k: 2, r: 1 }, pools }),
  );
  assert.deepEqual(d, {
    mode: 'coded',
    sloMs: 1000,
    decodeDeadlineMs: 20,
    maxWaitMs: 5,
    parityDelayMs: 0,
    onMiss: 'default',
    maxPendingQueries: 4096,
    maxAttempts: 2,
    hedgeMs: null,
    fallback: true,
    copyBudget: undefined,
    singletonGroups: 'pad',
    padding: 'answered',
    admission: { maxPredictedLatencyMs: 500, minSamples: 20 },
  });
  const s = policySettings(
    validateFrontendConfig({
      name: 'f',
      grpcPort: 0,
      mode: 'equal-resources',
      sloMs: 200,
      hedgeMs: 15,
      copyBudget: null,
      admission: { enabled: false },
      pools,
    }),
  );
  assert.equal(s.decodeDeadlineMs, 4);
  assert.equal(s.hedgeMs, 15);
  assert.equal(s.copyBudget, null);
  assert.equal(s.admission, null);
});
