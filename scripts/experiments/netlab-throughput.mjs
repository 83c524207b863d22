#!/usr/bin/env node
// How fast this machine moves bulk transfers through the network lab (src/bench/network-lab.ts),
// before a serving experiment relies on it: for each configuration, PAIRS concurrent transfers
// of MB megabytes between random pairs of HOSTS namespaces; reports the rate the completed
// transfers reached next to what the links would allow, and the machine's CPU time (busy and
// softirq, all cores together and the busiest core) while they ran.
//
//   node scripts/experiments/netlab-throughput.mjs [--hosts 19] [--transfers 12] [--json]
//        RATE_MBIT:PAIRS:MB[:UPLINK_MBIT][,gso] ...
//
// e.g. 1000:1:64 1000:4:64 1000:4:64,gso 10000:4:256,gso
// Needs root, iproute2 and dist/ (npx tsc -p tsconfig.json).
import { readFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    hosts: { type: 'string', default: '19' },
    transfers: { type: 'string', default: '12' },
    json: { type: 'boolean' },
    help: { type: 'boolean' },
  },
});
if (values.help || positionals.length === 0) {
  console.log(
    readFileSync(new URL(import.meta.url), 'utf8')
      .split('\n')
      .slice(1, 12)
      .map((l) => l.replace(/^\/\/ ?/, ''))
      .join('\n'),
  );
  process.exit(values.help ? 0 : 2);
}
const { NetworkLab } = await import(new URL('../../dist/src/bench/network-lab.js', import.meta.url).href);
const hosts = Number(values.hosts);
const count = Number(values.transfers);

/** per-CPU [busy, softirq, total] jiffies from /proc/stat */
function cpuTimes() {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d+ /.test(l))
    .map((l) => {
      const v = l.trim().split(/\s+/).slice(1).map(Number);
      const total = v.reduce((a, b) => a + b, 0);
      const idle = v[3] + (v[4] ?? 0);
      return [total - idle, v[6] ?? 0, total];
    });
}

const rows = [];
for (const spec of positionals) {
  const [body, flag] = spec.split(',');
  const [rate, pairs, mb, uplink] = body.split(':').map(Number);
  if (!(rate > 0 && pairs >= 1 && mb > 0) || (flag !== undefined && flag !== 'gso')) {
    console.error(`bad configuration '${spec}': use RATE_MBIT:PAIRS:MB[:UPLINK_MBIT][,gso]`);
    process.exit(2);
  }
  const lab = await NetworkLab.start({
    hosts,
    rateMbit: rate,
    ...(uplink > 0 ? { uplinkMbit: uplink } : {}),
    gso: flag === 'gso',
    congestionControl: 'cubic',
  });
  try {
    const before = cpuTimes();
    const t0 = performance.now();
    const bulk = await lab.startBulkTransfers({ pairs, minBytes: mb * 1e6, maxBytes: mb * 1e6, seed: 1 });
    const s = await bulk.waitFor(count);
    const seconds = (performance.now() - t0) / 1000;
    await bulk.stop();
    const after = cpuTimes();
    const d = after.map((a, i) => a.map((x, j) => x - before[i][j]));
    const all = d.reduce((a, b) => a.map((x, j) => x + b[j]), [0, 0, 0]);
    const row = {
      config: spec,
      seconds: +seconds.toFixed(1),
      mbit: Math.round((s.bytes * 8) / 1e6 / seconds),
      linksMbit: pairs * Math.min(rate, uplink > 0 ? uplink : rate),
      busyPct: +((100 * all[0]) / all[2]).toFixed(1),
      softirqPct: +((100 * all[1]) / all[2]).toFixed(1),
      busiestCorePct: Math.round(Math.max(...d.map((c) => (100 * c[0]) / c[2]))),
      failures: s.failures,
    };
    rows.push(row);
    if (!values.json)
      console.log(
        `${spec}: ${s.transfers} transfers of ${mb} MB in ${row.seconds} s: ${row.mbit} Mbit/s (links allow ${row.linksMbit}); CPU busy ${row.busyPct}% (softirq ${row.softirqPct}%) of ${d.length} cores, busiest core ${row.busiestCorePct}%`,
      );
  } finally {
    await lab.stop();
  }
}
if (values.json) console.log(JSON.stringify(rows, null, 2));
