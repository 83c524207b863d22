// `coded demo serve`: the coded-serving demo (issue 7, section 4). On the embedded default
// (Fashion-MNIST, the shipped Base-MLP and its concat k = 2 parity model) it starts model
// instances as local processes on free loopback ports (2 base + 1 parity for the coded
// frontend; the same 2 base + a third base instance for the equal-resources frontend, so both
// use 3 instances), every instance delaying a fraction of its requests (stragglers), and
// replays test images under Poisson load through both frontends in interleaved rounds. It
// reports accuracy measured live against the true labels (originals, reconstructions,
// overall) and p50/p99/p99.9 latency of coded vs equal-resources. The load generator, the
// frontend processes and the statistics are those of `coded bench serve`.
import { mkdtempSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir, cpus } from 'node:os';
import * as hdr from 'hdr-histogram-js';
import { parse, intOption, numberOption, UsageError } from '../args.js';
import { startInstanceProcess, type ChildInstance } from '../../serve/processes.js';
import { V2GrpcClient, type ClientResult } from '../../serve/client.js';
import { packageRoot } from '../../serve/v2.js';
import type { FrontendConfig } from '../../serve/config.js';
import { startFrontendProcess, poissonSchedule, replay, summarize, fmt, type Stats } from '../../bench/serve.js';

export const usage = `coded demo serve [options]

Coded serving end to end on Fashion-MNIST with the shipped models: 2 base instances
(models/fashion-mnist-base-mlp.safetensors) + 1 parity instance (parity model 0 of
models/fashion-mnist-base-mlp-concat-k2.safetensors) behind a coded frontend (the
checkpoint's code), vs an equal-resources frontend over 3 base instances. Every instance
delays a fraction of its requests (stragglers). Test images are replayed under open-loop
Poisson load through both frontends (interleaved rounds); prints live accuracy against the
true labels (originals, reconstructions, overall) and p50/p99/p99.9 latency of each.
All processes run on loopback and are stopped on exit, error or Ctrl-C.

Options:
  --queries N      measured queries per frontend (default 2000)
  --rate QPS       mean Poisson arrival rate (default 100)
  --slow-prob P    per-request straggler probability on every instance (default 0.02)
  --slow-ms MS     straggler delay (default 100)
  --deadline MS    decode deadline: an original later than this may be reconstructed (default 10)
  --parity-delay MS  hedged parity: a group's parity query goes out MS ms after the group
                   closed, and only if an original is still missing (default: at once, as ParM)
  --rounds R       interleaved rounds of both frontends (default 4)
  --warmup W       unmeasured queries per frontend first (default 100)
  --seed S         schedule and fault seeds (default 1)
  --data-dir DIR   where datasets live (default $CODED_DATA or ~/.cache/coded)
  --json           print one JSON object instead of text
  -h, --help`;

interface Tally {
  queries: number;
  correct: number;
  originals: number;
  originalsCorrect: number;
  reconstructed: number;
  reconstructedCorrect: number;
  defaults: number;
  defaultsCorrect: number;
}

const newTally = (): Tally => ({ queries: 0, correct: 0, originals: 0, originalsCorrect: 0, reconstructed: 0, reconstructedCorrect: 0, defaults: 0, defaultsCorrect: 0 });

function argmax(a: Float32Array): number {
  let b = 0;
  for (let i = 1; i < a.length; i++) if (a[i] > a[b]) b = i;
  return b;
}

const newStats = (): Stats => ({ h: hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 }), errors: 0, rejected: 0, reconstructed: 0, defaults: 0, measured: 0, spanMs: 0 });

export async function demoServe(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    queries: { type: 'string' }, rate: { type: 'string' }, 'slow-prob': { type: 'string' }, 'slow-ms': { type: 'string' }, deadline: { type: 'string' }, 'parity-delay': { type: 'string' },
    rounds: { type: 'string' }, warmup: { type: 'string' }, seed: { type: 'string' }, 'data-dir': { type: 'string' }, json: { type: 'boolean' },
  }, usage);
  if (values.help) return void console.log(usage);
  const N = intOption(values.queries, 'queries', 2000);
  const rate = numberOption(values.rate, 'rate', 100);
  const slowProb = numberOption(values['slow-prob'], 'slow-prob', 0.02);
  const slowMs = numberOption(values['slow-ms'], 'slow-ms', 100);
  const deadline = numberOption(values.deadline, 'deadline', 10);
  const parityDelay = values['parity-delay'] === undefined ? undefined : numberOption(values['parity-delay'], 'parity-delay', 0);
  if (parityDelay !== undefined && !(parityDelay >= 0)) throw new UsageError('--parity-delay must be >= 0 (milliseconds)');
  const rounds = intOption(values.rounds, 'rounds', 4);
  const warmup = intOption(values.warmup, 'warmup', 100, { min: 0 });
  const seed = intOption(values.seed, 'seed', 1, { min: 0 });
  if (!(rate > 0)) throw new UsageError('--rate must be > 0');
  if (!(slowProb >= 0 && slowProb <= 1)) throw new UsageError('--slow-prob must be in [0, 1]');
  if (!(slowMs >= 0) || !(deadline >= 0)) throw new UsageError('--slow-ms and --deadline must be >= 0');
  const json = values.json ?? false;
  const log = (s: string) => process.stderr.write(s + '\n');
  const slo = 1000;

  const root = packageRoot();
  const basePath = join(root, 'models', 'fashion-mnist-base-mlp.safetensors');
  const parityPath = join(root, 'models', 'fashion-mnist-base-mlp-concat-k2.safetensors');
  for (const p of [basePath, parityPath]) if (!existsSync(p)) throw new Error(`${p} is missing (shipped with the package)`);

  // the code config of the parity checkpoint (the coded frontend uses exactly this code)
  const { loadParityCode } = await import('../../codes/parity-models.js');
  const pc = loadParityCode(parityPath);
  const codeConfig = pc.code.config();
  for (const m of pc.parity) m.dispose();
  for (const t of pc.extra.values()) t.dispose();

  // test images and labels, as plain arrays
  const { loadDataset, disposeDataset } = await import('../../data/registry.js');
  const ds = await loadDataset('fashion-mnist', { dataDir: values['data-dir'], validation: 0 });
  const per = 28 * 28;
  const all = ds.test.images.contiguous().dataFloat32();
  const labels = Array.from(ds.test.labels.data() as BigInt64Array, Number);
  const nTest = ds.test.size;
  disposeDataset(ds);
  const image = (i: number) => all.subarray((i % nTest) * per, (i % nTest + 1) * per);

  const tmp = mkdtempSync(join(tmpdir(), 'coded-demo-serve-'));
  const insts: ChildInstance[] = [];
  const fes: Awaited<ReturnType<typeof startFrontendProcess>>[] = [];
  const clients: V2GrpcClient[] = [];
  const stats: Stats[] = [];
  let cleaned: Promise<void> | null = null;
  const cleanup = () =>
    (cleaned ??= (async () => {
      for (const c of clients) c.close();
      await Promise.all([...fes.map((f) => f.stop()), ...insts.map((i) => i.stop('SIGTERM'))]);
      for (const s of stats) s.h.destroy();
      rmSync(tmp, { recursive: true, force: true });
    })());
  // Ctrl-C / SIGTERM: stop every child, then exit; a hard exit still SIGKILLs what is left
  const onSignal = (sig: NodeJS.Signals) => {
    log(`\n${sig}: stopping the demo's processes ...`);
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  const killAll = () => {
    for (const c of [...insts.map((i) => i.proc), ...fes.map((f) => f.proc)]) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', killAll);

  const started = performance.now();
  try {
    const faults = ['--slow-prob', String(slowProb), '--slow-ms', String(slowMs)];
    const specs = [
      ['--model', basePath, '--name', 'base'],
      ['--model', basePath, '--name', 'base'],
      ['--model', parityPath, '--parity-index', '0', '--name', 'parity'],
      ['--model', basePath, '--name', 'base'],
    ];
    // all settled first, so a failure still cleans up the ones that did start
    const settled = await Promise.allSettled(specs.map((a, i) => startInstanceProcess([...a, '--seed', String(seed * 100 + i), ...faults], { timeoutMs: 60000 })));
    for (const s of settled) if (s.status === 'fulfilled') insts.push(s.value);
    for (const s of settled) if (s.status === 'rejected') throw s.reason;
    const bases = [insts[0], insts[1], insts[3]].map((c) => c.address);
    const parity = [insts[2].address];
    log(`started 3 base + 1 parity instances (every one delays ${100 * slowProb}% of requests by ${slowMs} ms); code ${pc.code.name}`);

    const common = { name: 'fmnist', grpcPort: 0, sloMs: slo, decodeDeadlineMs: deadline, maxWaitMs: 5, instanceConcurrency: 1, logLevel: 'warn' as const, maxPendingQueries: 100000, maxPoolQueue: 100000, health: { intervalMs: 1000 } };
    const modes: { mode: 'coded' | 'equal-resources'; desc: string; cfg: FrontendConfig }[] = [
      { mode: 'coded', desc: `2 base + 1 parity, ${pc.code.name}`, cfg: { ...common, mode: 'coded', ...(parityDelay !== undefined ? { parityDelayMs: parityDelay } : {}), code: codeConfig as FrontendConfig['code'], pools: { base: { model: 'base', instances: bases.slice(0, 2) }, parity: [{ model: 'parity', instances: parity }] } } },
      { mode: 'equal-resources', desc: '3 base replicas', cfg: { ...common, mode: 'equal-resources', pools: { base: { model: 'base', instances: bases } } } },
    ];
    const tallies = modes.map(() => newTally());
    for (const m of modes) {
      const path = join(tmp, `${m.mode}.json`);
      writeFileSync(path, JSON.stringify(m.cfg));
      const fe = await startFrontendProcess(path);
      fes.push(fe);
      clients.push(new V2GrpcClient(`127.0.0.1:${fe.grpc}`));
      stats.push(newStats());
    }
    const shape = [1, 28, 28];
    const warm = Array.from({ length: Math.min(warmup, nTest) }, (_, i) => image(nTest - 1 - i));
    for (const c of clients) if (warmup > 0) await replay(c, 'fmnist', poissonSchedule(warmup, rate, seed + 1000), null, warm, shape, slo * 4);
    const perRound = Math.ceil(N / rounds);
    for (let r = 0; r < rounds; r++) {
      const n = Math.min(perRound, N - r * perRound);
      if (n <= 0) break;
      const offset = r * perRound;
      const inputs = Array.from({ length: n }, (_, i) => image(offset + i));
      const schedule = poissonSchedule(n, rate, seed + r);
      for (let f = 0; f < modes.length; f++) {
        log(`round ${r + 1}/${rounds}: ${modes[f].mode} (${modes[f].desc}), ${n} queries at ${rate}/s`);
        const t = tallies[f];
        await replay(clients[f], 'fmnist', schedule, stats[f], inputs, shape, slo * 4, (i: number, res: ClientResult) => {
          const ok = argmax(res.data) === labels[(offset + i) % nTest];
          t.queries++;
          if (ok) t.correct++;
          if (res.parameters.default === true) {
            t.defaults++;
            if (ok) t.defaultsCorrect++;
          } else if (res.parameters.reconstructed === true) {
            t.reconstructed++;
            if (ok) t.reconstructedCorrect++;
          } else {
            t.originals++;
            if (ok) t.originalsCorrect++;
          }
        });
      }
    }

    const ratio = (a: number, b: number) => (b > 0 ? a / b : null);
    const results = modes.map((m, f) => {
      const st = stats[f];
      const s = summarize(st);
      const t = tallies[f];
      return {
        mode: m.mode, instances: m.desc, queries: st.measured, answered: t.queries, errors: st.errors, rejected: st.rejected,
        accuracy: {
          overall: ratio(t.correct, t.queries),
          originals: { count: t.originals, accuracy: ratio(t.originalsCorrect, t.originals) },
          reconstructed: { count: t.reconstructed, accuracy: ratio(t.reconstructedCorrect, t.reconstructed) },
          defaults: { count: t.defaults, accuracy: ratio(t.defaultsCorrect, t.defaults) },
        },
        latencyMs: { p50: s.latencyMs.p50, p99: s.latencyMs.p99, p999: s.latencyMs.p999, max: s.latencyMs.max, mean: s.latencyMs.mean },
        achievedRate: s.achievedRate,
      };
    });
    const [coded, eq] = results;
    const report = {
      demo: 'serve',
      date: new Date().toISOString(),
      machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?' },
      settings: { dataset: 'fashion-mnist', base: 'models/fashion-mnist-base-mlp.safetensors', parity: 'models/fashion-mnist-base-mlp-concat-k2.safetensors', code: codeConfig, queries: N, rate, slowProb, slowMs, sloMs: slo, decodeDeadlineMs: deadline, parityDelayMs: parityDelay ?? null, rounds, warmup, seed },
      modes: results,
      comparison: { codedOverEqualP50: coded.latencyMs.p50 / eq.latencyMs.p50, codedOverEqualP99: coded.latencyMs.p99 / eq.latencyMs.p99, codedOverEqualP999: coded.latencyMs.p999 / eq.latencyMs.p999 },
      seconds: (performance.now() - started) / 1000,
    };
    if (json) console.log(JSON.stringify(report));
    else {
      const pct = (x: number | null) => (x === null ? '-' : `${(100 * x).toFixed(2)}%`);
      const lines = [
        `coded serving demo: Fashion-MNIST test images, ${N} queries per frontend, Poisson ${rate}/s, every instance delays ${100 * slowProb}% of requests by ${slowMs} ms (decode deadline ${deadline} ms, ${parityDelay === undefined ? 'parity sent at once' : `parity hedged after ${parityDelay} ms`}, SLO ${slo} ms)`,
        '',
        '| frontend | instances | overall acc | originals (acc) | reconstructed (acc) | defaults | errors | p50 ms | p99 ms | p99.9 ms |',
        '|---|---|---|---|---|---|---|---|---|---|',
        ...results.map((r) => `| ${r.mode} | ${r.instances} | ${pct(r.accuracy.overall)} | ${r.accuracy.originals.count} (${pct(r.accuracy.originals.accuracy)}) | ${r.accuracy.reconstructed.count} (${pct(r.accuracy.reconstructed.accuracy)}) | ${r.accuracy.defaults.count} | ${r.errors + r.rejected} | ${fmt(r.latencyMs.p50)} | ${fmt(r.latencyMs.p99)} | ${fmt(r.latencyMs.p999)} |`),
        '',
        `coded / equal-resources: p50 ${report.comparison.codedOverEqualP50.toFixed(2)}x, p99 ${report.comparison.codedOverEqualP99.toFixed(2)}x, p99.9 ${report.comparison.codedOverEqualP999.toFixed(2)}x  (${report.seconds.toFixed(0)} s)`,
      ];
      console.log(lines.join('\n'));
    }
  } finally {
    await cleanup();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    process.off('exit', killAll);
  }
}
