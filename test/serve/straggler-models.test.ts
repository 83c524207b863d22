import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { FaultInjector, parseSlowPeriods, readLatencyTrace, NO_FAULTS } from '../../src/serve/faults.js';
import { VirtualClock } from '../../src/serve/clock.js';

test('slow periods: requests inside a slow period are all slowed (correlated), and the slow share of time matches on / (on + off)', () => {
  const sp = parseSlowPeriods('200:800:4:30');
  assert.deepEqual(sp, { meanOnMs: 200, meanOffMs: 800, factor: 4, addMs: 30 });
  const f = new FaultInjector({ ...NO_FAULTS, seed: 3, slowPeriods: sp });
  let slow = 0;
  let runs = 0;
  let prev = false;
  const N = 200_000;
  for (let i = 0; i < N; i++) {
    const d = f.next(i); // one request per simulated ms
    if (d.inSlowPeriod) {
      slow++;
      assert.equal(d.computeFactor, 4);
      assert.equal(d.delayMs, 30);
    } else {
      assert.deepEqual([d.computeFactor, d.delayMs], [1, 0]);
    }
    if (d.inSlowPeriod && !prev) runs++;
    prev = d.inSlowPeriod;
  }
  const share = slow / N;
  assert.ok(Math.abs(share - 0.2) < 0.04, `slow share ${share}`);
  // correlated: slow requests come in runs of ~200 (mean period length), not one by one
  assert.ok(slow / runs > 100, `mean run of slow requests ${slow / runs}`);
});

test('slow periods leave the per-request stall draws unchanged (their own random stream)', () => {
  const spec = { ...NO_FAULTS, slowProb: 0.3, slowMs: 50, seed: 9 };
  const a = new FaultInjector(spec);
  const b = new FaultInjector({ ...spec, slowPeriods: { meanOnMs: 10, meanOffMs: 10, factor: 2, addMs: 0 } });
  for (let i = 0; i < 1000; i++) assert.equal(a.next(i).slowed, b.next(i).slowed);
});

test('bad slow-period specs are refused with the syntax', () => {
  for (const bad of ['', '1:2', '0:10:2', '10:10:0.5', 'a:b:c', '1:2:3:4:5'])
    assert.throws(() => parseSlowPeriods(bad), /ON_MS:OFF_MS:FACTOR/, bad);
});

test('a latency trace is replayed cyclically from a seeded offset; text and JSON forms; bad files named with the line', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-trace-'));
  try {
    writeFileSync(join(dir, 't.txt'), '# ms per request\n1\n2.5\n\n3\n');
    writeFileSync(join(dir, 't.json'), '[1, 2.5, 3]');
    writeFileSync(join(dir, 'bad.txt'), '1\nfast\n');
    writeFileSync(join(dir, 'neg.json'), '[1, -2]');
    assert.deepEqual(readLatencyTrace(join(dir, 't.txt')), [1, 2.5, 3]);
    assert.deepEqual(readLatencyTrace(join(dir, 't.json')), [1, 2.5, 3]);
    assert.throws(() => readLatencyTrace(join(dir, 'bad.txt')), /line 2: 'fast' is not a number/);
    assert.throws(() => readLatencyTrace(join(dir, 'neg.json')), /entry 1 \(-2\) must be a non-negative/);
    assert.throws(() => readLatencyTrace(join(dir, 'missing.txt')), /cannot read latency trace/);
    const f = new FaultInjector({ ...NO_FAULTS, seed: 4, trace: [1, 2.5, 3] });
    const seq = Array.from({ length: 6 }, (_, i) => f.next(i).delayMs);
    const start = [1, 2.5, 3].indexOf(seq[0]);
    assert.ok(start >= 0);
    assert.deepEqual(
      seq,
      Array.from({ length: 6 }, (_, i) => [1, 2.5, 3][(start + i) % 3]),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the virtual clock fires timers in time order (ties in the order set), skips cancelled ones and moves only when told', () => {
  const c = new VirtualClock();
  const seen: string[] = [];
  c.after(5, () => seen.push('b'));
  const x = c.after(3, () => seen.push('x'));
  c.after(5, () => {
    seen.push('c');
    c.soon(() => seen.push('d'));
  });
  c.after(1, () => seen.push('a'));
  x.cancel();
  assert.equal(c.now(), 0);
  c.advance(4);
  assert.deepEqual(seen, ['a']);
  assert.equal(c.now(), 4);
  c.run();
  assert.deepEqual(seen, ['a', 'b', 'c', 'd']);
  assert.equal(c.now(), 5);
});
