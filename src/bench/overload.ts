// `coded bench overload`: what the frontend does with more load than it can serve. Instance
// processes with a fixed service time (so the capacity is known), one frontend process with
// default settings (only the pools, the mode and the code given), and an open-loop Poisson load
// in three phases: below capacity, FACTOR x capacity, below capacity again. Every query's outcome
// is recorded from its intended send time: answered (original / reconstructed / default),
// refused (429 / RESOURCE_EXHAUSTED, and how fast), or lost (any other error, or no answer).
// The bar (issue 15): at 10x for 20 s, >= 90% of the excess refused at once, the accepted
// queries' p99 within the SLO, none lost, and normal service right after.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { V2GrpcClient } from '../serve/client.js';
import { startInstanceProcess, startFrontendProcess, killOnExit, type ChildInstance, type ListeningChild } from '../serve/processes.js';
import type { FrontendConfig } from '../serve/config.js';
import { poissonSchedule, openLoop } from '../serve/load-generator.js';
import { fmt } from './serving-experiment.js';
import { CpuShareWatch } from './cpu-load.js';

export type Outcome = 'original' | 'reconstructed' | 'default' | 'refused' | 'lost';

export interface PhaseResult {
  phase: 'before' | 'overload' | 'after';
  seconds: number;
  offeredRate: number;
  offered: number;
  answered: number;
  defaults: number;
  refused: number;
  lost: number;
  /** answered queries (originals, reconstructions, defaults), from the intended send time */
  latencyMs: { p50: number; p99: number; p999: number; max: number } | null;
  /** refusals, from the intended send time */
  refusalMs: { p50: number; p99: number; max: number } | null;
  /** queries the nominal capacity cannot serve in the phase (offered - capacity x seconds), and the share of them refused */
  excess: number;
  refusedOfExcess: number | null;
  /** answered queries over the SLO (defaults included: they are answered at the SLO) */
  overSlo: number;
}

export interface OverloadResult {
  mode: string;
  config: string;
  serviceMs: number;
  capacity: number;
  sloMs: number;
  admission: boolean;
  phases: PhaseResult[];
  /** how late the load generator sent (actual - intended), ms: its p99 and max */
  sendLagMs: { p99: number; max: number };
  otherCpuShare: number | null;
  /** the frontend's refusals by reason (coded_rejected_total): latency (admission control), pending, queue */
  refusedBy: Record<string, number>;
  /** the bar of issue 15, checked */
  bar: { refusedOfExcess: boolean; acceptedP99WithinSlo: boolean; noneLost: boolean; normalAfter: boolean };
}

const quantile = (sorted: number[], q: number): number =>
  sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))];

export interface OverloadSpec {
  mode: 'coded' | 'equal-resources' | 'replication' | 'none';
  base: number;
  parity: number;
  latency: string;
  model: string;
  factor: number;
  seconds: number;
  before: number;
  after: number;
  baseLoad: number;
  sloMs?: number;
  decodeDeadlineMs?: number;
  admission: boolean;
  seed: number;
  log: (s: string) => void;
}

interface Record1 {
  phase: number;
  intended: number;
  sent: number;
  end: number;
  outcome: Outcome;
}

export async function runOverload(x: OverloadSpec): Promise<OverloadResult> {
  const log = x.log;
  const tmp = mkdtempSync(join(tmpdir(), 'coded-overload-'));
  const insts: ChildInstance[] = [];
  let fe: ListeningChild | null = null;
  const children = killOnExit(() => [...insts.map((i) => i.proc), ...(fe !== null ? [fe.proc] : [])]);
  try {
    const n = x.mode === 'none' ? x.base : x.base + x.parity;
    const args = ['--model', x.model, '--name', 'model', '--latency', x.latency];
    const started = await Promise.allSettled(
      Array.from({ length: n }, (_, i) => startInstanceProcess([...args, '--seed', String(i + 1)], { timeoutMs: 120000 })),
    );
    for (const s of started) if (s.status === 'fulfilled') insts.push(s.value);
    for (const s of started) if (s.status === 'rejected') throw s.reason;
    const addrs = insts.map((i) => i.address);
    // the service time, as a client sees it: sequential requests to one instance
    const probe = new V2GrpcClient(addrs[0]);
    const meta = await probe.modelMetadata('model', 10000);
    const shape = meta.inputs[0].shape.slice(1).map(Number);
    const input = Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, (_, i) => Math.sin(i));
    const rtt: number[] = [];
    for (let i = 0; i < 30; i++) {
      const t0 = performance.now();
      await probe.infer('model', 'input', input, [1, ...shape], 10000);
      if (i >= 5) rtt.push(performance.now() - t0);
    }
    probe.close();
    rtt.sort((a, b) => a - b);
    const serviceMs = quantile(rtt, 0.5);
    const per = 1000 / serviceMs;
    const capacity =
      x.mode === 'coded'
        ? Math.min(x.base, x.parity * 2) * per
        : x.mode === 'none'
          ? x.base * per
          : x.mode === 'replication'
            ? (n / 2) * per
            : n * per;
    const cfg: FrontendConfig = {
      name: 'bench',
      httpPort: 0,
      grpcPort: 0,
      mode: x.mode,
      logLevel: 'warn',
      ...(x.sloMs !== undefined ? { sloMs: x.sloMs } : {}),
      ...(x.decodeDeadlineMs !== undefined ? { decodeDeadlineMs: x.decodeDeadlineMs } : {}),
      ...(x.admission ? {} : { admission: { enabled: false } }),
      ...(x.mode === 'coded'
        ? {
            code: { family: 'addition', k: 2, r: 1 },
            pools: {
              base: { model: 'model', instances: addrs.slice(0, x.base) },
              parity: [{ model: 'model', instances: addrs.slice(x.base) }],
            },
          }
        : { pools: { base: { model: 'model', instances: addrs } } }),
    };
    const desc =
      x.mode === 'coded' ? `${x.base} base + ${x.parity} parity, addition k=2 r=1` : `${n} base${x.mode === 'none' ? '' : ' replicas'}`;
    const path = join(tmp, 'frontend.json');
    writeFileSync(path, JSON.stringify(cfg));
    fe = await startFrontendProcess(path);
    const sloMs = x.sloMs ?? 1000;
    log(
      `${n} instances (${x.latency}, measured ${fmt(serviceMs)} ms per request); frontend ${x.mode} (${desc}), defaults${x.admission ? '' : ' but admission off'}; nominal capacity ${fmt(capacity)} queries/s`,
    );
    const client = new V2GrpcClient(`127.0.0.1:${fe.grpc}`);
    // warm-up: the frontend measures the instances' service time (admission control needs 20 requests)
    for (let i = 0; i < 40; i++) await client.infer('bench', 'input', input, [1, ...shape], 10000).catch(() => undefined);
    const phases = [
      { name: 'before' as const, seconds: x.before, rate: x.baseLoad * capacity },
      { name: 'overload' as const, seconds: x.seconds, rate: x.factor * capacity },
      { name: 'after' as const, seconds: x.after, rate: x.baseLoad * capacity },
    ];
    // one schedule: each phase's Poisson arrivals, back to back
    const intended: number[] = [];
    const phaseOf: number[] = [];
    let t0 = 0;
    phases.forEach((p, j) => {
      const count = Math.round(p.rate * p.seconds);
      const s = poissonSchedule(count, p.rate, x.seed + j);
      for (const t of s)
        if (t < p.seconds * 1000) {
          intended.push(t0 + t);
          phaseOf.push(j);
        }
      t0 += p.seconds * 1000;
    });
    log(`phases: ${phases.map((p) => `${p.name} ${p.seconds} s at ${fmt(p.rate)}/s`).join(', ')}: ${intended.length} queries`);
    const recs: Record1[] = [];
    const watch = new CpuShareWatch(() => [...insts.map((i) => i.proc.pid), fe!.proc.pid]);
    await openLoop(
      intended,
      (i, at) => {
        const sent = performance.now();
        const r: Record1 = { phase: phaseOf[i], intended: at, sent, end: 0, outcome: 'lost' };
        recs.push(r);
        return client
          .infer('bench', 'input', input, [1, ...shape], sloMs * 5)
          .then(
            (res) => {
              r.outcome =
                res.parameters.default === true ? 'default' : res.parameters.reconstructed === true ? 'reconstructed' : 'original';
            },
            (e: grpc.ServiceError) => {
              r.outcome = e.code === grpc.status.RESOURCE_EXHAUSTED ? 'refused' : 'lost';
            },
          )
          .finally(() => {
            r.end = performance.now();
          });
      },
      50,
    ).done;
    const otherCpuShare = watch.otherShare();
    client.close();
    // the frontend's own count of refusals, by reason
    const metrics = await (await fetch(`http://127.0.0.1:${fe.http}/metrics`)).text();
    const refusedBy: Record<string, number> = {};
    for (const m of metrics.matchAll(/^coded_rejected_total\{[^}]*reason="([^"]+)"[^}]*\} (\S+)$/gm))
      refusedBy[m[1]] = (refusedBy[m[1]] ?? 0) + Number(m[2]);
    const lags = recs.map((r) => r.sent - r.intended).sort((a, b) => a - b);
    const results: PhaseResult[] = phases.map((p, j) => {
      const rs = recs.filter((r) => r.phase === j);
      const answered = rs.filter((r) => r.outcome === 'original' || r.outcome === 'reconstructed' || r.outcome === 'default');
      const lat = answered.map((r) => r.end - r.intended).sort((a, b) => a - b);
      const ref = rs
        .filter((r) => r.outcome === 'refused')
        .map((r) => r.end - r.intended)
        .sort((a, b) => a - b);
      const excess = Math.max(0, rs.length - capacity * p.seconds);
      return {
        phase: p.name,
        seconds: p.seconds,
        offeredRate: p.rate,
        offered: rs.length,
        answered: answered.length,
        defaults: rs.filter((r) => r.outcome === 'default').length,
        refused: ref.length,
        lost: rs.filter((r) => r.outcome === 'lost').length,
        latencyMs:
          lat.length === 0
            ? null
            : { p50: quantile(lat, 0.5), p99: quantile(lat, 0.99), p999: quantile(lat, 0.999), max: lat[lat.length - 1] },
        refusalMs: ref.length === 0 ? null : { p50: quantile(ref, 0.5), p99: quantile(ref, 0.99), max: ref[ref.length - 1] },
        excess,
        refusedOfExcess: excess > 0 ? ref.length / excess : null,
        overSlo: lat.filter((v) => v > sloMs).length,
      };
    });
    const [, over, after] = results;
    const bar = {
      refusedOfExcess: over.refusedOfExcess !== null && over.refusedOfExcess >= 0.9,
      acceptedP99WithinSlo: over.latencyMs !== null && over.latencyMs.p99 <= sloMs,
      noneLost: results.every((r) => r.lost === 0),
      normalAfter: after.refused === 0 && after.defaults === 0 && after.latencyMs !== null && after.latencyMs.p99 <= sloMs,
    };
    return {
      mode: x.mode,
      config: desc,
      serviceMs,
      capacity,
      sloMs,
      admission: x.admission,
      phases: results,
      sendLagMs: { p99: quantile(lags, 0.99), max: lags[lags.length - 1] ?? NaN },
      otherCpuShare,
      refusedBy,
      bar,
    };
  } finally {
    await Promise.all([...(fe !== null ? [fe.stop()] : []), ...insts.map((i) => i.stop('SIGTERM'))]);
    children.release();
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function overloadMarkdown(r: OverloadResult, x: OverloadSpec): string {
  const ms = (v: number | undefined) => (v === undefined || Number.isNaN(v) ? '-' : fmt(v));
  const pct = (v: number | null) => (v === null ? '-' : `${(100 * v).toFixed(1)}%`);
  const yes = (b: boolean) => (b ? 'met' : '**not met**');
  return [
    '# coded bench overload',
    '',
    `Mode ${r.mode} (${r.config}), frontend defaults${x.decodeDeadlineMs !== undefined ? ` but decodeDeadlineMs ${x.decodeDeadlineMs}` : ''}${r.admission ? '' : `${x.decodeDeadlineMs !== undefined ? ' and' : ' but'} admission control off`}, SLO ${r.sloMs} ms; instances ${x.latency} (measured ${fmt(r.serviceMs)} ms per request), nominal capacity ${fmt(r.capacity)} queries/s; load ${x.baseLoad}x / ${x.factor}x / ${x.baseLoad}x capacity for ${x.before} / ${x.seconds} / ${x.after} s. Latency from each query's intended send time (load generator lag p99 ${fmt(r.sendLagMs.p99)} ms, max ${fmt(r.sendLagMs.max)} ms)${r.otherCpuShare !== null ? `; other processes used ${Math.round(100 * r.otherCpuShare)}% of the CPUs` : ''}.`,
    '',
    '| phase | offered | answered | p50 ms | p99 ms | p99.9 ms | max ms | over the SLO | defaults | refused | refusal p50 / p99 ms | refused of the excess | lost |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...r.phases.map(
      (p) =>
        `| ${p.phase} (${fmt(p.offeredRate)}/s, ${p.seconds} s) | ${p.offered} | ${p.answered} | ${ms(p.latencyMs?.p50)} | ${ms(p.latencyMs?.p99)} | ${ms(p.latencyMs?.p999)} | ${ms(p.latencyMs?.max)} | ${p.overSlo} | ${p.defaults} | ${p.refused} | ${ms(p.refusalMs?.p50)} / ${ms(p.refusalMs?.p99)} | ${pct(p.refusedOfExcess)} | ${p.lost} |`,
    ),
    '',
    `The frontend's refusals by reason: ${
      Object.entries(r.refusedBy)
        .map(([k, v]) => `${k} ${v}`)
        .join(', ') || 'none'
    } (latency: admission control; pending: maxPendingQueries; queue: maxPoolQueue).`,
    `Bar: >= 90% of the excess refused ${yes(r.bar.refusedOfExcess)}; accepted p99 within the SLO ${yes(r.bar.acceptedP99WithinSlo)}; none lost ${yes(r.bar.noneLost)}; normal service right after (no refusal, no default, p99 within the SLO) ${yes(r.bar.normalAfter)}.`,
    '',
  ].join('\n');
}
