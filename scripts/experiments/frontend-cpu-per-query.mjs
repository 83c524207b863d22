#!/usr/bin/env node
// CPU per query of the frontend path for large inputs (3x224x224 FP32, 602 KB): an in-process
// frontend (coded addition k=2 over 2 base + 1 parity, or equal-resources over 3) in front of
// random:mlp:8:3x224x224:1000 instances, driven closed-loop by 4 clients in the same process;
// prints queries/s, p50 and the process's CPU ms per query (frontend + client).
//   node scripts/experiments/frontend-cpu-per-query.mjs coded|equal-resources   (after npm run build)
import { Frontend } from '../../dist/src/serve/frontend.js';
import { validateFrontendConfig } from '../../dist/src/serve/config.js';
import { startInstanceProcess } from '../../dist/src/serve/processes.js';
import { V2GrpcClient } from '../../dist/src/serve/client.js';
import { pino } from 'pino';
const mode = process.argv[2] ?? 'coded';
const model = 'random:mlp:8:3x224x224:1000';
const insts = await Promise.all(Array.from({ length: 3 }, (_, i) => startInstanceProcess(['--model', model, '--name', 'm'])));
const cfg = validateFrontendConfig(mode === 'coded' ? { name: 'x', mode: 'coded', code: { family: 'addition', k: 2, r: 1 }, grpcPort: 0, sloMs: 5000, decodeDeadlineMs: 50, maxWaitMs: 5, logLevel: 'warn',
  pools: { base: { model: 'm', instances: insts.slice(0, 2).map((i) => i.address) }, parity: [{ model: 'm', instances: insts.slice(2).map((i) => i.address) }] }, health: { intervalMs: 1000 } }
  : { name: 'x', mode: 'equal-resources', grpcPort: 0, sloMs: 5000, logLevel: 'warn', pools: { base: { model: 'm', instances: insts.map((i) => i.address) } }, health: { intervalMs: 1000 } });
const fe = await Frontend.start({ config: cfg, logger: pino({ level: 'warn' }) });
const c = new V2GrpcClient(`127.0.0.1:${fe.grpcPort}`);
const x = new Float32Array(3 * 224 * 224).fill(0.5);
const N = 1500; const lat = [];
const t0 = performance.now(); const cpu0 = process.cpuUsage();
await Promise.all(Array.from({ length: 4 }, async (_, w) => { for (let i = w; i < N; i += 4) { const s = performance.now(); await c.infer('x', 'input', x, [1, 3, 224, 224], 10000); lat.push(performance.now() - s); } }));
const secs = (performance.now() - t0) / 1000; const cpu = process.cpuUsage(cpu0);
lat.sort((a, b) => a - b);
console.log(mode, 'qps', (N / secs).toFixed(0), 'p50', lat[N / 2 | 0].toFixed(1), 'cpu ms per query (frontend+client process)', ((cpu.user + cpu.system) / 1000 / N).toFixed(2), 'tasks', fe.counts.tasks);
c.close(); await fe.close(); await Promise.all(insts.map((i) => i.stop()));
