// The engine benchmark: the same workloads, shapes, models, losses and thread count run
// through our engine (in this process) and through PyTorch (src/bench/peer/engine_peer.py,
// a long-lived child process), interleaved block by block so that both sides see the same
// machine conditions. Reports medians over the timed blocks and ratios where > 1 always
// means our engine is better (throughput: ours / pytorch; latency: pytorch / ours).
//
// Method, per workload: set both sides up (same seed, data created once), one warm-up step
// each, one calibration step each (the slower side sets how many steps a timed block
// holds, so a block lasts about `blockSeconds`), a warm-up block each, then `reps` timed
// blocks per side in ABBA order (ours, peer, peer, ours, ...). Throughput workloads time a
// block as a whole (items / s per block, median over blocks); the latency workload times
// every single run (median over all runs). CUDA work is synchronised before clocks are read.
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { accessSync, constants, existsSync, statSync } from 'node:fs';
import { cpuSnapshot, processTicks, otherShare } from './cpu-load.js';
import { availableParallelism, cpus, arch, loadavg, platform } from 'node:os';
import { delimiter, join } from 'node:path';
import { createInterface } from 'node:readline';
import { packageRoot } from '../util/package-root.js';
import { parseArgs } from 'node:util';

import { noGrad } from '../engine/autograd.js';
import { crossEntropy, mseLoss } from '../engine/ops.js';
import { Adam } from '../engine/optim/adam.js';
import { cudaAvailable, getNumThreads, manualSeed, setNumThreads, synchronize, torchVersion } from '../engine/runtime.js';
import { tidy } from '../engine/scope.js';
import { randint, randn, type Tensor } from '../engine/tensor.js';
import { BaseMLP } from '../models/base-mlp.js';
import { ConvEncoder } from '../models/conv-encoder.js';
import { ResNet18 } from '../models/resnet.js';
import type { Module } from '../nn/module.js';

export const WORKLOAD_NAMES = ['W1', 'W2', 'W3', 'W4'] as const;
export type WorkloadName = (typeof WORKLOAD_NAMES)[number];

export const WORKLOAD_DESCRIPTIONS: Record<WorkloadName, string> = {
  W1: 'Base-MLP 784-200-100-10 train step (fwd + CE + bwd + Adam), batch 64',
  W2: 'ConvEncoder k=2, 40 hidden, 7 convs (dil 1,1,2,4,8,1 + 1x1), fwd + bwd (weights and input), batch 32, 28x28',
  W3: 'ResNet-18 (CIFAR) fwd + bwd, train mode, batch 32, 3x32x32',
  W4: 'ResNet-18 (CIFAR) batch-1 inference latency, eval, no grad',
};

const THROUGHPUT_UNIT = 'items/s';
const LATENCY_UNIT = 'ms median latency (ratio = pytorch/ours, >1: ours faster)';

export interface EngineBenchOptions {
  device?: string;
  /** intra-op threads for both sides (default: every core) */
  threads?: number;
  /** smaller blocks and fewer repetitions, for smoke tests */
  quick?: boolean;
  /** run the PyTorch peer (default true); without it only our numbers are measured */
  peer?: boolean;
  workloads?: readonly WorkloadName[];
  /** Python interpreter with torch (default $CODED_PYTHON or /usr/bin/python3) */
  python?: string;
  /** timed blocks per side (default 11, quick 3) */
  reps?: number;
  /** target seconds per timed block (default 1.0, quick 0.15) */
  blockSeconds?: number;
  /**
   * give the PyTorch peer our GLIBC_TUNABLES too (default false: the peer runs as PyTorch
   * users run it, without malloc tuning; CODED_BENCH_PEER_GLIBC_TUNABLES sets its own)
   */
  sameMalloc?: boolean;
  /** progress lines (default: none) */
  log?: (line: string) => void;
}

export interface WorkloadResult {
  name: WorkloadName;
  description: string;
  /** ours: items/s (W1-W3) or median ms (W4) */
  ours: number;
  pytorch: number | null;
  unit: string;
  /** > 1 means ours is better: ours/pytorch for throughput, pytorch/ours for latency */
  ratio: number | null;
  higherIsBetter: boolean;
  /** steps per timed block and timed blocks per side */
  itersPerBlock: number;
  reps: number;
  /** interquartile range of the per-block (W4: per-run) values */
  spread: { ours: [number, number]; pytorch: [number, number] | null };
}

export interface EngineBenchReport {
  workloads: WorkloadResult[];
  machine: string;
  threads: number;
  device: string;
  libtorch: string;
  pytorch: string | null;
  glibcTunables: { ours: string | null; pytorch: string | null };
  /**
   * Share of the machine's CPU time that other processes (not ours, not the peer) used
   * during the run, 0..1 (null where /proc is unavailable). Above ~0.05 the numbers are
   * noisy: OpenMP teams slow down badly when a core is taken from them.
   */
  otherCpuShare: number | null;
  /** 1-minute load average at the start (includes any run just before this one) */
  loadAverage: number;
  method: string;
}

export class PeerUnavailableError extends Error {
  constructor(detail: string) {
    super(
      `the PyTorch peer cannot run: ${detail}\n` +
        'The engine benchmark compares against PyTorch with the same libtorch; install it with ' +
        '`apt-get install --no-install-recommends python3-torch` (Debian), or point CODED_PYTHON at a ' +
        'Python whose `import torch` works (for --device cuda: a CUDA build). ' +
        'Use --no-peer to measure our engine alone.',
    );
    this.name = 'PeerUnavailableError';
  }
}

// ---------------------------------------------------------------------------
// statistics

export function quantile(xs: readonly number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const pos = (s.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return s[lo] + (s[hi] - s[lo]) * (pos - lo);
}
export const median = (xs: readonly number[]): number => quantile(xs, 0.5);
const iqr = (xs: readonly number[]): [number, number] => [quantile(xs, 0.25), quantile(xs, 0.75)];

// ---------------------------------------------------------------------------
// our side

/** Steps done and the seconds they took (a block stops early once it passes its time cap). */
interface Timed {
  steps: number;
  seconds: number;
}

interface Side {
  /** `iters` steps timed together, stopping early after `capSeconds` */
  run(iters: number, capSeconds?: number): Promise<Timed>;
  /** milliseconds of each of up to `iters` steps, stopping early after `capSeconds` */
  samples(iters: number, capSeconds?: number): Promise<number[]>;
  teardown(): Promise<void>;
}

interface OurWorkload {
  items: number;
  latency: boolean;
  /** one step; must free everything it creates */
  step(): void;
  dispose(): void;
}

function disposeAll(m: Module, ...ts: Tensor[]): void {
  m.dispose();
  for (const t of ts) t.dispose();
}

function makeOurs(name: WorkloadName, device: string): OurWorkload {
  manualSeed(0);
  switch (name) {
    case 'W1': {
      const model = new BaseMLP().to(device).train();
      const opt = new Adam(model.parameters(), { lr: 1e-3, weightDecay: 1e-5 });
      const x = randn([64, 784], { device }).keep();
      const y = randint(0, 10, [64], { device }).keep();
      return {
        items: 64,
        latency: false,
        step: () =>
          tidy(() => {
            opt.zeroGrad();
            crossEntropy(model.forward(x), y).backward();
            opt.step();
          }),
        dispose: () => {
          opt.dispose();
          disposeAll(model, x, y);
        },
      };
    }
    case 'W2': {
      const model = new ConvEncoder({ k: 2, hidden: 40 }).to(device).train();
      const x = randn([32, 2, 28, 28], { device }).keep();
      const target = randn([32, 1, 28, 28], { device }).keep();
      return {
        items: 32,
        latency: false,
        step: () =>
          tidy(() => {
            model.zeroGrad();
            const xi = x.detach().requiresGrad_(true);
            mseLoss(model.forward(xi), target).backward();
          }),
        dispose: () => disposeAll(model, x, target),
      };
    }
    case 'W3': {
      const model = new ResNet18('cifar').to(device).train();
      const x = randn([32, 3, 32, 32], { device }).keep();
      const y = randint(0, 10, [32], { device }).keep();
      return {
        items: 32,
        latency: false,
        step: () =>
          tidy(() => {
            model.zeroGrad();
            crossEntropy(model.forward(x), y).backward();
          }),
        dispose: () => disposeAll(model, x, y),
      };
    }
    case 'W4': {
      const model = new ResNet18('cifar').to(device).eval();
      const x = randn([1, 3, 32, 32], { device }).keep();
      return {
        items: 1,
        latency: true,
        step: () => noGrad(() => tidy(() => void model.forward(x))),
        dispose: () => disposeAll(model, x),
      };
    }
  }
}

class OurSide implements Side {
  constructor(
    private readonly w: OurWorkload,
    private readonly cuda: boolean,
  ) {}
  async run(iters: number, capSeconds = Infinity): Promise<Timed> {
    const capMs = capSeconds * 1e3;
    if (this.cuda) synchronize();
    const t0 = performance.now();
    let steps = 0;
    while (steps < iters) {
      this.w.step();
      steps++;
      if (performance.now() - t0 > capMs) break; // (CUDA: queued work is waited for below)
    }
    if (this.cuda) synchronize();
    return { steps, seconds: (performance.now() - t0) / 1e3 };
  }
  async samples(iters: number, capSeconds = Infinity): Promise<number[]> {
    const capMs = capSeconds * 1e3;
    const start = performance.now();
    const out: number[] = [];
    for (let i = 0; i < iters && performance.now() - start <= capMs; i++) {
      if (this.cuda) synchronize();
      const t0 = performance.now();
      this.w.step();
      if (this.cuda) synchronize();
      out.push(performance.now() - t0);
    }
    return out;
  }
  async teardown(): Promise<void> {
    this.w.dispose();
  }
}

// ---------------------------------------------------------------------------
// the PyTorch peer (a child process speaking one JSON object per line)

export function peerScriptPath(): string {
  return join(packageRoot(), 'src', 'bench', 'peer', 'engine_peer.py');
}

/** The PyTorch peer's interpreter: $CODED_PYTHON (a path, or a command name looked up on PATH, e.g. python3), else /usr/bin/python3. */
export function defaultPython(): string {
  const v = process.env.CODED_PYTHON;
  if (v === undefined || v === '') return '/usr/bin/python3';
  return onPath(v) ?? v;
}

/** A bare command name (no '/') resolved through $PATH to an executable file, as a shell would; null when absent or not bare. */
export function onPath(name: string, path = process.env.PATH ?? ''): string | null {
  if (name.includes('/')) return null;
  for (const dir of path.split(delimiter)) {
    if (dir === '') continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      if (statSync(p).isFile()) return p;
    } catch {
      // not here
    }
  }
  return null;
}

type Reply = { ok: boolean; error?: string; [k: string]: unknown };

const HELLO_TIMEOUT_S = 120;

export class Peer {
  readonly child: ChildProcessWithoutNullStreams;
  private readonly waiting: { resolve: (r: Reply) => void; reject: (e: Error) => void }[] = [];
  private stderr = '';
  private exited: Error | null = null;
  hello: Reply | null = null;

  private constructor(python: string, args: string[], env: NodeJS.ProcessEnv) {
    this.child = spawn(python, [peerScriptPath(), '--serve', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env });
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (d: string) => {
      this.stderr = (this.stderr + d).slice(-4000);
    });
    const lines = createInterface({ input: this.child.stdout });
    lines.on('line', (line) => {
      const w = this.waiting.shift();
      if (w === undefined) return;
      try {
        w.resolve(JSON.parse(line) as Reply);
      } catch {
        w.reject(new Error(`PyTorch peer: unreadable reply '${line.slice(0, 200)}'`));
      }
    });
    const fail = (e: Error) => {
      this.exited = e;
      for (const w of this.waiting.splice(0)) w.reject(e);
    };
    this.child.on('error', (e) => fail(new PeerUnavailableError(`cannot start ${python} (${e.message})`)));
    this.child.on('exit', (code, signal) => {
      const why = this.stderr.trim().split('\n').slice(-6).join('\n');
      const msg = `${python} ${peerScriptPath()} exited (${signal ?? `code ${code}`})${why ? `:\n${why}` : ''}`;
      fail(code === 3 ? new PeerUnavailableError(msg) : new Error(`PyTorch peer: ${msg}`));
    });
  }

  /** Start the peer and wait for its greeting (fails with PeerUnavailableError when torch is missing). */
  static async start(o: { python: string; device: string; threads: number; env: NodeJS.ProcessEnv }): Promise<Peer> {
    if (!existsSync(o.python)) throw new PeerUnavailableError(`${o.python} does not exist`);
    const p = new Peer(o.python, ['--device', o.device, '--threads', String(o.threads)], o.env);
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`PyTorch peer: ${o.python} did not start within ${HELLO_TIMEOUT_S} s`)),
        HELLO_TIMEOUT_S * 1000,
      );
    });
    try {
      p.hello = await Promise.race([p.next(), timeout]);
    } catch (e) {
      p.child.kill('SIGKILL');
      throw e;
    } finally {
      clearTimeout(timer);
    }
    if (!p.hello.ok) throw new Error(`PyTorch peer: ${p.hello.error ?? 'failed to start'}`);
    return p;
  }

  private next(): Promise<Reply> {
    if (this.exited) return Promise.reject(this.exited);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  async request(msg: Record<string, unknown>): Promise<Reply> {
    if (this.exited) throw this.exited;
    const reply = this.next();
    this.child.stdin.write(JSON.stringify(msg) + '\n');
    const r = await reply;
    if (!r.ok) throw new Error(`PyTorch peer: ${r.error ?? 'request failed'} (request ${JSON.stringify(msg)})`);
    return r;
  }

  async close(): Promise<void> {
    if (this.exited) return;
    const done = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    try {
      this.child.stdin.write(JSON.stringify({ cmd: 'quit' }) + '\n');
      this.child.stdin.end();
    } catch {
      /* already gone */
    }
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await done;
    clearTimeout(timer);
  }

  side(): Side {
    return {
      run: async (iters, cap) => {
        const r = await this.request({ cmd: 'run', iters, cap: cap ?? null });
        return { steps: r.steps as number, seconds: r.seconds as number };
      },
      samples: async (iters, cap) => (await this.request({ cmd: 'samples', iters, cap: cap ?? null })).ms as number[],
      teardown: async () => void (await this.request({ cmd: 'teardown' })),
    };
  }
}

// ---------------------------------------------------------------------------
// the driver

/** Seconds per step, from doubling runs until one lasts at least `minSeconds`. */
async function secondsPerStep(side: Side, minSeconds: number): Promise<number> {
  for (let n = 1; ; n *= 2) {
    const t = await side.run(n, minSeconds * 4);
    if (t.seconds >= minSeconds || n >= 1024) return t.seconds / t.steps;
  }
}

function machineDescription(): string {
  const model = cpus()[0]?.model?.trim() ?? 'unknown CPU';
  return `${model}, ${availableParallelism()} logical cores, ${platform()} ${arch()}, node ${process.version}`;
}

/** Run the benchmark; ours always, PyTorch unless `peer: false`. */
export async function runEngineBench(o: EngineBenchOptions = {}): Promise<EngineBenchReport> {
  const device = o.device ?? 'cpu';
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new RangeError(`engine bench: unknown device '${device}' (cpu or cuda)`);
  const cuda = device.startsWith('cuda');
  if (cuda && !cudaAvailable()) {
    throw new Error(
      'engine bench: --device cuda, but the addon was built against a libtorch without CUDA (rebuild with LIBTORCH=/path/to/cuda-libtorch)',
    );
  }
  const threads = o.threads ?? availableParallelism();
  if (!(Number.isInteger(threads) && threads >= 1))
    throw new RangeError(`engine bench: threads must be a positive integer, got ${threads}`);
  const quick = o.quick ?? false;
  const reps = o.reps ?? (quick ? 3 : 11);
  const blockSeconds = o.blockSeconds ?? (quick ? 0.15 : 1.0);
  const names = o.workloads ?? WORKLOAD_NAMES;
  const log = o.log ?? (() => {});
  const usePeer = o.peer ?? true;

  const loadStart = loadavg()[0];
  const cpuStart = cpuSnapshot();
  // The peer gets the stock environment: PyTorch as users run it (no malloc tuning, no
  // thread variables that would override --threads).
  // With sameMalloc the peer gets our GLIBC_TUNABLES (like-for-like allocator settings).
  const peerEnv: NodeJS.ProcessEnv = { ...process.env };
  delete peerEnv.GLIBC_TUNABLES;
  const peerTunables = (o.sameMalloc ? process.env.GLIBC_TUNABLES : process.env.CODED_BENCH_PEER_GLIBC_TUNABLES) || null;
  if (peerTunables !== null) peerEnv.GLIBC_TUNABLES = peerTunables;
  delete peerEnv.OMP_NUM_THREADS;
  delete peerEnv.MKL_NUM_THREADS;
  const peer = usePeer ? await Peer.start({ python: o.python ?? defaultPython(), device, threads, env: peerEnv }) : null;
  const results: WorkloadResult[] = [];
  const threadsBefore = getNumThreads();
  let peerTicks: number | null = 0;
  try {
    setNumThreads(threads);
    for (const name of names) {
      log(`${name}: ${WORKLOAD_DESCRIPTIONS[name]}`);
      const w = makeOurs(name, device);
      const ours = new OurSide(w, cuda);
      let theirs: Side | null = null;
      try {
        if (peer) {
          await peer.request({ cmd: 'setup', workload: name });
          theirs = peer.side();
        }
        // warm-up (first-call allocations, oneDNN primitive caches), then calibration
        await ours.run(1);
        if (theirs) await theirs.run(1);
        const stepOurs = await secondsPerStep(ours, blockSeconds / 8);
        const stepTheirs = theirs ? await secondsPerStep(theirs, blockSeconds / 8) : 0;
        const step = Math.max(stepOurs, stepTheirs, 1e-6);
        const iters = Math.max(1, Math.min(2000, Math.round(blockSeconds / step)));
        const warm = Math.max(1, Math.round(iters / 4));
        await ours.run(warm, blockSeconds);
        if (theirs) await theirs.run(warm, blockSeconds);

        const oursVals: number[] = [];
        const theirVals: number[] = [];
        // a block that runs past 3x its planned length (another process took the cores)
        // stops early: its rate still counts, the run stays within its time budget
        const cap = 3 * blockSeconds;
        const measure = async (side: Side, into: number[]) => {
          if (w.latency) {
            into.push(...(await side.samples(iters, cap)));
          } else {
            const t = await side.run(iters, cap);
            into.push((t.steps * w.items) / t.seconds);
          }
        };
        for (let r = 0; r < reps; r++) {
          // ABBA: ours first on even reps, PyTorch first on odd ones
          if (r % 2 === 0 || !theirs) {
            await measure(ours, oursVals);
            if (theirs) await measure(theirs, theirVals);
          } else {
            await measure(theirs, theirVals);
            await measure(ours, oursVals);
          }
        }
        const oursMed = median(oursVals);
        const theirMed = theirs ? median(theirVals) : null;
        const ratio = theirMed === null ? null : w.latency ? theirMed / oursMed : oursMed / theirMed;
        results.push({
          name,
          description: WORKLOAD_DESCRIPTIONS[name],
          ours: oursMed,
          pytorch: theirMed,
          unit: w.latency ? LATENCY_UNIT : THROUGHPUT_UNIT,
          ratio,
          higherIsBetter: !w.latency,
          itersPerBlock: iters,
          reps,
          spread: { ours: iqr(oursVals), pytorch: theirs ? iqr(theirVals) : null },
        });
        log(
          `${name}: ours ${fmt(oursMed)}, pytorch ${theirMed === null ? '-' : fmt(theirMed)} ${w.latency ? 'ms' : THROUGHPUT_UNIT}` +
            (ratio === null ? '' : `, ratio ${ratio.toFixed(3)}`),
        );
      } finally {
        await ours.teardown();
        if (theirs) await theirs.teardown();
      }
    }
  } finally {
    if (peer) {
      peerTicks = processTicks(peer.child.pid);
      await peer.close();
    }
    setNumThreads(threadsBefore);
  }
  const cpuEnd = cpuSnapshot();
  return {
    workloads: results,
    machine: machineDescription() + (peer?.hello?.gpu ? `, ${String(peer.hello.gpu)}` : ''),
    threads,
    device,
    libtorch: torchVersion(),
    pytorch: peer?.hello ? String(peer.hello.torch) : null,
    glibcTunables: { ours: process.env.GLIBC_TUNABLES || null, pytorch: peerTunables },
    otherCpuShare: otherShare(cpuStart, cpuEnd, peer ? peerTicks : 0),
    loadAverage: loadStart,
    method:
      `${reps} timed blocks per side of about ${blockSeconds} s` +
      (usePeer ? ', ABBA-interleaved with the PyTorch peer; ' : ' (no PyTorch peer); ') +
      'median per block (W4: median over every run); ratio > 1 means ours is better',
  };
}

function fmt(v: number): string {
  return v >= 100 ? v.toFixed(1) : v >= 1 ? v.toFixed(2) : v.toPrecision(3);
}

/** A plain-text table of the report. */
export function formatEngineBench(r: EngineBenchReport): string {
  const rows = [
    ['workload', 'ours', 'pytorch', 'unit', 'ratio'],
    ...r.workloads.map((w) => [
      w.name,
      fmt(w.ours),
      w.pytorch === null ? '-' : fmt(w.pytorch),
      w.higherIsBetter ? 'items/s' : 'ms (median)',
      w.ratio === null ? '-' : w.ratio.toFixed(3),
    ]),
  ];
  const width = rows[0].map((_, c) => Math.max(...rows.map((row) => row[c].length)));
  const line = (row: string[]) => row.map((cell, c) => (c === 0 || c === 3 ? cell.padEnd(width[c]) : cell.padStart(width[c]))).join('  ');
  const out = [line(rows[0]), width.map((n) => '-'.repeat(n)).join('  '), ...rows.slice(1).map(line)];
  out.push('');
  for (const w of r.workloads) out.push(`${w.name}: ${w.description}`);
  out.push('ratio: ours/pytorch for throughput (W1-W3), pytorch/ours for latency (W4); > 1 means ours is better.');
  out.push(`device ${r.device}, ${r.threads} threads, libtorch ${r.libtorch}, PyTorch ${r.pytorch ?? '(not run)'}; ${r.machine}`);
  out.push(`GLIBC_TUNABLES ours: ${r.glibcTunables.ours ?? '(unset)'}; pytorch: ${r.glibcTunables.pytorch ?? '(unset)'}`);
  if (r.otherCpuShare !== null) {
    out.push(
      `other processes used ${(100 * r.otherCpuShare).toFixed(1)}% of the CPU during the run` +
        (r.otherCpuShare > 0.05 ? ' (busy machine: expect noise, rerun when idle)' : ''),
    );
  }
  out.push(`method: ${r.method}`);
  return out.join('\n');
}

/** The JSON form: the report itself (workloads carry name, ours, pytorch, unit, ratio). */
export function engineBenchJson(r: EngineBenchReport): string {
  return JSON.stringify(r);
}

export const ENGINE_BENCH_USAGE = `coded bench engine [--json] [--device cpu|cuda] [--threads N] [--quick] [--no-peer] [--same-malloc] [--workloads W1,W2,...]

Runs the engine workloads through our engine and through PyTorch (same libtorch, same
shapes, same thread count) in one invocation, interleaved, and prints medians and ratios
(> 1: ours better).
  W1  ${WORKLOAD_DESCRIPTIONS.W1}
  W2  ${WORKLOAD_DESCRIPTIONS.W2}
  W3  ${WORKLOAD_DESCRIPTIONS.W3}
  W4  ${WORKLOAD_DESCRIPTIONS.W4}
Options:
  --json          print the report as JSON on stdout
  --device D      cpu (default) or cuda (both sides on the GPU)
  --threads N     intra-op threads for both sides (default: every core)
  --quick         short blocks and 3 repetitions (smoke test)
  --no-peer       measure our engine only
  --same-malloc   give PyTorch our GLIBC_TUNABLES too (default: PyTorch runs untuned, as
                  users run it; bin/coded always tunes ours, see GLIBC_TUNABLES below)
  --workloads L   comma-separated subset of W1,W2,W3,W4
The PyTorch side runs with $CODED_PYTHON or /usr/bin/python3 (Debian: apt-get install python3-torch).
GLIBC_TUNABLES (set by bin/coded to keep freed tensor memory in the heap) applies to our side;
set it empty to measure ours untuned.`;

export class EngineBenchUsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EngineBenchUsageError';
  }
}

/** Parse command-line options (throws EngineBenchUsageError). Returns null for --help. */
export function parseEngineBenchArgs(argv: string[]): (EngineBenchOptions & { json: boolean }) | null {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        json: { type: 'boolean' },
        device: { type: 'string' },
        threads: { type: 'string' },
        quick: { type: 'boolean' },
        'no-peer': { type: 'boolean' },
        'same-malloc': { type: 'boolean' },
        workloads: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new EngineBenchUsageError(`${(e as Error).message}\n\n${ENGINE_BENCH_USAGE}`);
  }
  if (values.help) return null;
  const device = values.device ?? 'cpu';
  if (!/^(cpu|cuda(:\d+)?)$/.test(device)) throw new EngineBenchUsageError(`--device must be cpu or cuda, got '${device}'`);
  let threads: number | undefined;
  if (values.threads !== undefined) {
    threads = Number(values.threads);
    if (!(Number.isInteger(threads) && threads >= 1))
      throw new EngineBenchUsageError(`--threads must be an integer >= 1, got '${values.threads}'`);
  }
  let workloads: WorkloadName[] | undefined;
  if (values.workloads !== undefined) {
    workloads = values.workloads.split(',').map((s) => s.trim().toUpperCase()) as WorkloadName[];
    const bad = workloads.filter((n) => !(WORKLOAD_NAMES as readonly string[]).includes(n));
    if (bad.length > 0 || workloads.length === 0)
      throw new EngineBenchUsageError(`--workloads: unknown ${bad.join(', ') || '(empty)'}; use W1,W2,W3,W4`);
  }
  return {
    json: values.json ?? false,
    device,
    threads,
    quick: values.quick ?? false,
    peer: !(values['no-peer'] ?? false),
    sameMalloc: values['same-malloc'] ?? false,
    workloads,
  };
}

/** The command: parse argv, run, print the table (progress on stderr) or JSON. */
export async function engineBenchMain(argv: string[]): Promise<EngineBenchReport | null> {
  const opts = parseEngineBenchArgs(argv);
  if (opts === null) {
    console.log(ENGINE_BENCH_USAGE);
    return null;
  }
  const report = await runEngineBench({ ...opts, log: opts.json ? undefined : (l) => process.stderr.write(`[bench] ${l}\n`) });
  console.log(opts.json ? engineBenchJson(report) : formatEngineBench(report));
  return report;
}
