// Test helpers for serving tests with real instances but no timing: a clock whose timers
// (decode deadlines, SLO, health checks) move only when the test advances it while I/O and
// immediates run for real, and connections that count the real instances' answers or hold a
// "straggler" that answers nothing until released.
import { VirtualClock, type Clock } from '../../src/serve/clock.js';
import { grpcInstanceClient, type InferCall, type InstanceClient, type InstanceFailure } from '../../src/serve/instance-client.js';

/** Virtual timers, real immediates: `virtual.advance(ms)` fires deadlines; nothing else waits on time. */
export function hybridClock(): { clock: Clock; virtual: VirtualClock } {
  const virtual = new VirtualClock();
  const clock: Clock = {
    now: () => virtual.now(),
    after: (ms, fn) => virtual.after(ms, fn),
    soon: (fn) => void setImmediate(fn),
  };
  return { clock, virtual };
}

/** Let pending I/O callbacks and immediates run (a few event-loop turns; no timers involved). */
export async function turns(n = 10): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

/**
 * Connections for Frontend's `connect` option: real V2 gRPC instances whose answers are
 * counted, except the `held` addresses, which accept requests and answer none until release().
 * Health checks report every instance ready (health is not under test).
 */
export class ScriptedConnections {
  answered = 0;
  /** requests the held instances took */
  held = 0;
  private readonly holding: ((e: InstanceFailure) => void)[] = [];
  private readonly waiters: { n: number; resolve: () => void }[] = [];

  constructor(private readonly heldAddresses: ReadonlySet<string>) {}

  readonly connect = (address: string): InstanceClient => {
    if (this.heldAddresses.has(address)) {
      return {
        infer: (_call: InferCall, _done, failed) => {
          this.held++;
          this.holding.push(failed);
        },
        modelReady: () => Promise.resolve(true),
        close: () => {},
      };
    }
    const real = grpcInstanceClient(address);
    return {
      infer: (call, done, failed) =>
        real.infer(
          call,
          (out) => {
            this.answered++;
            done(out);
            for (const w of this.waiters.splice(0)) {
              if (this.answered >= w.n) w.resolve();
              else this.waiters.push(w);
            }
          },
          failed,
        ),
      modelReady: () => Promise.resolve(true),
      close: () => real.close(),
    };
  };

  /** Resolves once `n` answers from real instances have been delivered to the frontend. */
  answers(n: number): Promise<void> {
    if (this.answered >= n) return Promise.resolve();
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }

  /** Fail every held request (so that closing does not wait for them). */
  release(): void {
    for (const f of this.holding.splice(0)) f({ message: 'released by the test', retryable: false, instanceDown: false });
  }
}
