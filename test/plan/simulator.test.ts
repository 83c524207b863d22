import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { mkdtempSync, rmSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { simulate, type Scenario } from '../../src/plan/simulator.js';
import { plan, baseInstancesFor } from '../../src/plan/planner.js';
import { simulateFrontends } from '../../src/plan/frontend-shares.js';
import { parseServiceTime } from '../../src/plan/service-time.js';
import { packageRoot } from '../../src/util/package-root.js';

const base: Omit<Scenario, 'mode'> = {
  base: 1,
  parity: 0,
  rate: 10,
  queries: 2000,
  warmup: 100,
  seed: 1,
  service: { kind: 'dist', dist: { kind: 'const', ms: 2 }, label: 'const:2' },
  stragglers: { latency: { kind: 'none' }, slowProb: 0, slowMs: 0, failProb: 0 },
  sloMs: 1000,
  decodeDeadlineMs: 10,
  maxWaitMs: 5,
  parityDelayMs: 0,
  hedgeMs: null,
  fallback: true,
  concurrency: 1,
};

test('simulated serving without stragglers at light load answers (nearly) every query in exactly its service time', () => {
  const r = simulate({ ...base, mode: 'none', rate: 1 });
  assert.equal(r.latencyMs.p50, 2);
  assert.equal(r.latencyMs.p99, 2);
  // only the rare query arriving while another is served waits (at most one service time)
  assert.ok(r.latencyMs.max <= 4);
  assert.equal(r.measured, 2000);
  assert.equal(r.counts.original, 2100);
});

test('the simulator reproduces M/M/1 queueing: mean latency 1 / (mu - lambda) at 50% load', () => {
  const r = simulate({
    ...base,
    mode: 'none',
    rate: 250,
    queries: 200000,
    warmup: 5000,
    service: { kind: 'dist', dist: { kind: 'exp', mean: 2 }, label: 'exp:2' },
  });
  // mu = 500/s, lambda = 250/s: mean time in system 4 ms
  assert.ok(Math.abs(r.latencyMs.mean - 4) < 0.2, `mean ${r.latencyMs.mean}`);
  assert.ok(Math.abs(r.utilisation - 0.5) < 0.02, `utilisation ${r.utilisation}`);
});

test('simulations are deterministic for a seed', () => {
  const s: Scenario = {
    ...base,
    mode: 'coded',
    code: { family: 'addition', k: 2, r: 1 },
    base: 4,
    parity: 2,
    rate: 200,
    stragglers: { ...base.stragglers, slowProb: 0.05, slowMs: 50 },
  };
  assert.deepEqual(simulate(s), simulate(s));
});

test('coded serving with stalls: reconstructions bound the tail near the decode deadline, the fallback answers undecodable groups, and cost is counted', () => {
  const st = { ...base.stragglers, slowProb: 0.02, slowMs: 100 };
  const common = {
    ...base,
    base: 4,
    parity: 2,
    rate: 150,
    queries: 20000,
    stragglers: st,
    service: { kind: 'dist' as const, dist: { kind: 'exp' as const, mean: 1 }, label: 'exp:1' },
  };
  const er = simulate({ ...common, mode: 'equal-resources' });
  const coded = simulate({ ...common, mode: 'coded', code: { family: 'addition', k: 2, r: 1 } });
  assert.ok(er.latencyMs.p999 > 100, `equal-resources p99.9 ${er.latencyMs.p999}`);
  assert.ok(coded.latencyMs.p999 < 30, `coded p99.9 ${coded.latencyMs.p999}`);
  assert.ok(coded.counts.reconstructed > 0 && coded.counts.hedgedAnswers > 0);
  // each query once, plus a parity for every group not answered when it closed (partial groups
  // are padded with answered queries: no padding requests)
  assert.ok(coded.requestsPerQuery > 1.2 && coded.requestsPerQuery < 1.6, `requests per query ${coded.requestsPerQuery}`);
  assert.equal(er.requestsPerQuery, 1);
});

test('the planner recommends the cheapest configuration that meets the target, and none when nothing can', () => {
  const service = parseServiceTime('exp:1');
  const stragglers = { latency: { kind: 'none' as const }, slowProb: 0.02, slowMs: 100, failProb: 0 };
  assert.equal(baseInstancesFor(150, service, stragglers), 1);
  const input = {
    service,
    stragglers,
    rate: 150,
    base: 4,
    ks: [2],
    rs: [1],
    sloMs: 1000,
    decodeDeadlineMs: 10,
    hedgeMs: 10,
    maxWaitMs: 5,
    queries: 10000,
    seed: 1,
  };
  const p = plan({ ...input, target: { percentile: 'p999', ms: 50 } });
  assert.ok(p.recommended !== null);
  for (const r of p.rows) if (r.meetsTarget) assert.ok(r.result.instances >= p.recommended.result.instances);
  assert.equal(p.rows.find((r) => r.config.startsWith('no redundancy, '))!.meetsTarget, false);
  assert.equal(plan({ ...input, target: { percentile: 'p50', ms: 0.01 } }).recommended, null);
});

test('coded plan --json writes a report; bad options name the syntax', () => {
  const main = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
  const dir = mkdtempSync(join(tmpdir(), 'coded-plan-'));
  try {
    const r = spawnSync(
      process.execPath,
      [main, 'plan', '--rate', '100', '--base', '2', '--k', '2', '--queries', '2000', '--target', 'p99:30', '--out', dir, '--json'],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    const rep = JSON.parse(r.stdout) as { rows: { config: string }[]; recommended: string | null };
    assert.ok(rep.rows.length >= 5);
    assert.deepEqual(JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')).rows.length, rep.rows.length);
    const bad = spawnSync(process.execPath, [main, 'plan', '--target', 'p98:10'], { encoding: 'utf8' });
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /--target must look like p99\.9:50/);
    const svc = spawnSync(process.execPath, [main, 'plan', '--service', 'gauss:3'], { encoding: 'utf8' });
    assert.equal(svc.status, 2);
    assert.match(svc.stderr, /bad latency distribution 'gauss:3'/);
    // several frontends and a parity delay are simulated and recorded
    const split = spawnSync(
      process.execPath,
      [
        main,
        'plan',
        '--rate',
        '100',
        '--base',
        '4',
        '--k',
        '2',
        '--queries',
        '1000',
        '--frontends',
        '2',
        '--parity-delay',
        '2',
        '--dispatch',
        'fastest-free',
        '--out',
        dir,
        '--json',
      ],
      { encoding: 'utf8' },
    );
    assert.equal(split.status, 0, split.stderr);
    const sp = JSON.parse(split.stdout) as {
      plan: { frontends: number; parityDelayMs: number; dispatch: string };
      rows: { config: string; instances: number }[];
    };
    assert.deepEqual([sp.plan.frontends, sp.plan.parityDelayMs, sp.plan.dispatch], [2, 2, 'fastest-free']);
    assert.equal(sp.rows.find((r) => r.config.startsWith('coded addition(k=2, r=1) + fallback, 4 + 2'))?.instances, 6);
    assert.match(
      readFileSync(join(dir, 'plan.md'), 'utf8'),
      /parity after 2 ms; 2 frontends, each over its share of the instances; dispatch fastest-free;/,
    );
    const badDispatch = spawnSync(process.execPath, [main, 'plan', '--dispatch', 'random'], { encoding: 'utf8' });
    assert.equal(badDispatch.status, 2);
    assert.match(badDispatch.stderr, /--dispatch must be 'single-queue', 'round-robin' or 'fastest-free', not 'random'/);
    // k = 4 over 4 base instances has 1 parity instance: it cannot be dealt out to 2 frontends
    const some = spawnSync(
      process.execPath,
      [main, 'plan', '--rate', '100', '--base', '4', '--k', '2,4', '--queries', '500', '--frontends', '2', '--out', dir, '--json'],
      { encoding: 'utf8' },
    );
    assert.equal(some.status, 0, some.stderr);
    const sm = JSON.parse(some.stdout) as { rows: { config: string }[]; unsplittable: string[] };
    assert.ok(
      sm.unsplittable.some((c) => c.startsWith('coded addition(k=4, r=1)')),
      sm.unsplittable.join('; '),
    );
    assert.ok(sm.rows.some((r) => r.config.startsWith('coded addition(k=2, r=1)')));
    assert.ok(!sm.rows.some((r) => r.config.startsWith('coded addition(k=4')));
    assert.match(
      readFileSync(join(dir, 'plan.md'), 'utf8'),
      /Not simulated \(a pool has fewer instances than the 2 frontends\): coded addition\(k=4/,
    );
    const zero = spawnSync(process.execPath, [main, 'plan', '--frontends', '0'], { encoding: 'utf8' });
    assert.equal(zero.status, 2);
    assert.match(zero.stderr, /--frontends/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sparse arrivals: a lone query answered before its group closes costs no padding and no parity; one that stalls is still bounded, whatever pads it', () => {
  // 4 + 2 instances at 50 queries/s: a group of 2 fills within maxWaitMs = 5 ms only ~22% of the
  // time, and a 2 ms original is back before its lone group closes
  const s: Scenario = {
    ...base,
    mode: 'coded',
    code: { family: 'addition', k: 2, r: 1 },
    base: 4,
    parity: 2,
    rate: 50,
    queries: 20000,
    stragglers: { ...base.stragglers, slowProb: 0.02, slowMs: 100 },
  };
  for (const padding of ['repeat', 'answered'] as const) {
    const r = simulate({ ...s, singletonGroups: 'pad', padding });
    assert.ok(r.requestsPerQuery < 1.3, `pad, ${padding}: ${r.requestsPerQuery} requests per query`);
    // a stalled lone query: a padding copy answers it (repeat), or its parity decodes it at the deadline (answered)
    assert.ok(r.latencyMs.p99 <= 10 + 2 + 1, `pad, ${padding}: p99 ${r.latencyMs.p99}`);
  }
  const copy = simulate({ ...s, singletonGroups: 'copy' });
  assert.ok(copy.requestsPerQuery < 1.3, `copy: ${copy.requestsPerQuery} requests per query`);
  // a stalled lone query is copied after the deadline: done by deadline + service time (+ the copy budget's rare denials)
  assert.ok(copy.latencyMs.p99 <= 10 + 2 + 1, `copy p99 ${copy.latencyMs.p99}`);
});

test("several frontends: the merged prediction counts every frontend's queries; one frontend is the plain simulation", () => {
  const s: Scenario = {
    ...base,
    mode: 'coded',
    code: { family: 'addition', k: 2, r: 1 },
    base: 6,
    parity: 3,
    rate: 300,
    queries: 3000,
    seed: 3,
    service: parseServiceTime('exp:2'),
    stragglers: { latency: { kind: 'none' }, slowProb: 0.02, slowMs: 50, failProb: 0 },
    inputShape: [4],
  };
  assert.deepEqual(simulateFrontends(s, 1), simulate(s));
  const three = simulateFrontends(s, 3);
  assert.equal(three.measured, 3 * 3000);
  assert.equal(three.instances, 9);
  const answered = three.counts.original + three.counts.reconstructed + three.counts.default + three.counts.error;
  assert.equal(answered, 3 * 3100, 'every query of every frontend, warm-up included, is answered once');
  assert.ok(three.latencyMs.p50 <= three.latencyMs.p99 && three.latencyMs.p99 <= three.latencyMs.p999);
});
