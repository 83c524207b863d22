// A model instance in simulated time, for the planner and the policy tests: one request at a
// time in arrival order (like `coded serve instance`, whose forward passes run one by one on
// its worker thread), each taking a service time plus whatever the fault injector decides
// (stalls, slow periods, trace latency, failures) — the same FaultInjector the real instances use.
import type { Clock } from '../serve/clock.js';
import type { FaultInjector } from '../serve/faults.js';
import type { InferCall, InstanceClient, InstanceFailure } from '../serve/instance-client.js';

interface Pending {
  call: InferCall;
  done: (out: Float32Array) => void;
  failed: (e: InstanceFailure) => void;
}

export interface SimulatedInstanceOptions {
  clock: Clock;
  /** compute time of the next request (ms) */
  serviceMs: () => number;
  faults?: FaultInjector;
  /** what the instance computes (default: identity, a copy of the input) */
  compute?: (data: Float32Array) => Float32Array;
}

export class SimulatedInstance implements InstanceClient {
  private readonly queue: Pending[] = [];
  private busy = false;
  served = 0;
  /** time the instance spent computing (ms), for utilisation */
  busyMs = 0;

  constructor(private readonly o: SimulatedInstanceOptions) {}

  infer(call: InferCall, done: (out: Float32Array) => void, failed: (e: InstanceFailure) => void): void {
    this.queue.push({ call, done, failed });
    if (!this.busy) this.startNext();
  }

  private startNext(): void {
    const p = this.queue.shift();
    if (p === undefined) {
      this.busy = false;
      return;
    }
    this.busy = true;
    const f = this.o.faults?.next(this.o.clock.now());
    const ms = this.o.serviceMs() * (f?.computeFactor ?? 1) + (f?.delayMs ?? 0);
    this.busyMs += ms;
    this.o.clock.after(ms, () => {
      if (f?.fail === true) p.failed({ message: 'injected failure', retryable: true, instanceDown: false });
      else {
        this.served++;
        p.done(this.o.compute === undefined ? p.call.data.slice() : this.o.compute(p.call.data));
      }
      this.startNext();
    });
  }

  modelReady(): Promise<boolean> {
    return Promise.resolve(true);
  }

  close(): void {
    this.queue.length = 0;
  }
}
