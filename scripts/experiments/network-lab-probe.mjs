#!/usr/bin/env node
// Background network interference, measured: a `noop:D` instance in host 0 of a network lab
// (src/bench/network-lab.ts) behind a RATE Mbit link; sequential V2 gRPC round trips from the
// root namespace, first on a quiet link, then with PAIRS background bulk transfers of
// MIN..MAX MB, every one of them between host 0 and host 1 (random direction), so each touches
// the instance's link. Needs root and iproute2; uses dist/ (build first).
//
// usage: node scripts/experiments/network-lab-probe.mjs [--rate 100] [--requests 2000]
//          [--dim 1000] [--pairs 2] [--min-mb 16] [--max-mb 64] [--cc cubic|bbr] [--queue 1000] [--json]
import { NetworkLab } from '../../dist/src/bench/network-lab.js';
import { startInstanceProcess } from '../../dist/src/serve/processes.js';
import { V2GrpcClient } from '../../dist/src/serve/client.js';

const opt = {
  rate: 100,
  requests: 2000,
  dim: 1000,
  pairs: 2,
  'min-mb': 16,
  'max-mb': 64,
  cc: undefined,
  queue: 1000,
  json: false,
  warmup: 200,
  seed: 1,
};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i].replace(/^--/, '');
  if (!(k in opt)) throw new Error(`unknown option ${argv[i]}`);
  if (k === 'json') opt.json = true;
  else opt[k] = k === 'cc' ? argv[++i] : Number(argv[++i]);
}

function summary(ms) {
  const s = [...ms].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  const r = (x) => Math.round(x * 1000) / 1000;
  return {
    n: s.length,
    mean: r(s.reduce((a, b) => a + b, 0) / s.length),
    p50: r(q(0.5)),
    p90: r(q(0.9)),
    p99: r(q(0.99)),
    p999: r(q(0.999)),
    max: r(s[s.length - 1]),
  };
}

async function measure(client, n) {
  const x = Float32Array.from({ length: opt.dim }, (_, i) => Math.sin(i));
  const out = [];
  for (let i = 0; i < n; i++) {
    const t0 = process.hrtime.bigint();
    await client.infer('noop', 'input', x, [1, opt.dim], 30000);
    out.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return out;
}

const t0 = Date.now();
const lab = await NetworkLab.start({ hosts: 2, rateMbit: opt.rate, queuePackets: opt.queue, congestionControl: opt.cc });
const startMs = Date.now() - t0;
let inst;
let client;
try {
  inst = await startInstanceProcess(['--model', `noop:${opt.dim}`], { wrap: lab.wrap(0), host: lab.address(0) });
  client = new V2GrpcClient(inst.address);
  await measure(client, opt.warmup);
  const quiet = summary(await measure(client, opt.requests));
  const bulk = await lab.startBulkTransfers({
    pairs: opt.pairs,
    minBytes: opt['min-mb'] << 20,
    maxBytes: opt['max-mb'] << 20,
    seed: opt.seed,
    among: [0, 1],
  });
  await measure(client, opt.warmup);
  const b0 = bulk.stats();
  const tb = Date.now();
  const busy = summary(await measure(client, opt.requests));
  const seconds = (Date.now() - tb) / 1000;
  const b1 = bulk.stats();
  await bulk.stop();
  const t1 = Date.now();
  client.close();
  await inst.stop();
  await lab.stop();
  const result = {
    rateMbit: opt.rate,
    dim: opt.dim,
    requests: opt.requests,
    queuePackets: opt.queue,
    congestionControl: opt.cc ?? 'inherited',
    labStartMs: startMs,
    labStopMs: Date.now() - t1,
    quiet,
    withBulk: busy,
    bulk: {
      pairs: opt.pairs,
      mb: [opt['min-mb'], opt['max-mb']],
      completedDuringMeasurement: b1.transfers - b0.transfers,
      failures: b1.failures,
      completedMbitPerS: Math.round(((b1.bytes - b0.bytes) * 8) / seconds / 1e6),
    },
  };
  if (opt.json) console.log(JSON.stringify(result));
  else console.log(JSON.stringify(result, null, 2));
} finally {
  client?.close();
  await inst?.stop();
  await lab.stop();
}
