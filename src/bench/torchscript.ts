// TorchScript forward through our addon (TorchScriptModule: libtorch's JIT) vs PyTorch's
// torch.jit.load (src/bench/peer/torchscript_peer.py, a long-lived child) for the same file on
// the same libtorch, same thread count, inference under no_grad. Blocks alternate ABBA (ours,
// peer, peer, ours, ...) so both sides see the same machine conditions; each block runs N
// forwards (N set so the peer's block lasts about blockSeconds); reports medians of the
// per-forward times and the ratio peer / ours (> 1: ours faster). The same network exported to
// ONNX runs through ONNX Runtime (onnxruntime-node, CPU, same thread count) in the same
// rotation: onnxMs and onnxRatio = ONNX Runtime / ours.
//   node dist/src/bench/torchscript.js [--reps R] [--threads T] [--block-seconds S] [--python PY]
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
import { randn } from '../engine/tensor.js';
import { TorchScriptModule } from '../models/torchscript.js';
import { OnnxModel } from '../models/onnx.js';

const here = dirname(fileURLToPath(import.meta.url));
const peerScript = resolve(here, '..', '..', '..', 'src', 'bench', 'peer', 'torchscript_peer.py');

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      reps: { type: 'string' },
      threads: { type: 'string' },
      'block-seconds': { type: 'string' },
      python: { type: 'string' },
      example: { type: 'string' },
    },
  });
  const reps = Number(values.reps ?? 5);
  const threads = Number(values.threads ?? 1);
  const blockSeconds = Number(values['block-seconds'] ?? 1);
  const python = values.python ?? process.env.CODED_PYTHON ?? '/usr/bin/python3';
  setNumThreads(threads);
  const dir = mkdtempSync(join(tmpdir(), 'coded-ts-bench-'));
  const child = spawn(python, [peerScript, 'serve', String(threads)], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  const next = async (): Promise<Record<string, unknown>> => JSON.parse((await lines.next()).value as string) as Record<string, unknown>;
  try {
    const made = spawn(python, [peerScript, 'make', dir], { stdio: ['ignore', 'inherit', 'inherit'] });
    await new Promise<void>((ok, fail) => made.on('exit', (c) => (c === 0 ? ok() : fail(new Error(`making the models failed (${c})`)))));
    const hello = await next();
    const example = values.example ?? resolve(here, '..', '..', '..', 'examples', 'own-model', 'small_cnn.pt');
    const cases = [
      { model: 'small-cnn (example)', file: example, onnx: example.replace(/\.pt$/, '.onnx'), shape: [3, 32, 32] },
      { model: 'resnet18 (CIFAR)', file: join(dir, 'resnet18.pt'), onnx: join(dir, 'resnet18.onnx'), shape: [3, 32, 32] },
      { model: 'base-mlp', file: join(dir, 'base-mlp.pt'), onnx: join(dir, 'base-mlp.onnx'), shape: [1, 28, 28] },
    ];
    const rows = [];
    for (const c of cases) {
      const m = TorchScriptModule.load(c.file).eval();
      const ortModel = await OnnxModel.load(c.onnx, { threads, inputShape: c.shape });
      for (const batch of [1, 64]) {
        manualSeed(0);
        const x = randn([batch, ...c.shape]).keep();
        const ours = (n: number): number => {
          const t0 = performance.now();
          noGrad(() => {
            for (let i = 0; i < n; i++)
              tidy(() => {
                m.forward(x);
              });
          });
          return (performance.now() - t0) / 1000;
        };
        const peer = async (n: number): Promise<number> => {
          child.stdin.write(`${c.file} ${batch} ${c.shape.join(' ')} ${n}\n`);
          return (await next()).seconds as number;
        };
        ours(3);
        await peer(3);
        const xData = x.dataFloat32();
        const ort = async (n: number): Promise<number> => {
          const t0 = performance.now();
          for (let i = 0; i < n; i++) await ortModel.run(xData, batch);
          return (performance.now() - t0) / 1000;
        };
        await ort(3);
        const one = Math.max(await peer(3), ours(3), await ort(3)) / 3;
        const n = Math.max(1, Math.round(blockSeconds / one));
        const a: number[] = [];
        const b: number[] = [];
        const o: number[] = [];
        for (let r = 0; r < reps; r++) {
          if (r % 2 === 0) {
            a.push(ours(n) / n);
            b.push((await peer(n)) / n);
            o.push((await ort(n)) / n);
          } else {
            o.push((await ort(n)) / n);
            b.push((await peer(n)) / n);
            a.push(ours(n) / n);
          }
        }
        x.dispose();
        const row = {
          model: c.model,
          batch,
          forwardsPerBlock: n,
          blocks: reps,
          oursMs: median(a) * 1000,
          pytorchMs: median(b) * 1000,
          ratio: median(b) / median(a),
          onnxMs: median(o) * 1000,
          onnxRatio: median(o) / median(a),
        };
        rows.push(row);
        console.error(JSON.stringify(row));
      }
      m.dispose();
      await ortModel.close();
    }
    console.log(JSON.stringify({ libtorch: torchVersion(), pytorch: hello.torch, threads, reps, blockSeconds, rows }));
  } finally {
    child.stdin.end();
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
