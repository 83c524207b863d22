#!/usr/bin/env node
// Timer lateness probe: a 1 ms interval timer for S seconds (argv[2], default 30); prints the
// CPU shares from /proc/stat over the window and how often the timer fired more than 8 ms late
// (buckets 8-15 / 15-30 / 30-60 / 60+ ms) and the worst. Run beside a benchmark to see whether
// a process that does nothing is also delayed, i.e. whether the machine itself stalls.
//   node scripts/experiments/timer-lateness.mjs 30
import { readFileSync } from 'node:fs';
const steal = () => readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
const s0 = steal();
let last = performance.now();
const events = [];
const t = setInterval(() => {
  const now = performance.now();
  const gap = now - last - 1;
  if (gap > 8) events.push([Date.now(), gap]);
  last = now;
}, 1);
setTimeout(
  () => {
    clearInterval(t);
    const s1 = steal();
    const d = s1.map((v, i) => v - s0[i]);
    const tot = d.reduce((a, b) => a + b, 0);
    console.log(
      'cpu share: user %s nice %s sys %s idle %s iowait %s irq %s softirq %s steal %s',
      ...d.slice(0, 8).map((x) => ((100 * x) / tot).toFixed(1)),
    );
    const buckets = { '8-15': 0, '15-30': 0, '30-60': 0, '60+': 0 };
    for (const [, g] of events) buckets[g < 15 ? '8-15' : g < 30 ? '15-30' : g < 60 ? '30-60' : '60+']++;
    console.log('timer late events', events.length, JSON.stringify(buckets), 'worst', Math.max(0, ...events.map((e) => e[1])).toFixed(1));
  },
  Number(process.argv[2] ?? 30) * 1000,
);
