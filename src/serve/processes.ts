// Starting model instances as child processes (`coded serve instance`), for the end-to-end
// test, the serving benchmark and the demo. Each child prints one JSON "listening" line.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { packageRoot } from '../util/package-root.js';

export interface ChildInstance {
  proc: ChildProcess;
  grpc: number;
  http: number;
  address: string;
  /** HOST:PORT of its V2 REST port (started with `http`; port -1 otherwise) */
  httpAddress: string;
  /** SIGKILL (a crash) or SIGTERM (clean) and wait for exit */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

export interface InstanceProcessOptions {
  timeoutMs?: number;
  http?: boolean;
  /** command prefix to run the instance under, e.g. a network lab's `ip netns exec NAME` */
  wrap?: string[];
  /** the address the instance is reachable at (e.g. a lab host's): it listens on 0.0.0.0 and `address` is HOST:grpcPort */
  host?: string;
}

/** A `coded serve ...` child that printed its JSON "listening" line. */
export interface ListeningChild {
  proc: ChildProcess;
  grpc: number;
  http: number;
  /** SIGTERM (clean, the default) or SIGKILL (a crash), and wait for exit (SIGKILL after 3 s) */
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/**
 * Spawn `command args` (a `coded serve ...` process, possibly under a wrapper) and resolve once
 * it prints {"event":"listening",...}; reject, with its stderr, if it exits, cannot start or
 * stays silent for timeoutMs.
 */
function spawnListening(
  label: string,
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
  onLog?: (entry: Record<string, unknown>) => void,
): Promise<ListeningChild> {
  const proc = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    const t = setTimeout(() => proc.kill('SIGKILL'), 3000);
    await exited;
    clearTimeout(t);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop('SIGKILL');
      reject(new Error(`${label} did not start within ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      try {
        const m = JSON.parse(line) as { event?: string; grpc?: number; http?: number };
        if (m.event === 'listening') {
          clearTimeout(timer);
          resolve({ proc, grpc: m.grpc!, http: m.http ?? -1, stop });
        } else {
          onLog?.(m as Record<string, unknown>);
          if (process.env.CODED_DEBUG) process.stderr.write(line + '\n');
        }
      } catch {
        // not our line (pino log lines are JSON too)
      }
    });
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`${label} could not be started: ${e.message}`));
    });
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`${label} exited (${code ?? sig}) before listening: ${stderr}`));
    });
  });
}

/**
 * SIGKILL every child of `children()` still running if this process exits first (a crash or
 * process.exit while an experiment runs). `killAll` does it now; `release` removes the hook.
 */
export function killOnExit(children: () => ChildProcess[]): { killAll(): void; release(): void } {
  const killAll = () => {
    for (const c of children()) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  };
  process.on('exit', killAll);
  return { killAll, release: () => process.off('exit', killAll) };
}

/** bin/coded: the one place that sets a server's node flags (and GLIBC_TUNABLES) */
const launcher = (): string => join(packageRoot(), 'bin', 'coded');

const childEnv = (): NodeJS.ProcessEnv => ({
  ...process.env,
  // the launcher runs this node binary (not whichever is first on PATH)
  CODED_NODE: process.env.CODED_NODE ?? process.execPath,
  // one OpenMP thread: idle OpenMP workers spinning in a server starve everything else on a small CPU
  OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1',
  GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? 'glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296',
});

/**
 * Start `coded serve instance ARGS` with free ports (on loopback unless `opts.host` is set);
 * resolves when it listens.
 */
export async function startInstanceProcess(args: string[], opts: InstanceProcessOptions = {}): Promise<ChildInstance> {
  const argv = [
    'serve',
    'instance',
    opts.http ? '--port=0' : '--port=-1',
    '--grpc-port=0',
    '--log-level',
    'warn',
    ...(opts.host !== undefined ? ['--host', '0.0.0.0'] : []),
    ...args,
  ];
  const wrap = opts.wrap ?? [];
  const label = `instance ${args.join(' ')}${wrap.length > 0 ? ` (under ${wrap.join(' ')})` : ''}`;
  const c = await spawnListening(
    label,
    wrap.length > 0 ? wrap[0] : launcher(),
    wrap.length > 0 ? [...wrap.slice(1), launcher(), ...argv] : argv,
    childEnv(),
    opts.timeoutMs ?? 30000,
  );
  const host = opts.host ?? '127.0.0.1';
  return { ...c, address: `${host}:${c.grpc}`, httpAddress: `${host}:${c.http}` };
}

/** Start `coded serve frontend --config PATH`; resolves when it listens. `onLog` sees each JSON log line it prints (pino). */
export function startFrontendProcess(
  configPath: string,
  timeoutMs = 60_000,
  onLog?: (entry: Record<string, unknown>) => void,
): Promise<ListeningChild> {
  return spawnListening(`frontend ${configPath}`, launcher(), ['serve', 'frontend', '--config', configPath], childEnv(), timeoutMs, onLog);
}
