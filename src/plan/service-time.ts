// Service-time models for the planner: how long one instance takes for one request when
// nothing goes wrong (stragglers come on top, from the fault injector). Either a parametric
// distribution (the instances' --latency syntax) or an empirical one: measured round trips,
// e.g. the service times a `coded bench serve` report records.
import { readFileSync } from 'node:fs';
import { parseLatency, type LatencyDist } from '../serve/faults.js';

export type ServiceTime = { kind: 'dist'; dist: LatencyDist; label: string } | { kind: 'empirical'; samplesMs: number[]; label: string };

/** `const:MS`, `exp:MEAN`, `uniform:LO:HI`, `lognormal:MU:SIGMA`, or a bench report (`*.json`) / a file of milliseconds. */
export function parseServiceTime(spec: string): ServiceTime {
  if (/\.(json|txt|csv)$/i.test(spec) || spec.includes('/')) return readServiceTimes(spec);
  return { kind: 'dist', dist: parseLatency(spec), label: spec };
}

/** Measured service times from a bench report (serviceTimesMs) or a text file with one number per line. */
export function readServiceTimes(path: string): ServiceTime {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`cannot read service times ${path}: ${(e as Error).message}`);
  }
  let samples: unknown;
  if (text.trimStart().startsWith('{')) {
    const doc = JSON.parse(text) as { serviceTimesMs?: unknown; serviceTimesUnderLoadMs?: unknown };
    // a bench report: the round trips measured while its rounds loaded the machine, else those at rest
    samples = doc.serviceTimesUnderLoadMs ?? doc.serviceTimesMs;
    if (samples === undefined)
      throw new Error(
        `${path} has no "serviceTimesMs": use a report of \`coded bench serve\` (which measures them) or a file with one millisecond value per line`,
      );
  } else if (text.trimStart().startsWith('[')) samples = JSON.parse(text);
  else
    samples = text
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'))
      .map(Number);
  if (!Array.isArray(samples) || samples.length === 0 || !samples.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0)) {
    throw new Error(`service times in ${path} must be a non-empty list of non-negative milliseconds`);
  }
  return {
    kind: 'empirical',
    samplesMs: (samples as number[]).slice().sort((a, b) => a - b),
    label: `${samples.length} measured samples from ${path}`,
  };
}

/** Draw one service time (ms). */
export function sampleServiceTime(s: ServiceTime, rand: () => number): number {
  if (s.kind === 'empirical') return s.samplesMs[Math.min(s.samplesMs.length - 1, Math.floor(rand() * s.samplesMs.length))];
  const d = s.dist;
  switch (d.kind) {
    case 'none':
      return 0;
    case 'const':
      return d.ms;
    case 'uniform':
      return d.lo + (d.hi - d.lo) * rand();
    case 'exp':
      return -d.mean * Math.log(1 - rand());
    case 'lognormal': {
      const u1 = 1 - rand();
      const u2 = rand();
      return Math.exp(d.mu + d.sigma * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    }
  }
}

export function meanServiceTime(s: ServiceTime): number {
  if (s.kind === 'empirical') return s.samplesMs.reduce((a, b) => a + b, 0) / s.samplesMs.length;
  const d = s.dist;
  switch (d.kind) {
    case 'none':
      return 0;
    case 'const':
      return d.ms;
    case 'uniform':
      return (d.lo + d.hi) / 2;
    case 'exp':
      return d.mean;
    case 'lognormal':
      return Math.exp(d.mu + (d.sigma * d.sigma) / 2);
  }
}
