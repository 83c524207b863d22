#!/usr/bin/env node
// Service time of model instances, closed loop (no queueing): starts M `coded serve instance`
// processes at once (the way `coded bench serve` starts them), times how long until all
// listen, then sends each one N sequential batch-1 gRPC requests from its own client, all M
// clients at the same time, and reports per-request latency percentiles over all requests
// (the service time of one instance while M instances share the machine / GPU) and the
// aggregate throughput. With --gpu-memory it also reads nvidia-smi's per-process GPU memory
// once the instances are warm. Prints one JSON line per M.
//
// usage: node scripts/experiments/instance-service-time.mjs [--model M] [--device cpu|cuda]
//          [--instances M[,M2,...]] [--requests N] [--warmup W] [--gpu-memory]
//   defaults: --model random:resnet18:3x224x224:1000 --device cuda --instances 1
//             --requests 300 --warmup 30
// Needs dist/ (npx tsc -p tsconfig.json) and the addon (CODED_ADDON for a CUDA build).
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';

const dist = new URL('../../dist/src/', import.meta.url);
const { startInstanceProcess } = await import(new URL('serve/processes.js', dist).href);
const { V2GrpcClient } = await import(new URL('serve/client.js', dist).href);

const o = { model: 'random:resnet18:3x224x224:1000', device: 'cuda', instances: '1', requests: '300', warmup: '30', 'gpu-memory': false };
const args = process.argv.slice(2);
for (let i = 0; i < args.length; i++) {
  const k = args[i].replace(/^--/, '');
  if (!(k in o) || !args[i].startsWith('--')) {
    console.error(`unknown argument '${args[i]}' (see the comment at the top of ${new URL(import.meta.url).pathname})`);
    process.exit(2);
  }
  o[k] = typeof o[k] === 'boolean' ? true : args[++i];
}
const N = Number(o.requests);
const W = Number(o.warmup);
const pct = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor((q / 100) * sorted.length))];
const round = (x) => Math.round(x * 1000) / 1000;

function gpuMemoryByPid() {
  try {
    const out = execFileSync('nvidia-smi', ['--query-compute-apps=pid,used_memory', '--format=csv,noheader,nounits'], { encoding: 'utf8' });
    return new Map(
      out
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split(',').map((s) => Number(s.trim()))),
    );
  } catch {
    return new Map();
  }
}

for (const M of o.instances.split(',').map(Number)) {
  const t0 = performance.now();
  const insts = await Promise.all(
    Array.from({ length: M }, () =>
      startInstanceProcess(['--model', o.model, '--device', o.device, '--name', 'model'], { timeoutMs: 600000 }),
    ),
  );
  const startS = (performance.now() - t0) / 1000;
  const clients = insts.map((i) => new V2GrpcClient(i.address));
  try {
    const meta = await clients[0].modelMetadata('model', 10000);
    const shape = meta.inputs[0].shape.slice(1).map(Number);
    const x = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i));
    const lat = [];
    const loop = async (c, n, record) => {
      for (let j = 0; j < n; j++) {
        const s = performance.now();
        await c.infer('model', 'input', x, [1, ...shape], 60000);
        if (record) lat.push(performance.now() - s);
      }
    };
    await Promise.all(clients.map((c) => loop(c, W, false)));
    let memMiB = null;
    if (o['gpu-memory']) {
      const mem = gpuMemoryByPid();
      const per = insts.map((i) => mem.get(i.proc.pid)).filter((v) => v !== undefined);
      memMiB = { perInstance: per, total: per.reduce((a, b) => a + b, 0) };
    }
    const t1 = performance.now();
    await Promise.all(clients.map((c) => loop(c, N, true)));
    const wallS = (performance.now() - t1) / 1000;
    lat.sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        model: o.model,
        device: o.device,
        instances: M,
        requestsPerInstance: N,
        startAllS: round(startS),
        serviceMs: {
          p50: round(pct(lat, 50)),
          p90: round(pct(lat, 90)),
          p99: round(pct(lat, 99)),
          mean: round(lat.reduce((a, b) => a + b, 0) / lat.length),
          min: round(lat[0]),
        },
        throughputPerS: round((M * N) / wallS),
        gpuMemoryMiB: memMiB,
      }),
    );
  } finally {
    for (const c of clients) c.close();
    await Promise.all(insts.map((i) => i.stop('SIGTERM')));
  }
}
