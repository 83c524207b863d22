// Forward passes that do not block the event loop: the model lives on a worker thread
// (its own libtorch handles), and callers get promises. Used by servers.
import { Worker } from 'node:worker_threads';

export interface ModelSpec {
  /** path or file: URL of an ES module exporting a function that builds the model */
  module: string;
  /** name of that export (default 'default') */
  export?: string;
  /** passed to the builder */
  options?: unknown;
  /** safetensors checkpoint to load into the model */
  checkpoint?: string;
  device?: string;
  /** libtorch intra-op threads for this worker */
  threads?: number;
}

export interface ForwardRequest {
  type: 'forward';
  id: number;
  data: Float32Array;
  shape: number[];
  /** side inputs: the model's forwardInputs([main, ...side]) runs instead of forward(main) */
  side?: { data: Float32Array; shape: number[] }[];
}

export type WorkerReply =
  | { type: 'ready' }
  | { type: 'result'; id: number; data: Float32Array; shape: number[] }
  | { type: 'error'; id: number; message: string };

export interface ForwardResult {
  data: Float32Array;
  shape: number[];
}

export class AsyncForward {
  private nextId = 0;
  private readonly waiting = new Map<number, { resolve: (r: ForwardResult) => void; reject: (e: Error) => void }>();
  private closed = false;

  private constructor(private readonly worker: Worker) {
    worker.on('message', (m: WorkerReply) => {
      if (m.type === 'ready') return;
      const w = this.waiting.get(m.id);
      if (w === undefined) return;
      this.waiting.delete(m.id);
      if (m.type === 'result') w.resolve({ data: m.data, shape: m.shape });
      else w.reject(new Error(m.message));
    });
    worker.on('error', (e) => this.failAll(new Error(`forward worker crashed: ${e.message}`)));
    worker.on('exit', (code) => this.failAll(new Error(`forward worker exited (code ${code})`)));
  }

  /** Start a worker, build the model there and wait until it is ready. */
  static async create(spec: ModelSpec): Promise<AsyncForward> {
    const worker = new Worker(new URL('./forward-worker.js', import.meta.url));
    await new Promise<void>((resolve, reject) => {
      const onMessage = (m: WorkerReply) => {
        worker.off('message', onMessage);
        worker.off('error', onError);
        if (m.type === 'ready') resolve();
        else {
          void worker.terminate();
          reject(new Error(`model could not be loaded: ${m.type === 'error' ? m.message : 'unexpected reply'}`));
        }
      };
      const onError = (e: Error) => reject(new Error(`forward worker failed to start: ${e.message}`));
      worker.on('message', onMessage);
      worker.on('error', onError);
      worker.postMessage({ type: 'init', spec });
    });
    return new AsyncForward(worker);
  }

  /**
   * Run the model on float32 input of the given shape; the data are copied. With side inputs
   * the model must implement forwardInputs([main, ...side]) (multi-input workers).
   */
  forward(data: Float32Array, shape: number[], side?: { data: Float32Array; shape: number[] }[]): Promise<ForwardResult> {
    if (this.closed) return Promise.reject(new Error('AsyncForward is closed'));
    for (const [i, t] of [{ data, shape }, ...(side ?? [])].entries()) {
      const n = t.shape.reduce((a, b) => a * b, 1);
      if (!t.shape.every((d) => Number.isInteger(d) && d >= 0) || n !== t.data.length) {
        return Promise.reject(
          new RangeError(
            `${i === 0 ? 'input' : `side input ${i - 1}`} of ${t.data.length} values does not match shape [${t.shape.join(', ')}]`,
          ),
        );
      }
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.waiting.set(id, { resolve, reject });
      const req: ForwardRequest =
        side !== undefined && side.length > 0 ? { type: 'forward', id, data, shape, side } : { type: 'forward', id, data, shape };
      this.worker.postMessage(req);
    });
  }

  /** Requests sent and not yet answered. */
  get pending(): number {
    return this.waiting.size;
  }

  private failAll(e: Error): void {
    this.closed = true;
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  async close(): Promise<void> {
    if (this.closed && this.waiting.size === 0) {
      await this.worker.terminate();
      return;
    }
    this.closed = true;
    await this.worker.terminate();
  }
}
