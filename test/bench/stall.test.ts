// The stall benchmark's report (src/bench/stall.ts) on synthetic samples: the frontend CPU a bad
// request cost is its window's CPU beyond what the same load cost in a baseline window (scaled to
// the window's length), not the window's absolute CPU; the latency columns come from the normal
// queries sent in the window.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { attackResult, extraCpuMs, stallMarkdown, type NormalSample, type StallResult } from '../../src/bench/stall.js';

test('extra CPU: the window minus the baseline window scaled to its length; a request that cost nothing costs 0 whatever the load costs', () => {
  const baseline = { cpuMs: 300, ms: 1500 };
  // the normal load alone: 0.2 ms of CPU per ms
  assert.equal(extraCpuMs({ cpuMs: 400, ms: 2000 }, baseline), 0);
  assert.equal(extraCpuMs({ cpuMs: 300, ms: 1500 }, baseline), 0);
  assert.equal(extraCpuMs({ cpuMs: 650, ms: 2000 }, baseline), 250);
  // a longer window (the bad request answered late) expects more baseline CPU
  assert.equal(extraCpuMs({ cpuMs: 1000, ms: 5000 }, baseline), 0);
  assert.ok(Number.isNaN(extraCpuMs({ cpuMs: 10, ms: 100 }, { cpuMs: 0, ms: 0 })));
});

test('an attack row: normal queries sent from 50 ms before the bad request to the window end, their worst against the baseline median, CPU against the baseline window', () => {
  const normal: NormalSample[] = [
    { at: 900, ms: 500 }, // before the window: not counted
    { at: 960, ms: 3 }, // 40 ms before the bad request: counted (it may be delayed by it)
    { at: 1000, ms: 2 },
    { at: 1100, ms: 80 },
    { at: 1500, ms: 4 },
    { at: 2000, ms: 1 },
    { at: 2001, ms: 900 }, // after the window: not counted
  ];
  const r = attackResult({
    name: 'nested',
    answer: '400 too deep',
    answerMs: 12,
    normal,
    start: 1000,
    end: 2000,
    baselineP50Ms: 2,
    generatorLagMs: 1,
    frontendLagMs: 70,
    cpu: { cpuMs: 760, ms: 3000 },
    baselineCpu: { cpuMs: 600, ms: 3000 },
  });
  assert.equal(r.queries, 5);
  assert.equal(r.p50Ms, 3);
  assert.equal(r.maxMs, 80);
  assert.equal(r.addedMs, 78);
  assert.equal(r.frontendCpuMs, 760, 'the absolute CPU is kept for reference');
  assert.equal(r.extraCpuMs, 160, 'what the bad request cost: 760 - 600');
  assert.equal(r.windowMs, 3000);
  assert.equal('note' in r, false);

  const report: StallResult = {
    baseline: { queries: 100, p50Ms: 2, p99Ms: 5, maxMs: 9, frontendLagMs: 11, cpu: { cpuMs: 600, ms: 3000 } },
    attacks: [r],
    worstAddedMs: r.addedMs,
    failedNormal: 0,
  };
  const md = stallMarkdown(report, 200);
  assert.match(md, /frontend extra CPU over the baseline window, ms/);
  assert.match(md, /baseline window measured the same way under the same load with no bad request: 600 ms of CPU in 3000 ms/);
  assert.match(md, /\| 160 \(760 in 3000 ms\) \|/);
  assert.match(md, /Worst delay added to a normal query: 78.0 ms \(bar: 100 ms, met\)/);
});
