// How busy the machine was while a benchmark ran, from Linux /proc (clock ticks of USER_HZ =
// 100): the share of all CPUs used by processes other than the benchmark's own, so reports can
// warn instead of printing numbers that a busy machine made meaningless.
import { readFileSync } from 'node:fs';

const TICKS_PER_S = 100;
export interface CpuSnapshot {
  /** all CPUs: busy and total ticks */
  busy: number;
  total: number;
  /** this process's CPU time, in ticks */
  own: number;
}

export function cpuSnapshot(): CpuSnapshot | null {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const v = line.trim().split(/\s+/).slice(1, 9).map(Number); // user nice system idle iowait irq softirq steal
    const total = v.reduce((a, b) => a + b, 0);
    const u = process.cpuUsage();
    return { busy: total - v[3] - v[4], total, own: ((u.user + u.system) / 1e6) * TICKS_PER_S };
  } catch {
    return null;
  }
}

export function processTicks(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' '); // fields from 3 (state) on
    return Number(f[11]) + Number(f[12]); // utime + stime (fields 14, 15)
  } catch {
    return null;
  }
}

export function otherShare(a: CpuSnapshot | null, b: CpuSnapshot | null, peerTicks: number | null): number | null {
  if (a === null || b === null || peerTicks === null || b.total <= a.total) return null;
  const other = b.busy - a.busy - (b.own - a.own) - peerTicks;
  return Math.min(1, Math.max(0, other / (b.total - a.total)));
}

/** Watch the CPU share taken by other processes than this one and `ours()` (child pids) between start and stop. */
export class CpuShareWatch {
  private a: CpuSnapshot | null;
  private readonly ticks0: number;
  constructor(private readonly ours: () => (number | undefined)[]) {
    this.a = cpuSnapshot();
    this.ticks0 = this.childTicks();
  }
  private childTicks(): number {
    return this.ours().reduce<number>((s, pid) => s + (processTicks(pid) ?? 0), 0);
  }
  /** share in [0, 1] of all CPUs used by other processes since the watch began (null where /proc is missing) */
  otherShare(): number | null {
    return otherShare(this.a, cpuSnapshot(), this.childTicks() - this.ticks0);
  }
}
