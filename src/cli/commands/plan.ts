// `coded plan`: predict latency percentiles and cost of serving configurations with the
// discrete-event simulator (src/plan), recommend the cheapest that meets a target, and
// extrapolate to large deployments.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse, intOption, numberOption, UsageError } from '../args.js';
import { Progress } from '../progress.js';
import { dispatchOption, paddingOption } from '../serving-options.js';

export const usage = `coded plan [options]

Predicts p50 / p99 / p99.9 latency and cost (instances, instance requests per query) of serving
a model with no redundancy, equal resources (with and without hedged requests), replication
and coded(k, r) with and without the fallback, by simulating the frontend's own serving policy
on a virtual clock; recommends the cheapest configuration that meets --target.

  --service S        service time of one request on one instance (ms): const:MS, exp:MEAN,
                     uniform:LO:HI, lognormal:MU:SIGMA, or a \`coded bench serve\` report
                     (serve.json: its measured serviceTimesMs) or a file of milliseconds
                     (default exp:1)
  --rate QPS         arrival rate, Poisson (default 300)
  --base B           instances that carry the load without redundancy (default: the fewest
                     that are busy at most 50% of the time)
  --slow-prob P      independent stalls: per-request probability (default 0.02)
  --slow-ms MS       stall length (default 100)
  --slow-periods S   time-correlated slow periods ON_MS:OFF_MS:FACTOR[:ADD_MS]
  --latency-trace F  replay a latency trace (ms per request)
  --k LIST           coding group sizes (default 2,3,4); --r LIST parity queries (default 1)
  --deadline MS      decode deadline (default 10); --hedge MS hedging delay (default: the deadline)
  --slo MS           SLO (default 1000); --max-wait MS partial-group wait (default 5)
  --parity-delay MS  coded: send a group's parity queries MS after it closed, and none if its
                     originals are all back by then (default 0: at once)
  --padding answered|repeat  coded: a partial group is padded with queries already answered
                     (no request; default) or with copies of its own queries (repeat)
  --dispatch D       how a frontend's pools hand tasks to instances: single-queue (the first free
                     instance; default), round-robin, or fastest-free (the free instance that
                     has been fastest lately)
  --frontends F      frontend processes, each over every F-th instance of every pool and every
                     F-th query, as \`coded bench serve --frontends\` runs them (default 1); shares
                     can be uneven (6 parity over 4 frontends: 2, 2, 1, 1), each is simulated
                     (--scale extrapolates with one frontend)
  --target P:MS      the latency target, e.g. p99.9:50 (percentiles p50, p99, p99.9)
  --queries N        simulated queries per configuration (default 50000)
  --scale LIST       also simulate every mode at these multiples of the instances and the rate
                     (the same load per instance), e.g. 1,10,80 (default: none)
  --seed S           (default 1)
  --out DIR          write plan.json, plan.md and, with --scale, scale.svg/png (default plan-results)
  --json             print the JSON report`;

function list(v: string | undefined, name: string, fallback: number[]): number[] {
  if (v === undefined) return fallback;
  const xs = v.split(',').map(Number);
  if (xs.length === 0 || !xs.every((x) => Number.isInteger(x) && x >= 1))
    throw new UsageError(`--${name} must be a comma list of positive integers, got '${v}'`);
  return xs;
}

/** A legend-sized name of a configuration kind. */
function shortLabel(s: {
  mode: string;
  hedgeMs: number | null;
  fallback: boolean;
  singletonGroups?: 'pad' | 'copy';
  code?: { k: number; r: number };
}): string {
  if (s.mode === 'coded')
    return `coded k=${s.code!.k} r=${s.code!.r}${s.fallback ? ' + fallback' : ''}${s.singletonGroups === 'copy' ? ' (lone copied)' : ''}`;
  if (s.mode === 'replication') return 'replication (2 copies)';
  return `${s.mode === 'none' ? 'no redundancy' : 'equal resources'}${s.hedgeMs !== null ? ' + hedging' : ''}`;
}

function parseTarget(v: string | undefined): { percentile: 'p50' | 'p99' | 'p999'; ms: number } | null {
  if (v === undefined) return null;
  const m = /^(p50|p99|p99\.9):([0-9.]+)$/.exec(v);
  if (m === null || !(Number(m[2]) > 0))
    throw new UsageError(`--target must look like p99.9:50 (p50, p99 or p99.9, then milliseconds), got '${v}'`);
  return { percentile: m[1] === 'p99.9' ? 'p999' : (m[1] as 'p50' | 'p99'), ms: Number(m[2]) };
}

export async function planCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      service: { type: 'string' },
      rate: { type: 'string' },
      base: { type: 'string' },
      'slow-prob': { type: 'string' },
      'slow-ms': { type: 'string' },
      'slow-periods': { type: 'string' },
      'latency-trace': { type: 'string' },
      k: { type: 'string' },
      r: { type: 'string' },
      deadline: { type: 'string' },
      hedge: { type: 'string' },
      slo: { type: 'string' },
      'max-wait': { type: 'string' },
      'parity-delay': { type: 'string' },
      padding: { type: 'string' },
      frontends: { type: 'string' },
      dispatch: { type: 'string' },
      target: { type: 'string' },
      queries: { type: 'string' },
      scale: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const { parseServiceTime } = await import('../../plan/service-time.js');
  const { parseSlowPeriods, readLatencyTrace } = await import('../../serve/faults.js');
  const { plan, scaled } = await import('../../plan/planner.js');
  const { simulate } = await import('../../plan/simulator.js');
  let service;
  let slowPeriods;
  let trace;
  try {
    service = parseServiceTime(values.service ?? 'exp:1');
    if (values['slow-periods'] !== undefined) slowPeriods = parseSlowPeriods(values['slow-periods']);
    if (values['latency-trace'] !== undefined) trace = readLatencyTrace(values['latency-trace']);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const rate = numberOption(values.rate, 'rate', 300);
  if (!(rate > 0)) throw new UsageError('--rate must be > 0');
  const slowProb = numberOption(values['slow-prob'], 'slow-prob', 0.02);
  if (!(slowProb >= 0 && slowProb <= 1)) throw new UsageError('--slow-prob must be in [0, 1]');
  const deadline = numberOption(values.deadline, 'deadline', 10);
  const parityDelayMs = numberOption(values['parity-delay'], 'parity-delay', 0);
  if (!(parityDelayMs >= 0)) throw new UsageError(`--parity-delay must be >= 0 ms, got ${values['parity-delay']}`);
  const input = {
    service,
    rate,
    ...(values.base !== undefined ? { base: intOption(values.base, 'base', 1) } : {}),
    stragglers: {
      latency: { kind: 'none' as const },
      slowProb,
      slowMs: numberOption(values['slow-ms'], 'slow-ms', 100),
      failProb: 0,
      ...(slowPeriods ? { slowPeriods } : {}),
      ...(trace ? { trace } : {}),
    },
    ks: list(values.k, 'k', [2, 3, 4]),
    rs: list(values.r, 'r', [1]),
    sloMs: numberOption(values.slo, 'slo', 1000),
    decodeDeadlineMs: deadline,
    hedgeMs: numberOption(values.hedge, 'hedge', deadline),
    maxWaitMs: numberOption(values['max-wait'], 'max-wait', 5),
    parityDelayMs,
    queries: intOption(values.queries, 'queries', 50000),
    seed: intOption(values.seed, 'seed', 1, { min: 0 }),
    padding: values.padding !== undefined ? paddingOption(values.padding) : ('answered' as const),
    frontends: intOption(values.frontends, 'frontends', 1, { min: 1 }),
    ...(values.dispatch !== undefined ? { dispatch: dispatchOption(values.dispatch) } : {}),
    target: parseTarget(values.target),
  };
  const json = values.json ?? false;
  const { plannedCandidates } = await import('../../plan/planner.js');
  const bar = new Progress('simulating', plannedCandidates(input).simulated.length, { enabled: !json, unit: 'configurations' });
  const { rows, recommended, unsplittable } = plan(input, () => bar.tick());
  bar.finish();
  const fmt = (x: number) => (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
  const target = input.target;
  const md = [
    `# coded plan`,
    '',
    `Service time ${service.label}; Poisson ${rate} queries/s; stragglers: ${slowProb > 0 ? `${100 * slowProb}% of requests +${input.stragglers.slowMs} ms` : 'no independent stalls'}${slowPeriods ? `, slow periods ${values['slow-periods']}` : ''}${trace ? `, trace ${values['latency-trace']}` : ''}; decode deadline ${deadline} ms;${input.parityDelayMs > 0 ? ` parity after ${input.parityDelayMs} ms;` : ''}${input.frontends > 1 ? ` ${input.frontends} frontends, each over its share of the instances;` : ''}${input.dispatch !== undefined ? ` dispatch ${input.dispatch};` : ''} coded partial groups padded with ${input.padding === 'repeat' ? 'copies of their own queries' : 'answered queries'}; ${input.queries} simulated queries per configuration.`,
    '',
    `| configuration | instances | requests per query | p50 ms | p99 ms | p99.9 ms |${target ? ` meets ${target.percentile === 'p999' ? 'p99.9' : target.percentile} <= ${target.ms} ms |` : ''}`,
    `|---|---|---|---|---|---|${target ? '---|' : ''}`,
    ...rows.map(
      (r) =>
        `| ${r.config} | ${r.result.instances} | ${r.result.requestsPerQuery.toFixed(2)} | ${fmt(r.result.latencyMs.p50)} | ${fmt(r.result.latencyMs.p99)} | ${fmt(r.result.latencyMs.p999)} |${target ? ` ${r.meetsTarget ? 'yes' : 'no'} |` : ''}`,
    ),
    '',
    ...(unsplittable.length > 0
      ? [`Not simulated (a pool has fewer instances than the ${input.frontends} frontends): ${unsplittable.join('; ')}.`, '']
      : []),
    target === null
      ? 'No --target given: no recommendation.'
      : recommended === null
        ? `No configuration meets the target; add instances (--base) or relax it.`
        : `Recommended: **${recommended.config}** (${recommended.result.instances} instances, ${recommended.result.requestsPerQuery.toFixed(2)} requests per query).`,
  ];
  const report: Record<string, unknown> = {
    plan: { ...input, service: service.label, stragglers: input.stragglers },
    rows: rows.map((r) => ({
      config: r.config,
      instances: r.result.instances,
      requestsPerQuery: r.result.requestsPerQuery,
      latencyMs: r.result.latencyMs,
      meetsTarget: r.meetsTarget,
      counts: r.result.counts,
    })),
    recommended: recommended?.config ?? null,
    unsplittable,
  };
  const outDir = values.out ?? 'plan-results';
  mkdirSync(outDir, { recursive: true });
  if (values.scale !== undefined) {
    const factors = list(values.scale, 'scale', [1]);
    // the families worth extrapolating: one row of each kind at its smallest setting
    // (equal resources at the first coded configuration's instance count)
    const firstCodedParity = rows.find((q) => q.scenario.mode === 'coded')?.scenario.parity;
    const eligible = rows.filter((r) => r.scenario.mode !== 'equal-resources' || r.scenario.parity === firstCodedParity);
    const kinds = eligible.filter(
      (r, i) =>
        eligible.findIndex(
          (q) =>
            q.scenario.mode === r.scenario.mode &&
            q.scenario.hedgeMs === r.scenario.hedgeMs &&
            q.scenario.fallback === r.scenario.fallback &&
            q.scenario.singletonGroups === r.scenario.singletonGroups &&
            (q.scenario.code?.k ?? 0) === (r.scenario.code?.k ?? 0),
        ) === i,
    );
    const sbar = new Progress('extrapolating', kinds.length * factors.length, { enabled: !json, unit: 'simulations' });
    const points: { config: string; instances: number; p99: number; p999: number; requestsPerQuery: number }[] = [];
    for (const r of kinds) {
      for (const f of factors) {
        const res = simulate(scaled(r.scenario, f));
        points.push({
          config: shortLabel(r.scenario),
          instances: res.instances,
          p99: res.latencyMs.p99,
          p999: res.latencyMs.p999,
          requestsPerQuery: res.requestsPerQuery,
        });
        sbar.tick();
      }
    }
    sbar.finish();
    report.scale = points;
    md.push(
      '',
      `## The same configurations at ${factors.join(', ')} times the instances and the rate`,
      '',
      '| configuration | instances | p99 ms | p99.9 ms | requests per query |',
      '|---|---|---|---|---|',
      ...points.map((p) => `| ${p.config} | ${p.instances} | ${fmt(p.p99)} | ${fmt(p.p999)} | ${p.requestsPerQuery.toFixed(2)} |`),
    );
    const { render } = await import('../../bench/serve.js');
    await render(
      {
        $schema: 'https://vega.github.io/schema/vega-lite/v5.json',
        title: 'Predicted p99.9 by deployment size (same load per instance)',
        width: 460,
        height: 300,
        data: { values: points },
        mark: { type: 'line', point: true },
        encoding: {
          x: { field: 'instances', type: 'quantitative', scale: { type: 'log' }, title: 'instances' },
          y: { field: 'p999', type: 'quantitative', scale: { type: 'log' }, title: 'p99.9 latency (ms)' },
          color: { field: 'config', type: 'nominal', scale: { scheme: 'tableau20' }, legend: { labelLimit: 400 } },
        },
      },
      join(outDir, 'scale.svg'),
      join(outDir, 'scale.png'),
    );
    md.push('', `Plot: ${join(outDir, 'scale.png')}`);
  }
  writeFileSync(join(outDir, 'plan.json'), JSON.stringify(report, null, 2));
  writeFileSync(join(outDir, 'plan.md'), md.join('\n') + '\n');
  if (json) console.log(JSON.stringify(report));
  else console.log(md.join('\n'));
}
