// `coded bench stall`: its options (the benchmark runs in src/bench/stall.ts).
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpus } from 'node:os';
import { parse, intOption, numberOption, UsageError } from '../args.js';
import { runStall, stallMarkdown } from '../../bench/stall.js';

export const usage = `coded bench stall [options]

One frontend (defaults, mode none) over noop instances serves normal gRPC queries at --rate
while bad requests are sent to it one at a time. Reports, for each, the normal queries' worst
latency in the --window after it against the baseline, and the bad request's answer; slow
senders are held open until the frontend cuts them off (its requestTimeoutMs, default 30 s).
  --rate QPS       normal queries per second (default 50)
  --window MS      measurement window after each bad request (default 2000)
  --slow N         slow senders (REST and gRPC each; default 20)
  --dim D          the noop model's input and output size (default 1000)
  --out DIR        output directory (default bench-results/stall)
  --json           print the JSON report on stdout`;

export async function stallBenchMain(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      rate: { type: 'string' },
      window: { type: 'string' },
      slow: { type: 'string' },
      dim: { type: 'string' },
      out: { type: 'string' },
      json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const rate = numberOption(values.rate, 'rate', 50);
  if (!(rate > 0 && rate <= 2000)) throw new UsageError(`--rate must be in (0, 2000], got '${values.rate}'`);
  const windowMs = numberOption(values.window, 'window', 2000);
  if (!(windowMs >= 100)) throw new UsageError(`--window must be >= 100 ms, got '${values.window}'`);
  const log = (s: string) => process.stderr.write(s + '\n');
  const r = await runStall({
    rate,
    windowMs,
    slow: intOption(values.slow, 'slow', 20, { min: 0 }),
    dim: intOption(values.dim, 'dim', 1000),
    log,
  });
  const outDir = values.out ?? 'bench-results/stall';
  mkdirSync(outDir, { recursive: true });
  const report = {
    benchmark: 'stall',
    date: new Date().toISOString(),
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?' },
    settings: { rate, windowMs },
    ...r,
  };
  writeFileSync(join(outDir, 'stall.json'), JSON.stringify(report, null, 2));
  const md = stallMarkdown(r, rate);
  writeFileSync(join(outDir, 'stall.md'), md);
  log(`wrote ${join(outDir, 'stall.json')}, stall.md`);
  if (values.json) console.log(JSON.stringify(report));
  else console.log(md);
}
