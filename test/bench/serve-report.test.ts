// The serving reports: percentiles never above the maximum, the achieved rate counts answers,
// serve.md reads as sentences, and answers later than the SLO that are no defaults are explained.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { newStats, summarize, tailComposition, describeTail, metricSum } from '../../src/serve/load-generator.js';
import { serveMarkdown, slowQueryLines, timeCoding, describeCoding, type ServeReport } from '../../src/bench/serve.js';
import { roundLatency } from '../../src/bench/serving-experiment.js';

test('summarize: no percentile is printed above the largest latency recorded (HDR reports the top of a bucket)', () => {
  const st = newStats(1000);
  // 1234.567 ms and a few small ones: HDR's bucket for 1234567 us ends above it
  for (const us of [1000, 2000, 3000, 1234567]) st.h.recordValue(us);
  st.measured = 4;
  const s = summarize(st);
  assert.equal(s.latencyMs.max, 1234.567);
  for (const [k, v] of Object.entries(s.latencyMs)) assert.ok(v <= s.latencyMs.max, `${k} ${v} > max ${s.latencyMs.max}`);
  for (const c of s.cdf) assert.ok(c.latencyMs <= s.latencyMs.max, `p${c.percentile} ${c.latencyMs} > max`);
  st.h.destroy();
});

test("summarize: achievedRate is answers per second over the time until the last answer, not the schedule's rate", () => {
  const st = newStats(1000);
  st.measured = 1000; // sent over 1 s ...
  st.spanMs = 1000;
  st.completed = 400; // ... 600 refused, the 400 answers done 2 s after the first send
  st.rejected = 600;
  st.activeMs = 2000;
  const s = summarize(st);
  assert.equal(s.offeredRate, 1000);
  assert.equal(s.achievedRate, 200);
  st.h.destroy();
});

function report(lateNotDefault: number): ServeReport {
  const lat = { p50: 1500, p99: 1800, p999: 1900, max: 1950 };
  return {
    settings: {
      model: 'noop:1000',
      device: 'cpu',
      rate: 300,
      queries: 1000,
      warmup: 10,
      sloMs: 1000,
      decodeDeadlineMs: 10,
      parityDelayMs: 0,
      stragglers: { slowProb: 0.01, slowMs: 100 },
    },
    stragglers: 'independent stalls',
    warning: null,
    coding: { code: 'addition', encodeUs: 30, decodeUs: 30, totalUs: 60 },
    frontendOverheadMs: 1.5,
    modes: [
      {
        mode: 'coded',
        config: '4 base + 2 parity',
        queries: 1000,
        latencyMs: lat,
        predictedMs: { p50: 4, p99: 10, p999: 20 },
        requestsPerQuery: 1.5,
        reconstructed: 5,
        answeredByCopy: 1,
        defaults: 0,
        lost: 0,
        duplicates: 0,
        rejected: 0,
        lateNotDefault,
        sendLagMs: { p99: 700, max: 900 },
      },
      {
        mode: 'equal-resources',
        config: '6 base replicas',
        queries: 1000,
        latencyMs: lat,
        predictedMs: null,
        requestsPerQuery: 1,
        reconstructed: 0,
        answeredByCopy: 0,
        defaults: 0,
        lost: 0,
        duplicates: 0,
        rejected: 0,
        lateNotDefault: 0,
      },
    ],
    comparisons: { 'equal-resources': { p50: 1, p99: 1, p999: 1 } },
  };
}

test('serve.md ends in sentences, not in raw camelCase keys', () => {
  const md = serveMarkdown(report(0));
  const lines = md.split('\n').filter((l) => l.trim() !== '');
  for (const l of lines) assert.doesNotMatch(l, /^\s*-?\s*[a-z]+[A-Z][A-Za-z0-9]*\s*:/, `raw key line: ${l}`);
  assert.match(lines[lines.length - 1], /\.$/);
  assert.doesNotMatch(md, /Latency is measured from each query's intended send time/, 'no note when every late answer was a default');
});

test('serve.md explains answers later than the SLO that are not defaults (the SLO starts when the frontend reads the query)', () => {
  const md = serveMarkdown(report(812));
  assert.match(
    md,
    /coded: 812 answers came more than 1000 ms after their intended send time without being defaults \(the load generator sent p99 700 ms, at most 900 ms late\)/,
  );
  assert.match(md, /waited before the frontend read them/);
});

test('tailComposition: counts how the answers at or above a percentile were made', () => {
  const st = newStats(1000);
  // 1000 answers: 990 fast originals, then the 10 slowest: 4 originals, 3 reconstructions, 2 copies, 1 default
  for (let i = 0; i < 990; i++) {
    st.answers.ms.push(5 + (i % 7));
    st.answers.outcome.push(0);
  }
  const slow: [number, number][] = [
    [40, 0],
    [41, 1],
    [42, 2],
    [43, 0],
    [44, 1],
    [45, 2],
    [46, 0],
    [47, 1],
    [60, 0],
    [1000, 3],
  ];
  for (const [ms, o] of slow) {
    st.answers.ms.push(ms);
    st.answers.outcome.push(o);
  }
  const p99 = tailComposition(st, 99);
  assert.equal(p99.fromMs, 40);
  assert.deepEqual({ ...p99, fromMs: undefined }, { original: 4, reconstructed: 3, copy: 2, default: 1, fromMs: undefined });
  const p999 = tailComposition(st, 99.9);
  assert.equal(p999.fromMs, 1000);
  assert.equal(p999.default, 1);
  assert.equal(p999.original + p999.reconstructed + p999.copy, 0);
  assert.match(describeTail(p99, 'p99'), /at or above the p99 \(40\.0 ms\): 4 original, 3 reconstructed, 2 by a copy, 1 default/);
  st.h.destroy();
});

test('tailComposition: no answers, no tail', () => {
  const st = newStats(1000);
  assert.deepEqual(tailComposition(st, 99.9), { original: 0, reconstructed: 0, copy: 0, default: 0, fromMs: 0 });
  st.h.destroy();
});

test("serve.md shows each round's p99.9 and the frontends' health (event-loop delay, long collections, refused copies)", () => {
  const r = report(0);
  r.modes[0].rounds = [
    { answers: 1000, p50: 11, p99: 30, p999: 39.5, max: 45 },
    { answers: 1000, p50: 11, p99: 31, p999: 171, max: 309 },
  ];
  r.modes[0].frontend = { eventLoopLagMaxMs: 212, gcs: 340, gcsOver100ms: 2, gcSeconds: 0.75, copiesDenied: 17 };
  const md = serveMarkdown(r);
  assert.match(md, /Each round on its own, p99\.9 \(max\) in ms:\n- coded: 39\.5 \(45\.0\) \/ 171 \(309\)\./);
  assert.match(
    md,
    /- coded: frontends: worst event-loop delay 212 ms; 340 garbage collections \(2 over 100 ms, 0\.75 s in all\); 17 copies refused by the copy budget\./,
  );
  // a single round, or no health scraped: no such lines
  assert.doesNotMatch(serveMarkdown(report(0)), /Each round on its own|frontend processes over/);
});

test("slow-query lines tell the slowest query's requests, and a group padded with answered queries (no request of its own)", () => {
  const lines = slowQueryLines([
    {
      mode: 'coded',
      slowQueries: {
        count: 3,
        slowest: [
          {
            latencyMs: 497.26,
            outcome: 'original',
            byCopy: false,
            groupSize: 1,
            paddedWithAnswered: 1,
            copiesDeniedSoFar: 38,
            copyDenied: false,
            tasks: [
              {
                role: 'original',
                pool: 'base',
                instance: '10.0.0.5:1',
                createdMs: 0.02,
                startedMs: 370,
                finishedMs: 497.25,
                cancelled: false,
              },
              { role: 'parity', pool: 'parity:0', instance: null, createdMs: 11.56, startedMs: null, finishedMs: null, cancelled: true },
            ],
          },
        ],
      },
    },
    { mode: 'equal-resources', slowQueries: { count: 0, slowest: [] } },
  ]);
  assert.equal(lines.length, 3);
  assert.match(
    lines[1],
    /^- coded: 3 slow; the slowest 497 ms, original, group of 1 padded with 1 answered: original on 10\.0\.0\.5:1 0\.02 \/ 370 \/ 497; parity on \(not started\) 11\.6 \/ - \/ - \(cancelled\)$/,
  );
  assert.equal(lines[2], '- equal-resources: none');
  assert.deepEqual(slowQueryLines([{ mode: 'coded' }]), [], 'no slow-query log: no lines');
});

test('roundLatency: nearest rank, as the summary (the p99.9 of 1000 answers is the 999th), max the largest', () => {
  const ms = Array.from({ length: 1000 }, (_, i) => i + 1).reverse();
  assert.deepEqual(roundLatency(ms), { answers: 1000, p50: 500, p99: 990, p999: 999, max: 1000 });
  const none = roundLatency([]);
  assert.equal(none.answers, 0);
  assert.ok(Number.isNaN(none.p999));
});

test("metricSum: reads prom-client's lines by name and labels (gc histogram buckets, a gauge), ignoring longer names", () => {
  const text = [
    '# HELP nodejs_gc_duration_seconds Garbage collection duration by kind',
    'nodejs_gc_duration_seconds_bucket{le="0.01",kind="minor"} 8',
    'nodejs_gc_duration_seconds_bucket{le="0.1",kind="minor"} 10',
    'nodejs_gc_duration_seconds_bucket{le="1",kind="minor"} 10',
    'nodejs_gc_duration_seconds_bucket{le="0.1",kind="major"} 1',
    'nodejs_gc_duration_seconds_bucket{le="1",kind="major"} 3',
    'nodejs_gc_duration_seconds_sum{kind="minor"} 0.05',
    'nodejs_gc_duration_seconds_sum{kind="major"} 0.5',
    'nodejs_gc_duration_seconds_count{kind="minor"} 10',
    'nodejs_gc_duration_seconds_count{kind="major"} 3',
    'nodejs_eventloop_lag_max_seconds 0.212',
    'nodejs_eventloop_lag_max_seconds_extra 9',
  ].join('\n');
  assert.equal(metricSum(text, 'nodejs_gc_duration_seconds_count'), 13);
  assert.equal(metricSum(text, 'nodejs_gc_duration_seconds_bucket', ['le="0.1"']), 11);
  assert.equal(metricSum(text, 'nodejs_gc_duration_seconds_bucket', ['le="0.1"', 'kind="major"']), 1);
  assert.equal(metricSum(text, 'nodejs_gc_duration_seconds_sum'), 0.55);
  assert.equal(metricSum(text, 'nodejs_eventloop_lag_max_seconds'), 0.212);
});

test("timeCoding times the frontend's own codec on the model's input and output shapes, and the report names them", async () => {
  const c = await timeCoding('addition', 2, 1, [3, 8, 8], [10]);
  assert.deepEqual([c.input, c.output, c.code], [[3, 8, 8], [10], 'addition(k=2, r=1)']);
  assert.ok(Number.isFinite(c.encodeUs) && Number.isFinite(c.decodeUs) && c.totalUs === c.encodeUs + c.decodeUs);
  assert.match(
    describeCoding(c),
    /^Encode of one addition\(k=2, r=1\) group of 3x8x8 inputs: \S+ us; decode of its 10-value outputs: \S+ us/,
  );
  // reports written before the shapes were recorded still read
  assert.match(describeCoding({ code: 'addition(k=2, r=1)', encodeUs: 50, decodeUs: 40 }), /group of 1000-value inputs: 50\.0 us/);
});
