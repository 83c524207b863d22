// `coded bench stall`: can one request stall everyone? A frontend process with default settings
// over noop instances serves a steady stream of normal queries (gRPC, open loop) while, one at a
// time, bad or expensive requests are sent to it: a deeply nested JSON body, a 16 MB flat JSON
// array, 4M floats in gRPC typed contents, the largest JSON and typed requests the limits allow,
// and slow senders (REST and gRPC) that never finish their request. For each, the normal
// queries' latency in the window after it (from their send time) against the baseline before
// any, the bad request's own answer, the frontend CPU it cost (its window's CPU minus that of a
// baseline window measured the same way under the same load without a bad request, scaled to
// the window's length), and for the slow senders how long they were kept and the frontend's memory. Every bad request is built before the measurement starts, and the load
// generator's own event-loop delay is reported: each bad request is built and sent by a child
// process (./stall-sender.ts), so the generator does not stall itself.
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { performance, monitorEventLoopDelay } from 'node:perf_hooks';
import { V2GrpcClient } from '../serve/client.js';
import { startInstanceProcess, startFrontendProcess, killOnExit, type ChildInstance, type ListeningChild } from '../serve/processes.js';
import { fmt } from './serving-experiment.js';

export interface AttackResult {
  name: string;
  /** what the bad request got back */
  answer: string;
  /** how long the bad request took to be answered (ms) */
  answerMs: number;
  /** normal queries sent in the window and their latency */
  queries: number;
  p50Ms: number;
  maxMs: number;
  /** worst normal query in the window minus the baseline median: what the bad request added */
  addedMs: number;
  /** the load generator's own worst event-loop delay in the window (ms): above a few ms the window is suspect */
  generatorLagMs: number;
  /** the frontend's worst event-loop delay in the window (ms; its nodejs_eventloop_lag_max_seconds): how long it could not serve anyone */
  frontendLagMs: number;
  /** CPU time the frontend spent in the window (ms, 10 ms clock ticks): the normal load's share included */
  frontendCpuMs: number;
  /**
   * what the bad request cost the frontend in CPU (ms): frontendCpuMs minus the frontend's CPU in
   * the baseline window (same procedure and load, no bad request), scaled to this window's
   * length. About 0 for a request refused at once; +-20 ms is the clock ticks' resolution.
   */
  extraCpuMs: number;
  /** the window's length (ms): from the CPU reading before the bad request to the one after */
  windowMs: number;
  note?: string;
}

export interface StallResult {
  baseline: {
    queries: number;
    p50Ms: number;
    p99Ms: number;
    maxMs: number;
    frontendLagMs: number;
    /** the frontend's CPU in a window measured like an attack's, with no bad request */
    cpu: CpuWindow;
  };
  attacks: AttackResult[];
  /** the worst addedMs over all attacks */
  worstAddedMs: number;
  failedNormal: number;
}

/** CPU time a process used over a stretch of time (both ms) */
export interface CpuWindow {
  cpuMs: number;
  ms: number;
}

/** A normal query: when it was sent (ms, the generator's clock) and its latency (ms). */
export interface NormalSample {
  at: number;
  ms: number;
}

/**
 * The CPU a bad request cost (ms): the window's CPU minus the baseline window's, scaled to the
 * window's length (the load is open loop: the same queries per ms with or without it). NaN
 * without a baseline.
 */
export function extraCpuMs(window: CpuWindow, baseline: CpuWindow): number {
  if (!(baseline.ms > 0) || !Number.isFinite(baseline.cpuMs)) return NaN;
  return window.cpuMs - (baseline.cpuMs * window.ms) / baseline.ms;
}

/**
 * One attack's row from what was measured around it: the normal queries sent from 50 ms
 * before the bad request until the window's end, their latency against the baseline median,
 * and the CPU against the baseline window.
 */
export function attackResult(m: {
  name: string;
  answer: string;
  answerMs: number;
  normal: readonly NormalSample[];
  start: number;
  end: number;
  baselineP50Ms: number;
  generatorLagMs: number;
  frontendLagMs: number;
  cpu: CpuWindow;
  baselineCpu: CpuWindow;
  note?: string;
}): AttackResult {
  const ws = m.normal
    .filter((n) => n.at >= m.start - 50 && n.at <= m.end)
    .map((n) => n.ms)
    .sort((a, b) => a - b);
  const maxMs = ws[ws.length - 1] ?? NaN;
  return {
    name: m.name,
    answer: m.answer,
    answerMs: m.answerMs,
    queries: ws.length,
    p50Ms: q(ws, 0.5),
    maxMs,
    addedMs: maxMs - m.baselineP50Ms,
    generatorLagMs: m.generatorLagMs,
    frontendLagMs: m.frontendLagMs,
    frontendCpuMs: m.cpu.cpuMs,
    extraCpuMs: extraCpuMs(m.cpu, m.baselineCpu),
    windowMs: m.cpu.ms,
    ...(m.note !== undefined ? { note: m.note } : {}),
  };
}

const q = (s: number[], p: number) => (s.length === 0 ? NaN : s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]);
/** CPU time a process has used (user + system, ms; /proc/PID/stat, clock ticks of 10 ms) */
const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) * 10;
};
const rssMb = (pid: number) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? NaN : Number(m[1]) / 1024;
};

/** A stall-sender child (./stall-sender.ts) that has built its request; go() sends it and resolves with its answer. */
async function startSender(
  kind: string,
  httpPort: number,
  grpcPort: number,
  dim: number,
  n: number,
): Promise<{ go: () => Promise<string> }> {
  const script = join(dirname(fileURLToPath(import.meta.url)), 'stall-sender.js');
  const child = spawn(process.execPath, [script, kind, String(httpPort), String(grpcPort), String(dim), String(n)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const next = () =>
    new Promise<string>((resolve, reject) => {
      lines.once('line', resolve);
      child.once('exit', (c) => reject(new Error(`stall sender ${kind} exited (${c})`)));
    });
  const ready = await next();
  if (ready !== 'ready') throw new Error(`stall sender ${kind}: ${ready}`);
  return {
    go: async () => {
      const answer = next();
      child.stdin!.write('go\n');
      const r = JSON.parse(await answer) as { answer: string };
      return r.answer;
    },
  };
}

export async function runStall(o: {
  rate: number;
  windowMs: number;
  slow: number;
  dim: number;
  log: (s: string) => void;
}): Promise<StallResult> {
  const { log, dim } = o;
  const tmp = mkdtempSync(join(tmpdir(), 'coded-stall-'));
  const insts: ChildInstance[] = [];
  let fe: ListeningChild | null = null;
  const children = killOnExit(() => [...insts.map((i) => i.proc), ...(fe !== null ? [fe.proc] : [])]);
  try {
    for (let i = 0; i < 2; i++)
      insts.push(await startInstanceProcess(['--model', `noop:${dim}`, '--name', 'model'], { timeoutMs: 120000 }));
    const path = join(tmp, 'frontend.json');
    writeFileSync(
      path,
      JSON.stringify({
        name: 'bench',
        httpPort: 0,
        grpcPort: 0,
        mode: 'none',
        logLevel: 'warn',
        pools: { base: { model: 'model', instances: insts.map((i) => i.address) } },
      }),
    );
    fe = await startFrontendProcess(path);
    const f = fe;
    log(`frontend (mode none, defaults) over 2 noop:${dim} instances; normal load ${o.rate}/s over gRPC`);

    // the normal load: open loop, latency from the actual send
    const client = new V2GrpcClient(`127.0.0.1:${f.grpc}`);
    const x = Float32Array.from({ length: dim }, (_, i) => Math.cos(i));
    for (let i = 0; i < 50; i++) await client.infer('bench', 'input', x, [1, dim], 5000);
    const normal: { at: number; ms: number }[] = [];
    let failedNormal = 0;
    let running = true;
    const interval = 1000 / o.rate;
    let nextAt = performance.now();
    const tick = () => {
      if (!running) return;
      const now = performance.now();
      while (nextAt <= now) {
        const sent = performance.now();
        client.infer('bench', 'input', x, [1, dim], 10000).then(
          () => normal.push({ at: sent, ms: performance.now() - sent }),
          () => failedNormal++,
        );
        nextAt += interval;
      }
      setTimeout(tick, Math.max(0, Math.min(5, nextAt - performance.now())));
    };
    tick();
    const lag = monitorEventLoopDelay({ resolution: 5 });
    lag.enable();
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    const frontendLagMs = async () => {
      const text = await (await fetch(`http://127.0.0.1:${f.http}/metrics`)).text();
      const m = /^nodejs_eventloop_lag_max_seconds (\S+)/m.exec(text);
      return m === null ? NaN : Number(m[1]) * 1000;
    };
    await sleep(3000);
    const t0 = performance.now();
    await frontendLagMs();
    await sleep(3000);
    const baseLag = await frontendLagMs();
    const base = normal
      .filter((n) => n.at >= t0)
      .map((n) => n.ms)
      .sort((a, b) => a - b);

    /**
     * Send one bad request and measure around it: the frontend's CPU from just before it to
     * windowMs (or its answer, if later) + 1.5 s after, its worst event-loop delay, the normal
     * queries sent meanwhile.
     */
    const measureWindow = async (send: () => Promise<string>, windowMs = o.windowMs) => {
      await sleep(500);
      lag.reset();
      await frontendLagMs(); // resets the frontend's maximum
      const cpu0 = cpuMs(f.proc.pid!);
      const cpuAt0 = performance.now();
      const start = performance.now();
      const answer = await send();
      const answerMs = performance.now() - start;
      const end = Math.max(start + windowMs, performance.now());
      await sleep(Math.max(0, end - performance.now()) + 1500);
      const feLag = await frontendLagMs();
      const cpu: CpuWindow = { cpuMs: cpuMs(f.proc.pid!) - cpu0, ms: performance.now() - cpuAt0 };
      return { answer, answerMs, start, end, feLag, cpu, generatorLagMs: lag.max / 1e6 };
    };
    // the baseline window: the same procedure and load, no bad request
    const baseWin = await measureWindow(async () => 'none');
    const baseline = {
      queries: base.length,
      p50Ms: q(base, 0.5),
      p99Ms: q(base, 0.99),
      maxMs: base[base.length - 1],
      frontendLagMs: baseLag,
      cpu: baseWin.cpu,
    };
    log(
      `baseline: ${base.length} queries, p50 ${fmt(baseline.p50Ms)} ms, p99 ${fmt(baseline.p99Ms)} ms, max ${fmt(baseline.maxMs)} ms; frontend event loop held up to ${fmt(baseLag)} ms; frontend CPU ${fmt(baseWin.cpu.cpuMs)} ms in a window of ${fmt(baseWin.cpu.ms)} ms`,
    );

    const attacks: AttackResult[] = [];
    const measure = async (name: string, send: () => Promise<string>, windowMs = o.windowMs, note?: () => string) => {
      const w = await measureWindow(send, windowMs);
      const r = attackResult({
        name,
        answer: w.answer,
        answerMs: w.answerMs,
        normal,
        start: w.start,
        end: w.end,
        baselineP50Ms: baseline.p50Ms,
        generatorLagMs: w.generatorLagMs,
        frontendLagMs: w.feLag,
        cpu: w.cpu,
        baselineCpu: baseline.cpu,
        ...(note !== undefined ? { note: note() } : {}),
      });
      attacks.push(r);
      log(
        `${name}: answered in ${fmt(r.answerMs)} ms (${r.answer.slice(0, 90)}); normal queries: ${r.queries}, p50 ${fmt(r.p50Ms)} ms, max ${fmt(r.maxMs)} ms (+${fmt(r.addedMs)} ms over the baseline median); frontend event loop held up to ${fmt(r.frontendLagMs)} ms, frontend CPU ${fmt(r.frontendCpuMs)} ms in ${fmt(r.windowMs)} ms, ${fmt(r.extraCpuMs)} ms over the baseline window; generator ${fmt(r.generatorLagMs)} ms${r.note ? `; ${r.note}` : ''}`,
      );
    };
    const kinds: [string, string, number?][] = [
      ['nested', 'REST: 16 MB of nested JSON arrays (refused from its Content-Length)'],
      ['nested', 'REST: 2 MB of nested JSON arrays (under the JSON byte limit: the depth scan)', 2],
      ['flat', 'REST: 16 MB flat JSON array, 8M numbers (refused from its Content-Length)'],
      ['flat', 'REST: 2 MB flat JSON array, 1M numbers (under the JSON byte limit: the value count)', 2],
      ['json-max', `REST: the largest JSON tensor the frontend takes (64 x ${dim} numbers)`],
      ['typed-4m', 'gRPC: 4M floats in typed contents (16 MB)'],
      ['typed-max', `gRPC: the largest typed contents the frontend takes (${Math.min(64, Math.floor((1 << 18) / dim))} x ${dim} floats)`],
    ];
    for (const [kind, name, mb] of kinds) {
      const sender = await startSender(kind, f.http, f.grpc, dim, mb ?? 0);
      await measure(name, sender.go);
    }
    // slow senders: their memory in the frontend, and how long they are kept
    const rss0 = rssMb(f.proc.pid!);
    let peakRss = rss0;
    const watch = setInterval(() => (peakRss = Math.max(peakRss, rssMb(f.proc.pid!))), 500);
    const slow = await startSender('slow', f.http, f.grpc, dim, o.slow);
    await measure(
      `${o.slow} REST + ${o.slow} gRPC slow senders (1 MiB announced, under the size limit; 1 KB every 200 ms), kept until cut off`,
      slow.go,
      o.windowMs,
      () => `frontend RSS ${rss0.toFixed(0)} MB before, peak ${peakRss.toFixed(0)} MB while they were connected`,
    );
    clearInterval(watch);
    running = false;
    await sleep(500);
    lag.disable();
    client.close();
    return { baseline, attacks, worstAddedMs: Math.max(...attacks.map((a) => a.addedMs)), failedNormal };
  } finally {
    await Promise.all([...(fe !== null ? [fe.stop()] : []), ...insts.map((i) => i.stop('SIGTERM'))]);
    children.release();
    rmSync(tmp, { recursive: true, force: true });
  }
}

export function stallMarkdown(r: StallResult, rate: number): string {
  return [
    '# coded bench stall',
    '',
    `Normal gRPC queries at ${rate}/s through a frontend with default settings; baseline ${r.baseline.queries} queries: p50 ${fmt(r.baseline.p50Ms)} ms, p99 ${fmt(r.baseline.p99Ms)} ms, max ${fmt(r.baseline.maxMs)} ms, the frontend's event loop held up to ${fmt(r.baseline.frontendLagMs)} ms. Normal queries that failed: ${r.failedNormal}.`,
    '',
    `Frontend CPU: each bad request's window (from just before it to the window's end, 1.5 s after) against a baseline window measured the same way under the same load with no bad request: ${fmt(r.baseline.cpu.cpuMs)} ms of CPU in ${fmt(r.baseline.cpu.ms)} ms. "Extra CPU" is the window's CPU minus the baseline's scaled to the window's length (10 ms clock ticks: +-20 ms is noise).`,
    '',
    '| bad request | its answer | answered in ms | normal queries in the window | p50 ms | max ms | added over the baseline median ms | frontend event loop held, max ms | frontend extra CPU over the baseline window, ms | generator lag ms |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...r.attacks.map(
      (a) =>
        `| ${a.name} | ${a.answer.replace(/\|/g, '/').slice(0, 120)} | ${fmt(a.answerMs)} | ${a.queries} | ${fmt(a.p50Ms)} | ${fmt(a.maxMs)} | ${fmt(a.addedMs)} | ${fmt(a.frontendLagMs)} | ${fmt(a.extraCpuMs)} (${fmt(a.frontendCpuMs)} in ${fmt(a.windowMs)} ms) | ${fmt(a.generatorLagMs)} |`,
    ),
    '',
    ...r.attacks.filter((a) => a.note !== undefined).map((a) => `${a.name}: ${a.note}.`),
    '',
    `Worst delay added to a normal query: ${fmt(r.worstAddedMs)} ms (bar: 100 ms, ${r.worstAddedMs <= 100 ? 'met' : '**not met**'}); the frontend's event loop was held at most ${fmt(Math.max(...r.attacks.map((a) => a.frontendLagMs)))} ms at a time.`,
    '',
  ].join('\n');
}
