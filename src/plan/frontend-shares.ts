// Several frontend processes serving one deployment: each owns every F-th instance of every
// pool (as `coded bench serve --frontends F` deals them out) and gets every F-th query, so a
// frontend sees 1/F of the rate on its own share of the instances. Shares can be uneven: 6
// parity instances over 4 frontends are 2, 2, 1 and 1, and a frontend with fewer instances has
// less room to absorb a slow one. The prediction simulates each frontend on its own share and
// merges their answers. Each frontend's arrivals are simulated as Poisson at 1/F of the rate;
// a load balancer that deals queries out in turn makes them smoother, so the prediction leans
// pessimistic (coding groups fill a little less often in the simulation).
import * as hdr from 'hdr-histogram-js';
import { deriveSeed } from '../data/rng.js';
import { instancesOf, simulate, type Scenario, type SimResult } from './simulator.js';
import type { PolicyCounts } from '../serve/policy.js';

/** How many of n instances dealt out in turn to F frontends the s-th one gets (shardOf's count). */
export function shareSize(n: number, s: number, F: number): number {
  return n > s ? Math.floor((n - 1 - s) / F) + 1 : 0;
}

/**
 * The scenario each of F frontends runs: 1/F of the rate; coded: its share of the base and of the
 * parity instances (the parity instances dealt out as one list: exact for r = 1, within one
 * instance per pool for r > 1); the uncoded modes: its share of all their instances. Frontend 0
 * keeps the scenario's seed (one frontend is the plain simulation); the others derive theirs.
 */
export function frontendShares(s: Scenario, F: number): Scenario[] {
  if (!Number.isInteger(F) || F < 1) throw new Error(`frontends must be a whole number >= 1, not ${F}`);
  if (!canShare(s, F))
    throw new Error(
      `${F} frontends need at least ${F} instances in every pool (each frontend owns its share): ${s.mode === 'coded' ? `${s.base} base and ${s.parity} parity (r = ${s.code?.r ?? 1} per frontend)` : `${instancesOf(s)} instances`}`,
    );
  return Array.from({ length: F }, (_, i): Scenario => {
    const share =
      s.mode === 'coded'
        ? { base: shareSize(s.base, i, F), parity: shareSize(s.parity, i, F) }
        : { base: shareSize(instancesOf(s), i, F), parity: 0 };
    return { ...s, ...share, rate: s.rate / F, seed: i === 0 ? s.seed : deriveSeed(s.seed, 'frontend', i) };
  });
}

/** Whether F frontends can each own a share of every pool of the scenario (the last frontend's share is the smallest). */
export function canShare(s: Scenario, F: number): boolean {
  const smallest = (n: number) => shareSize(n, F - 1, F);
  return s.mode === 'coded' ? smallest(s.base) >= 1 && smallest(s.parity) >= (s.code?.r ?? 1) : smallest(instancesOf(s)) >= 1;
}

/** Simulate each of F frontends on its share (frontendShares) and merge their measured answers into one result. */
export function simulateFrontends(s: Scenario, F: number): SimResult {
  if (F === 1) return simulate(s);
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 3_600_000_000, numberOfSignificantValueDigits: 3 });
  const parts = frontendShares(s, F).map((share) =>
    simulate(share, {
      onAnswer: (i, _arrival, latencyMs) => {
        if (i >= share.warmup) h.recordValue(Math.max(1, Math.round((latencyMs + (share.overheadMs ?? 0)) * 1000)));
      },
    }),
  );
  const p = (q: number) => h.getValueAtPercentile(q) / 1000;
  const latencyMs = { p50: p(50), p90: p(90), p99: p(99), p999: p(99.9), max: h.maxValue / 1000, mean: h.mean / 1000 };
  h.destroy();
  const counts = { ...parts[0].counts };
  for (const r of parts.slice(1)) for (const k of Object.keys(counts) as (keyof PolicyCounts)[]) counts[k] += r.counts[k];
  const measured = parts.reduce((a, r) => a + r.measured, 0);
  const instances = parts.reduce((a, r) => a + r.instances, 0);
  return {
    label: parts[0].label,
    instances,
    latencyMs,
    counts,
    measured,
    // every frontend simulates the same number of queries: the mean of theirs
    requestsPerQuery: parts.reduce((a, r) => a + r.requestsPerQuery, 0) / F,
    utilisation: parts.reduce((a, r) => a + r.utilisation * r.instances, 0) / instances,
  };
}
