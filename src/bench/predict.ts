// The planner's prediction for a serving experiment: every mode of a `coded bench serve` /
// `coded demo serve` run simulated with the same instances, code, policy settings and
// straggler model, from the service times measured in that run; several frontends each on
// their own share of the instances.
import type { ExperimentSpec, ServingModeName } from './serving-experiment.js';
import { slowPeriodsOf } from './serving-experiment.js';
import { readLatencyTrace } from '../serve/faults.js';
import type { Scenario, SimResult } from '../plan/simulator.js';
import { simulateFrontends } from '../plan/frontend-shares.js';
import type { ServiceTime } from '../plan/service-time.js';

export function scenarioFor(x: ExperimentSpec, mode: ServingModeName, service: ServiceTime, overheadMs = 0): Scenario {
  const s = x.stragglers;
  const slowPeriods = slowPeriodsOf(s);
  return {
    mode: mode === 'equal-resources-hedged' ? 'equal-resources' : mode,
    ...(mode === 'coded' ? { code: x.code } : {}),
    base: x.base,
    parity: x.parity,
    rate: x.rate,
    queries: Math.max(x.queries, 20000),
    warmup: Math.min(x.warmup, 1000),
    seed: x.seed,
    service,
    stragglers: {
      latency: { kind: 'none' },
      slowProb: s.slowProb,
      slowMs: s.slowMs,
      failProb: 0,
      ...(slowPeriods ? { slowPeriods } : {}),
      ...(s.latencyTrace ? { trace: readLatencyTrace(s.latencyTrace) } : {}),
    },
    sloMs: x.sloMs,
    decodeDeadlineMs: x.decodeDeadlineMs,
    maxWaitMs: x.maxWaitMs,
    parityDelayMs: x.parityDelayMs,
    hedgeMs: mode === 'equal-resources-hedged' ? x.hedgeMs : null,
    fallback: x.fallback,
    ...(x.copyBudget !== undefined ? { copyBudget: x.copyBudget } : {}),
    ...(x.singletonGroups !== undefined ? { singletonGroups: x.singletonGroups } : {}),
    ...(x.padding !== undefined ? { padding: x.padding } : {}),
    ...(x.dispatch !== undefined ? { dispatch: x.dispatch } : {}),
    concurrency: x.concurrency,
    inputShape: x.shape,
    overheadMs,
  };
}

/**
 * Simulated percentiles per mode (null when no service times were measured), from the
 * instances' measured service times plus the measured frontend overhead; with several
 * frontends, each one on its own share of the instances (../plan/frontend-shares.ts).
 */
export function predictExperiment(
  x: ExperimentSpec,
  serviceTimesMs: number[],
  frontendOverheadMs = 0,
): Map<ServingModeName, SimResult> | null {
  if (serviceTimesMs.length === 0) return null;
  const service: ServiceTime = { kind: 'empirical', samplesMs: serviceTimesMs, label: `${serviceTimesMs.length} measured round trips` };
  return new Map(x.modes.map((m) => [m, simulateFrontends(scenarioFor(x, m, service, frontendOverheadMs), x.frontends ?? 1)]));
}
