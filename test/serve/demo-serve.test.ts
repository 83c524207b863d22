// `coded demo serve` end to end with real processes on loopback (short: 100 queries per frontend).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { packageRoot } from '../../src/util/package-root.js';
import { ensureDataset } from '../../src/data/registry.js';

async function haveFashionMnist(): Promise<boolean> {
  try {
    await ensureDataset('fashion-mnist', { download: false });
    return true;
  } catch {
    return false;
  }
}

test("coded demo serve --json: live accuracy, latency with the planner's prediction, and cost for coded vs equal resources (plain and hedged)", {
  timeout: 900_000,
}, async (t) => {
  if (!(await haveFashionMnist())) return t.skip('Fashion-MNIST is not available locally');
  const main = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
  // a generous SLO: this checks the pipeline and the report, not latency (on a busy machine the
  // default 1 s SLO would answer some queries with the default, which is correct but not tested here)
  const r = spawnSync(
    process.execPath,
    [main, 'demo', 'serve', '--queries', '100', '--warmup', '20', '--rounds', '2', '--rate', '100', '--slo', '60000', '--json'],
    { encoding: 'utf8' },
  );
  assert.equal(r.status, 0, r.stderr);
  const rep = JSON.parse(r.stdout.trim().split('\n').pop()!) as {
    settings: { code: { family: string; k: number; r: number }; baseInstances: number; parityInstances: number };
    stragglers: string;
    modes: {
      mode: string;
      instances: number;
      queries: number;
      errors: number;
      rejected: number;
      requestsPerQuery: number;
      predictedMs: { p50: number } | null;
      accuracy: { overall: number; originals: { count: number }; reconstructed: { count: number }; defaults: { count: number } };
      latencyMs: { p50: number; p99: number; p999: number };
    }[];
    comparison: Record<string, { p50: number; p999: number }>;
  };
  assert.deepEqual(rep.settings.code, { family: 'concat', k: 2, r: 1 });
  assert.match(rep.stragglers, /independent stalls: 2% of requests \+100 ms/);
  assert.deepEqual(
    rep.modes.map((m) => m.mode),
    ['coded', 'equal-resources', 'equal-resources-hedged'],
  );
  for (const m of rep.modes) {
    assert.equal(m.instances, 6, `${m.mode}: every mode runs on 6 instances`);
    assert.equal(m.queries, 100);
    assert.equal(
      m.accuracy.originals.count + m.accuracy.reconstructed.count + m.accuracy.defaults.count + m.errors + m.rejected,
      100,
      `${m.mode}: every query answered once`,
    );
    assert.equal(m.accuracy.defaults.count, 0, `${m.mode}: no query waited 60 s`);
    assert.ok(m.accuracy.overall > 0.6, `${m.mode} accuracy ${m.accuracy.overall}`);
    assert.ok(m.latencyMs.p50 > 0 && m.latencyMs.p50 <= m.latencyMs.p99 && m.latencyMs.p99 <= m.latencyMs.p999);
    assert.ok(m.requestsPerQuery >= 1, `${m.mode}: ${m.requestsPerQuery} requests per query`);
    assert.ok(m.predictedMs !== null && m.predictedMs.p50 > 0);
  }
  assert.equal(rep.modes[1].accuracy.reconstructed.count, 0);
  assert.deepEqual(Object.keys(rep.comparison), ['equal-resources', 'equal-resources-hedged']);
});
