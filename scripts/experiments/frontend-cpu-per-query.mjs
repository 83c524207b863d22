#!/usr/bin/env node
// CPU per query of the frontend process for large inputs (3x224x224 FP32, 602 KB): a
// `coded serve frontend` process (coded addition k=2 over 2 base + 1 parity, or
// equal-resources over 3) in front of random:mlp:8:3x224x224:1000 instances, driven closed-loop
// by C concurrent requests from this process; prints queries/s, p50 and the CPU milliseconds per
// query of the frontend process, of this client and of each instance (from /proc), and the
// frontend's garbage collections per query (from --trace-gc).
//
//   node scripts/experiments/frontend-cpu-per-query.mjs [--modes coded,equal-resources]
//        [--queries 1000] [--concurrency 6] [--repeat 2] [--flags 'default|none|--initial-old-space-size=1024']
//        [--input 3x224x224 | 1x28x28 (the demo's Fashion-MNIST size; 10 classes)]
//        [--transports grpc,rest (how this client reaches the frontend and the frontend the instances)]
//
// --flags: the server node flags to compare ('|'-separated; 'default': bin/coded's, 'none': no
// flags), run in turn, --repeat times, so a noisy machine affects each alike. Build first.
import { parseArgs } from 'node:util';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startInstanceProcess, startFrontendProcess } from '../../dist/src/serve/processes.js';
import { V2GrpcClient } from '../../dist/src/serve/client.js';
import { V2RestClient } from '../../dist/src/serve/rest-client.js';

const { values } = parseArgs({
  options: {
    modes: { type: 'string', default: 'coded,equal-resources' },
    queries: { type: 'string', default: '1000' },
    concurrency: { type: 'string', default: '6' },
    repeat: { type: 'string', default: '2' },
    flags: { type: 'string', default: 'default' },
    input: { type: 'string', default: '3x224x224' },
    transports: { type: 'string', default: 'grpc' },
  },
});
const N = Number(values.queries);
const C = Number(values.concurrency);
const inputShape = values.input.split('x').map(Number);
const model = `random:mlp:8:${values.input}:${inputShape.length === 3 && inputShape[0] === 3 && inputShape[1] === 224 ? 1000 : 10}`;
const tmp = mkdtempSync(join(tmpdir(), 'fe-cpu-'));
const cpuMs = (pid) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  return (Number(f[11]) + Number(f[12])) * (1000 / 100); // utime + stime, 100 ticks/s
};
const insts = await Promise.all(Array.from({ length: 3 }, () => startInstanceProcess(['--model', model, '--name', 'm'], { http: true })));
const x = new Float32Array(inputShape.reduce((a, b) => a * b, 1)).fill(0.5);
const rows = [];
try {
  for (let rep = 0; rep < Number(values.repeat); rep++) {
    for (const mode of values.modes.split(',')) {
      for (const flags of values.flags.split('|'))
        for (const transport of values.transports.split(',')) {
          const rest = transport === 'rest';
          const at = (i) => (rest ? `127.0.0.1:${i.http}` : i.address);
          const protocol = rest ? 'rest' : 'grpc';
          const cfg =
            mode === 'coded'
              ? {
                  name: 'x',
                  mode: 'coded',
                  code: { family: 'addition', k: 2, r: 1 },
                  grpcPort: 0,
                  httpPort: 0,
                  sloMs: 5000,
                  decodeDeadlineMs: 50,
                  maxWaitMs: 5,
                  parityDelayMs: Number(process.env.PARITY_DELAY ?? 0),
                  logLevel: 'warn',
                  pools: {
                    base: { model: 'm', instances: insts.slice(0, 2).map(at), protocol },
                    parity: [{ model: 'm', instances: insts.slice(2).map(at), protocol }],
                  },
                  health: { intervalMs: 1000 },
                }
              : {
                  name: 'x',
                  mode: 'equal-resources',
                  grpcPort: 0,
                  httpPort: 0,
                  sloMs: 5000,
                  logLevel: 'warn',
                  pools: { base: { model: 'm', instances: insts.map(at), protocol } },
                  health: { intervalMs: 1000 },
                };
          const path = join(tmp, 'fe.json');
          writeFileSync(path, JSON.stringify(cfg));
          if (flags === 'default') delete process.env.CODED_SERVE_NODE_FLAGS;
          else process.env.CODED_SERVE_NODE_FLAGS = flags === 'none' ? '' : flags;
          const fe = await startFrontendProcess(path);
          const c = rest ? new V2RestClient(`127.0.0.1:${fe.http}`) : new V2GrpcClient(`127.0.0.1:${fe.grpc}`);
          for (let i = 0; i < 50; i++) await c.infer('x', 'input', x, [1, ...inputShape], 10000);
          const f0 = cpuMs(fe.proc.pid);
          const i0 = insts.map((i) => cpuMs(i.proc.pid));
          const c0 = process.cpuUsage();
          const lat = [];
          const t0 = performance.now();
          await Promise.all(
            Array.from({ length: C }, async (_, w) => {
              for (let i = w; i < N; i += C) {
                const s = performance.now();
                await c.infer('x', 'input', x, [1, ...inputShape], 10000);
                lat.push(performance.now() - s);
              }
            }),
          );
          const secs = (performance.now() - t0) / 1000;
          const fe1 = cpuMs(fe.proc.pid) - f0;
          const cc = process.cpuUsage(c0);
          const icpu = insts.map((i, j) => cpuMs(i.proc.pid) - i0[j]);
          lat.sort((a, b) => a - b);
          const row = {
            mode,
            flags,
            transport,
            qps: +(N / secs).toFixed(0),
            p50: +lat[N >> 1].toFixed(1),
            frontendCpuMsPerQuery: +(fe1 / N).toFixed(2),
            clientCpuMsPerQuery: +((cc.user + cc.system) / 1000 / N).toFixed(2),
            instanceCpuMsPerQuery: icpu.map((v) => +(v / N).toFixed(2)),
          };
          rows.push(row);
          console.log(JSON.stringify(row));
          c.close();
          await fe.stop();
        }
    }
  }
} finally {
  delete process.env.CODED_SERVE_NODE_FLAGS;
  await Promise.all(insts.map((i) => i.stop()));
  rmSync(tmp, { recursive: true, force: true });
}
const med = (a) => {
  const s = [...a].sort((p, q) => p - q);
  return s[(s.length - 1) >> 1];
};
console.log('\nmedians (frontend CPU ms per query):');
for (const mode of values.modes.split(','))
  for (const flags of values.flags.split('|'))
    for (const transport of values.transports.split(',')) {
      const r = rows.filter((q) => q.mode === mode && q.flags === flags && q.transport === transport);
      console.log(
        `${mode.padEnd(16)} ${transport.padEnd(5)} ${flags.padEnd(34)} frontend ${med(r.map((q) => q.frontendCpuMsPerQuery))}  client ${med(r.map((q) => q.clientCpuMsPerQuery))}  qps ${med(r.map((q) => q.qps))}`,
      );
    }
