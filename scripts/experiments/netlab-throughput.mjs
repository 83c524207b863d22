#!/usr/bin/env node
// How fast this machine moves bulk transfers through the network lab (src/bench/network-lab.ts),
// before a serving experiment relies on it: for each configuration (the form of `coded bench
// serve --network`), PAIRS concurrent transfers of MIN_MB-MAX_MB megabytes between random pairs
// of HOSTS namespaces; reports the rate the completed
// transfers reached next to what the links would allow, and the machine's CPU time (busy and
// softirq, all cores together and the busiest core) while they ran. Only completed transfers
// count (up to PAIRS - 1 partly sent ones do not), and each new transfer starts a process: the
// rates are lower bounds.
//
//   node scripts/experiments/netlab-throughput.mjs [--hosts 19] [--transfers 12] [--json]
//        RATE_MBIT:PAIRS:MIN_MB:MAX_MB[:UPLINK_MBIT][,gso] ...
//
// e.g. 1000:1:64:64 1000:4:64:64 1000:4:64:64,gso 10000:4:256:256,gso
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
      .slice(1)
      .filter((_, i, all) => all.slice(0, i + 1).every((x) => x.startsWith('//')))
      .map((l) => l.replace(/^\/\/ ?/, ''))
      .join('\n'),
  );
  process.exit(values.help ? 0 : 2);
}
const { NetworkLab } = await import(new URL('../../dist/src/bench/network-lab.js', import.meta.url).href);
const { parseNetwork } = await import(new URL('../../dist/src/bench/serving-experiment.js', import.meta.url).href);
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
if (!(Number.isInteger(hosts) && hosts >= 2 && Number.isInteger(count) && count >= 1)) {
  console.error('--hosts must be an integer >= 2 and --transfers an integer >= 1');
  process.exit(2);
}
// the grammar of `coded bench serve --network` (at least one pair: there is nothing to time without)
const configs = positionals.map((spec) => {
  let c;
  try {
    c = parseNetwork(spec);
  } catch (e) {
    console.error(e.message);
    process.exit(2);
  }
  if (c.pairs < 1) {
    console.error(`bad configuration '${spec}': PAIRS must be at least 1 here`);
    process.exit(2);
  }
  return { spec, ...c };
});
for (const { spec, rateMbit: rate, pairs, minMB, maxMB, uplinkMbit, gso } of configs) {
  const uplink = uplinkMbit ?? 0;
  const lab = await NetworkLab.start({
    hosts,
    rateMbit: rate,
    ...(uplink > 0 ? { uplinkMbit: uplink } : {}),
    gso: gso === true,
    congestionControl: 'cubic',
  });
  try {
    // the clock starts once the receivers listen and the first transfers are launched
    const bulk = await lab.startBulkTransfers({ pairs, minBytes: minMB * 1e6, maxBytes: maxMB * 1e6, seed: 1 });
    const before = cpuTimes();
    const t0 = performance.now();
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
        `${spec}: ${s.transfers} transfers of ${minMB === maxMB ? minMB : `${minMB}-${maxMB}`} MB in ${row.seconds} s: ${row.mbit} Mbit/s (links allow ${row.linksMbit}); CPU busy ${row.busyPct}% (softirq ${row.softirqPct}%) of ${d.length} cores, busiest core ${row.busiestCorePct}%`,
      );
  } finally {
    await lab.stop();
  }
}
if (values.json) console.log(JSON.stringify(rows, null, 2));
