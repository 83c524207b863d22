// TorchScript forward through our addon (TorchScriptModule: libtorch's JIT) vs PyTorch's
// torch.jit.load (src/bench/peer/torchscript_peer.py, a long-lived child) for the same file on
// the same libtorch, same thread count, inference under no_grad. The same network exported to
// ONNX runs through ONNX Runtime (onnxruntime-node, CPU, same thread count) alongside.
//
// A case is (model, batch). Every case is first warmed up on every side (untimed forwards for
// about --warmup-seconds each: the JIT's profiling runs, allocator and cache warm-up; the first
// case measured in a process used to be slow on both sides), then timed. Timed blocks rotate:
// round r runs the cases in order when r is even and in reverse when r is odd (ABBA over cases,
// so no case is always measured first), and within a case block the sides alternate (ours,
// peer, ONNX Runtime / the reverse). Each block runs N forwards (N set after warm-up so the
// slowest side's block lasts about --block-seconds); reported: medians of the per-forward
// times over the blocks, ratio = peer / ours (> 1: ours faster), onnxRatio = ONNX Runtime / ours.
//   node dist/src/bench/torchscript.js [--reps R] [--threads T] [--block-seconds S]
//     [--warmup-seconds W] [--python PY] [--example FILE.pt] [--json]
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { noGrad } from '../engine/autograd.js';
import { manualSeed, setNumThreads, torchVersion } from '../engine/runtime.js';
import { tidy } from '../engine/scope.js';
import { randn, type Tensor } from '../engine/tensor.js';
import { TorchScriptModule } from '../models/torchscript.js';
import { OnnxModel } from '../models/onnx.js';

const here = dirname(fileURLToPath(import.meta.url));
const peerScript = resolve(here, '..', '..', '..', 'src', 'bench', 'peer', 'torchscript_peer.py');

export const TORCHSCRIPT_BENCH_USAGE = `node dist/src/bench/torchscript.js [--reps R] [--threads T] [--block-seconds S] [--warmup-seconds W] [--python PY] [--example FILE.pt] [--json]

TorchScript forward through our addon vs PyTorch (torch.jit.load, same file, same libtorch) and
ONNX Runtime, batch 1 and 64, for the example CNN, ResNet-18 (CIFAR) and Base-MLP.
  --reps R            timed blocks per case and side (default 5)
  --threads T         intra-op threads on every side (default 1)
  --block-seconds S   about how long one timed block lasts (default 1)
  --warmup-seconds W  untimed warm-up per case and side before any timing (default: S)
  --python PY         the Python with torch for the peer (default $CODED_PYTHON or /usr/bin/python3)
  --example FILE.pt   the first model (default examples/own-model/small_cnn.pt, its .onnx beside it)
  --json              print the report as JSON on stdout (default: a table)
  --help              this text`;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

export interface Row {
  model: string;
  batch: number;
  forwardsPerBlock: number;
  blocks: number;
  warmupForwards: number;
  oursMs: number;
  pytorchMs: number;
  ratio: number;
  onnxMs: number;
  onnxRatio: number;
}

/** The report's table (markdown, the columns of docs/RESULTS.md). */
export function formatTorchScriptRows(rows: Row[]): string {
  const f = (v: number) => (v >= 100 ? v.toFixed(1) : v.toFixed(3));
  const lines = [
    '| model | batch | ours (ms) | PyTorch (ms) | ONNX Runtime (ms) | PyTorch / ours | ONNX Runtime / ours | forwards per block x blocks |',
    '|---|---|---|---|---|---|---|---|',
  ];
  for (const r of rows)
    lines.push(
      `| ${r.model} | ${r.batch} | ${f(r.oursMs)} | ${f(r.pytorchMs)} | ${f(r.onnxMs)} | ${r.ratio.toFixed(2)} | ${r.onnxRatio.toFixed(2)} | ${r.forwardsPerBlock} x ${r.blocks} |`,
    );
  return lines.join('\n');
}

/** Round r's order of the cases: forward when r is even, reversed when odd (ABBA). */
export function caseOrder(n: number, round: number): number[] {
  const order = Array.from({ length: n }, (_, i) => i);
  return round % 2 === 0 ? order : order.reverse();
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string' },
      threads: { type: 'string' },
      'block-seconds': { type: 'string' },
      'warmup-seconds': { type: 'string' },
      python: { type: 'string' },
      example: { type: 'string' },
      json: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    console.log(TORCHSCRIPT_BENCH_USAGE);
    return;
  }
  const reps = Number(values.reps ?? 5);
  const threads = Number(values.threads ?? 1);
  const blockSeconds = Number(values['block-seconds'] ?? 1);
  const warmupSeconds = Number(values['warmup-seconds'] ?? blockSeconds);
  for (const [name, v, min] of [
    ['--reps', reps, 1],
    ['--threads', threads, 1],
  ] as const)
    if (!Number.isInteger(v) || v < min) throw new Error(`${name} must be an integer >= ${min}, got ${v}`);
  for (const [name, v] of [
    ['--block-seconds', blockSeconds],
    ['--warmup-seconds', warmupSeconds],
  ] as const)
    if (!Number.isFinite(v) || v < 0 || (name === '--block-seconds' && v === 0))
      throw new Error(`${name} must be a positive number, got ${v}`);
  const python = values.python ?? process.env.CODED_PYTHON ?? '/usr/bin/python3';
  setNumThreads(threads);
  const dir = mkdtempSync(join(tmpdir(), 'coded-ts-bench-'));
  const child = spawn(python, [peerScript, 'serve', String(threads)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
  const opened: { m: TorchScriptModule; ort: OnnxModel }[] = [];
  const inputs: Tensor[] = [];
  try {
    const made = spawn(python, [peerScript, 'make', dir], { stdio: ['ignore', 2, 'inherit'] }); // stdout is the report's
    await new Promise<void>((ok, fail) => made.on('exit', (c) => (c === 0 ? ok() : fail(new Error(`making the models failed (${c})`)))));
    const hello = await next();
    const example = values.example ?? resolve(here, '..', '..', '..', 'examples', 'own-model', 'small_cnn.pt');
    const models = [
      { model: 'small-cnn (example)', file: example, onnx: example.replace(/\.pt$/, '.onnx'), shape: [3, 32, 32] },
      { model: 'resnet18 (CIFAR)', file: join(dir, 'resnet18.pt'), onnx: join(dir, 'resnet18.onnx'), shape: [3, 32, 32] },
      { model: 'base-mlp', file: join(dir, 'base-mlp.pt'), onnx: join(dir, 'base-mlp.onnx'), shape: [1, 28, 28] },
    ];
    type Side = (n: number) => Promise<number>;
    const cases: {
      model: string;
      batch: number;
      sides: [Side, Side, Side];
      n: number;
      warm: number;
      a: number[];
      b: number[];
      o: number[];
    }[] = [];
    for (const c of models) {
      const m = TorchScriptModule.load(c.file).eval();
      const ort = await OnnxModel.load(c.onnx, { threads, inputShape: c.shape });
      opened.push({ m, ort });
      for (const batch of [1, 64]) {
        manualSeed(0);
        const x = randn([batch, ...c.shape]).keep();
        inputs.push(x);
        const xData = x.dataFloat32();
        const ours: Side = async (n) => {
          const t0 = performance.now();
          noGrad(() => {
            for (let i = 0; i < n; i++)
              tidy(() => {
                m.forward(x);
              });
          });
          return (performance.now() - t0) / 1000;
        };
        const peer: Side = async (n) => {
          child.stdin.write(`${c.file} ${batch} ${c.shape.join(' ')} ${n}\n`);
          return (await next()).seconds as number;
        };
        const onnx: Side = async (n) => {
          const t0 = performance.now();
          for (let i = 0; i < n; i++) await ort.run(xData, batch);
          return (performance.now() - t0) / 1000;
        };
        cases.push({ model: c.model, batch, sides: [ours, peer, onnx], n: 1, warm: 0, a: [], b: [], o: [] });
      }
    }
    // warm-up, per case and side, before anything is timed: a first forward sizes a block
    // of about warmupSeconds, run untimed; then N for the timed blocks from warmed-up times
    for (const c of cases) {
      let warm = 0;
      for (const side of c.sides) {
        const probe = await side(1); // the first call: loading, the JIT's profiling run
        const w = Math.max(2, Math.round(warmupSeconds / Math.max(probe, 1e-6)));
        await side(w);
        warm = Math.max(warm, w + 1);
      }
      let one = 0;
      for (const side of c.sides) one = Math.max(one, (await side(2)) / 2); // one side at a time, warmed up
      c.n = Math.max(1, Math.round(blockSeconds / Math.max(one, 1e-6)));
      c.warm = warm;
      console.error(`[bench] warmed up ${c.model} batch ${c.batch}: ${warm} forwards per side, ${c.n} per timed block`);
    }
    // timed blocks: ABBA over the cases, and over the sides within a case block
    for (let r = 0; r < reps; r++) {
      for (const [k, ci] of caseOrder(cases.length, r).entries()) {
        const c = cases[ci];
        const [ours, peer, onnx] = c.sides;
        if ((r + k) % 2 === 0) {
          c.a.push((await ours(c.n)) / c.n);
          c.b.push((await peer(c.n)) / c.n);
          c.o.push((await onnx(c.n)) / c.n);
        } else {
          c.o.push((await onnx(c.n)) / c.n);
          c.b.push((await peer(c.n)) / c.n);
          c.a.push((await ours(c.n)) / c.n);
        }
      }
    }
    const rows: Row[] = cases.map((c) => ({
      model: c.model,
      batch: c.batch,
      forwardsPerBlock: c.n,
      blocks: reps,
      warmupForwards: c.warm,
      oursMs: median(c.a) * 1000,
      pytorchMs: median(c.b) * 1000,
      ratio: median(c.b) / median(c.a),
      onnxMs: median(c.o) * 1000,
      onnxRatio: median(c.o) / median(c.a),
    }));
    for (const row of rows) console.error(JSON.stringify(row));
    const report = {
      libtorch: torchVersion(),
      pytorch: hello.torch,
      threads,
      reps,
      blockSeconds,
      warmupSeconds,
      order: 'ABBA over cases',
      rows,
    };
    if (values.json) console.log(JSON.stringify(report));
    else
      console.log(
        `TorchScript forward: ours (libtorch ${report.libtorch}) vs PyTorch ${String(report.pytorch)} vs ONNX Runtime, ${threads} thread(s), ${reps} timed blocks per case and side (ABBA over cases), warm-up ${warmupSeconds} s per case and side\n${formatTorchScriptRows(rows)}`,
      );
  } finally {
    child.stdin.end();
    child.kill();
    for (const x of inputs) x.dispose();
    for (const { m, ort } of opened) {
      m.dispose();
      await ort.close();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) await main();
