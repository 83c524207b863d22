// Starting model instances as child processes (`coded serve instance`), for the end-to-end
// test, the serving benchmark and the demo. Each child prints one JSON "listening" line.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { packageRoot } from './v2.js';

export interface ChildInstance {
  proc: ChildProcess;
  grpc: number;
  http: number;
  address: string;
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

/**
 * Start `coded serve instance ARGS` with free ports (on loopback unless `opts.host` is set);
 * resolves when it listens.
 */
export function startInstanceProcess(args: string[], opts: InstanceProcessOptions = {}): Promise<ChildInstance> {
  const main = join(packageRoot(), 'dist', 'src', 'cli', 'main.js');
  const argv = [main, 'serve', 'instance', opts.http ? '--port=0' : '--port=-1', '--grpc-port=0', '--log-level', 'warn', ...(opts.host !== undefined ? ['--host', '0.0.0.0'] : []), ...args];
  const wrap = opts.wrap ?? [];
  const proc = spawn(wrap.length > 0 ? wrap[0] : process.execPath, wrap.length > 0 ? [...wrap.slice(1), process.execPath, ...argv] : argv, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? '1', GLIBC_TUNABLES: process.env.GLIBC_TUNABLES ?? 'glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296' },
  });
  let stderr = '';
  proc.stderr!.on('data', (d: Buffer) => {
    if (stderr.length < 8192) stderr += d.toString();
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill(signal);
    await exited;
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop('SIGKILL');
      reject(new Error(`instance ${args.join(' ')} did not start within ${opts.timeoutMs ?? 30000} ms: ${stderr}`));
    }, opts.timeoutMs ?? 30000);
    const rl = createInterface({ input: proc.stdout! });
    rl.on('line', (line) => {
      try {
        const m = JSON.parse(line) as { event?: string; grpc?: number; http?: number };
        if (m.event === 'listening') {
          clearTimeout(timer);
          resolve({ proc, grpc: m.grpc!, http: m.http ?? -1, address: `${opts.host ?? '127.0.0.1'}:${m.grpc}`, stop });
        }
      } catch {
        // not our line
      }
    });
    proc.once('error', (e) => {
      clearTimeout(timer);
      reject(new Error(`instance ${args.join(' ')} could not be started${wrap.length > 0 ? ` under ${wrap.join(' ')}` : ''}: ${e.message}`));
    });
    proc.once('exit', (code, sig) => {
      clearTimeout(timer);
      reject(new Error(`instance ${args.join(' ')} exited (${code ?? sig}) before listening: ${stderr}`));
    });
  });
}
