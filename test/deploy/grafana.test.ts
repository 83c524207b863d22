// The Grafana dashboard (deploy/grafana): every metric its queries use is one the frontend
// exports (histograms through their _bucket series), with the labels it filters and groups by;
// and every coded_* metric the frontend exports is on the dashboard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { packageRoot } from '../../src/util/package-root.js';
import { Frontend } from '../../src/serve/frontend.js';
import { validateFrontendConfig } from '../../src/serve/config.js';

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}

/** label names added by the scrape (Kubernetes service discovery relabelling) or by PromQL itself */
const SCRAPE_LABELS = new Set(['namespace', 'le']);

test('grafana dashboard: every coded_* metric a query uses is exported by the frontend (histograms via _bucket) with the labels used; every exported coded_* metric is shown', () => {
  const dash = JSON.parse(readFileSync(join(packageRoot(), 'deploy', 'grafana', 'coded-frontend-dashboard.json'), 'utf8')) as {
    panels: Panel[];
    templating: { list: { definition?: string }[] };
  };
  // a coded frontend (its constructor registers every metric; nothing listens)
  const fe = new Frontend({
    config: validateFrontendConfig({
      name: 'x',
      mode: 'coded',
      code: { family: 'addition', k: 2, r: 1 },
      grpcPort: 0,
      pools: { base: { model: 'm', instances: ['127.0.0.1:1'] }, parity: [{ model: 'p', instances: ['127.0.0.1:2'] }] },
    }),
    logger: pino({ level: 'silent' }),
  });
  const exported = new Map<string, { type: string; labels: string[] }>();
  for (const m of fe.registry.getMetricsAsArray()) {
    const o = m as unknown as { name: string; labelNames?: string[]; type?: string; constructor: { name: string } };
    exported.set(o.name, { type: o.constructor.name, labels: o.labelNames ?? [] });
  }
  assert.ok(exported.size >= 15, `only ${exported.size} metrics`);
  const exprs = [
    ...dash.panels.flatMap((p) => (p.targets ?? []).map((t) => ({ panel: p.title, expr: t.expr }))),
    ...dash.templating.list.filter((v) => v.definition !== undefined).map((v) => ({ panel: 'variable', expr: v.definition! })),
  ];
  assert.ok(exprs.length >= 15);
  const used = new Set<string>();
  for (const { panel, expr } of exprs) {
    const names = [...expr.matchAll(/\b(coded_[a-z0-9_]+)/g)].map((m) => m[1]);
    assert.ok(names.length > 0, `${panel}: no coded_* metric in ${expr}`);
    const labelsHere = new Set<string>(SCRAPE_LABELS);
    for (const n of names) {
      const base = n.replace(/_(bucket|sum|count)$/, '');
      const m = exported.get(n) ?? exported.get(base);
      assert.ok(m !== undefined, `${panel}: ${n} is not exported by the frontend`);
      if (exported.get(n) === undefined)
        assert.equal(m.type, 'Histogram', `${panel}: ${n}: only histograms have _bucket/_sum/_count series`);
      if (n.endsWith('_bucket')) assert.equal(m.type, 'Histogram', `${panel}: ${n}`);
      used.add(exported.has(n) ? n : base);
      for (const l of m.labels) labelsHere.add(l);
    }
    // labels in selectors {label="..."} and in by (...) must exist on the metrics of this expression
    const selectorLabels = [...expr.matchAll(/\{([^}]*)\}/g)].flatMap((m) =>
      [...m[1].matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!=|!~|=)/g)].map((x) => x[1]),
    );
    const byLabels = [...expr.matchAll(/\bby\s*\(([^)]*)\)/g)].flatMap((m) =>
      m[1]
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x !== ''),
    );
    for (const l of [...selectorLabels, ...byLabels])
      assert.ok(labelsHere.has(l), `${panel}: label '${l}' is not a label of ${names.join(', ')}`);
  }
  // nothing exported is left off the dashboard
  const codedExported = [...exported.keys()].filter((n) => n.startsWith('coded_'));
  assert.deepEqual(
    codedExported.filter((n) => !used.has(n)),
    [],
    'coded_* metrics not on the dashboard',
  );
  // every panel has a unique id and a grid position
  const ids = dash.panels.map((p) => (p as unknown as { id: number }).id);
  assert.equal(new Set(ids).size, ids.length);
});
