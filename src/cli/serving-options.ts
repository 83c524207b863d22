// Options the serving experiments share (`coded bench serve`, `coded demo serve`): modes,
// on/off switches, the straggler options, the coded frontend's lone-query handling.
import { numberOption, UsageError } from './args.js';
import { parseNetwork, SERVING_MODES, type ServingModeName, type Stragglers } from '../bench/serving-experiment.js';

export function singletonOption(v: string): 'pad' | 'copy' {
  if (v !== 'pad' && v !== 'copy') throw new UsageError(`--singleton must be 'pad' or 'copy', not '${v}'`);
  return v;
}

export function paddingOption(v: string): 'answered' | 'repeat' {
  if (v !== 'answered' && v !== 'repeat') throw new UsageError(`--padding must be 'answered' or 'repeat', not '${v}'`);
  return v;
}

export function dispatchOption(v: string): 'single-queue' | 'round-robin' | 'fastest-free' {
  if (v !== 'single-queue' && v !== 'round-robin' && v !== 'fastest-free')
    throw new UsageError(`--dispatch must be 'single-queue', 'round-robin' or 'fastest-free', not '${v}'`);
  return v;
}

/** --transport grpc|rest: how the load generator reaches the frontends and the frontends reach the instances. */
export function transportOption(v: string | undefined, fallback: 'grpc' | 'rest'): 'grpc' | 'rest' {
  if (v === undefined) return fallback;
  if (v !== 'grpc' && v !== 'rest')
    throw new UsageError(`--transport must be 'grpc' (V2 gRPC) or 'rest' (V2 REST with binary tensors), not '${v}'`);
  return v;
}

export function parseBackground(v: string | undefined): Stragglers['backgroundCpu'] {
  if (v === undefined) return undefined;
  const m = /^(\d+)(?::([0-9.]+))?$/.exec(v);
  const processes = m === null ? NaN : Number(m[1]);
  const duty = m?.[2] === undefined ? 0.5 : Number(m[2]);
  if (!Number.isInteger(processes) || !(duty > 0 && duty <= 1))
    throw new UsageError(`--background-cpu must be N or N:DUTY with DUTY in (0, 1], got '${v}'`);
  return { processes, duty };
}

export function parseNetworkOption(v: string) {
  try {
    return parseNetwork(v);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

/** The straggler options every serving experiment takes (--slow-prob, --slow-ms, --slow-periods, --latency-trace, --background-cpu, --network). */
export function stragglersFrom(values: Record<string, string | boolean | undefined>, defaultSlowProb: number): Stragglers {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const slowPeriods = str('slow-periods');
  const latencyTrace = str('latency-trace');
  const backgroundCpu = str('background-cpu');
  const network = str('network');
  return {
    slowProb: numberOption(str('slow-prob'), 'slow-prob', defaultSlowProb),
    slowMs: numberOption(str('slow-ms'), 'slow-ms', 100),
    ...(slowPeriods !== undefined ? { slowPeriods } : {}),
    ...(latencyTrace !== undefined ? { latencyTrace } : {}),
    ...(backgroundCpu !== undefined ? { backgroundCpu: parseBackground(backgroundCpu) } : {}),
    ...(network !== undefined ? { network: parseNetworkOption(network) } : {}),
  };
}

export function parseModes(v: string | undefined, fallback: ServingModeName[]): ServingModeName[] {
  if (v === undefined) return fallback;
  const modes = v.split(',').map((m) => m.trim()) as ServingModeName[];
  for (const m of modes) if (!SERVING_MODES.includes(m)) throw new UsageError(`unknown mode '${m}': use ${SERVING_MODES.join(', ')}`);
  return modes;
}

export function onOff(v: string | undefined, name: string, fallback: boolean): boolean {
  if (v === undefined) return fallback;
  if (v === 'on' || v === 'true') return true;
  if (v === 'off' || v === 'false') return false;
  throw new UsageError(`--${name} must be on or off, got '${v}'`);
}
