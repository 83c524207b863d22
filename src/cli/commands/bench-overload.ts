// `coded bench overload`: its options (the benchmark runs in src/bench/overload.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { parse, intOption, numberOption, choiceOption, UsageError } from '../args.js';
import { runOverload, overloadMarkdown, type OverloadSpec } from '../../bench/overload.js';

export const usage = `coded bench overload [options]

Overload: B base (+ P parity) instance processes that each take a fixed service time, one
frontend with default settings, and open-loop Poisson load in three phases: --before S seconds
at --base-load x capacity, --seconds S at --factor x capacity, --after S at --base-load x
capacity. Capacity = request slots / the instances' measured service time (coded: the base and
parity pools' capacity, whichever is smaller). Reports, per phase, the queries refused (429 /
RESOURCE_EXHAUSTED) and how fast, the answered queries' latency (from the intended send time)
and defaults, and the lost ones (any other error or no answer).
  --mode M           coded (default), equal-resources, replication or none
  --base B           base instances (default 4); --parity P parity instances (default 2, coded;
                     the uncoded modes use B + P replicas, none uses B)
  --latency DIST     every instance's service time (default const:100; as coded serve instance)
  --model M          instance model (default noop:1000)
  --factor F         overload as a multiple of capacity (default 10)
  --seconds S        overload duration (default 20); --before S (default 5), --after S (default 10)
  --base-load F      load before and after, as a fraction of capacity (default 0.5)
  --slo MS           the frontend's sloMs (default: the frontend's default, 1000)
  --deadline MS      coded: the frontend's decodeDeadlineMs (default: the frontend's, 2% of the
                     SLO; with a service time above it every query looks late and the fallback
                     sends a second copy of each, which halves the capacity)
  --admission on|off the frontend's admission control (default on: the frontend's default)
  --seed S           schedule seed (default 1)
  --out DIR          output directory (default bench-results/overload)
  --json             print the JSON report on stdout`;

export async function overloadBenchMain(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      mode: { type: 'string' },
      base: { type: 'string' },
      parity: { type: 'string' },
      latency: { type: 'string' },
      model: { type: 'string' },
      factor: { type: 'string' },
      seconds: { type: 'string' },
      before: { type: 'string' },
      after: { type: 'string' },
      'base-load': { type: 'string' },
      slo: { type: 'string' },
      deadline: { type: 'string' },
      admission: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const pos = (v: string | undefined, name: string, d: number) => {
    const n = numberOption(v, name, d);
    if (!(n > 0)) throw new UsageError(`--${name} must be > 0, got '${v}'`);
    return n;
  };
  const admission = values.admission ?? 'on';
  if (admission !== 'on' && admission !== 'off') throw new UsageError(`--admission must be on or off, got '${admission}'`);
  const mode = choiceOption(values.mode, 'mode', ['coded', 'equal-resources', 'replication', 'none'] as const, 'coded');
  const spec: OverloadSpec = {
    mode,
    base: intOption(values.base, 'base', 4),
    parity: intOption(values.parity, 'parity', 2),
    latency: values.latency ?? 'const:100',
    model: values.model ?? 'noop:1000',
    factor: pos(values.factor, 'factor', 10),
    seconds: pos(values.seconds, 'seconds', 20),
    before: pos(values.before, 'before', 5),
    after: pos(values.after, 'after', 10),
    baseLoad: pos(values['base-load'], 'base-load', 0.5),
    ...(values.slo !== undefined ? { sloMs: pos(values.slo, 'slo', 1000) } : {}),
    ...(values.deadline !== undefined ? { decodeDeadlineMs: pos(values.deadline, 'deadline', 20) } : {}),
    admission: admission === 'on',
    seed: intOption(values.seed, 'seed', 1, { min: 0 }),
    log: (s) => process.stderr.write(s + '\n'),
  };
  const { parseLatency } = await import('../../serve/faults.js');
  try {
    parseLatency(spec.latency);
  } catch (e) {
    throw new UsageError(`--latency: ${(e as Error).message}`);
  }
  const r = await runOverload(spec);
  const outDir = values.out ?? 'bench-results/overload';
  mkdirSync(outDir, { recursive: true });
  const report = {
    benchmark: 'overload',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?' },
    settings: { ...spec, log: undefined },
    ...r,
  };
  writeFileSync(join(outDir, 'overload.json'), JSON.stringify(report, null, 2));
  const md = overloadMarkdown(r, spec);
  writeFileSync(join(outDir, 'overload.md'), md);
  spec.log(`wrote ${join(outDir, 'overload.json')}, overload.md`);
  if (values.json) console.log(JSON.stringify(report));
  else console.log(md);
}
