// Worker-thread side of an instance serving an ONNX file: ONNX Runtime's Node binding runs
// session.run synchronously on the thread that calls it, so the session lives here, off the
// instance's event loop (health checks and rejections stay answered while it computes).
// Messages: init -> ready {inputShape, outputShape} | error; forward -> result | error.
import { parentPort } from 'node:worker_threads';
import { OnnxModel } from '../models/onnx.js';

export type OnnxWorkerRequest =
  | { type: 'init'; path: string; threads: number; inputShape?: number[] }
  | { type: 'forward'; id: number; data: Float32Array; batch: number };

export type OnnxWorkerReply =
  | { type: 'ready'; inputShape: number[]; outputShape: number[] }
  | { type: 'result'; id: number; data: Float32Array; shape: number[] }
  | { type: 'error'; id: number; message: string };

if (parentPort === null) throw new Error('onnx-worker must run in a worker thread');
const port = parentPort;
let model: OnnxModel | null = null;

port.on('message', (m: OnnxWorkerRequest) => {
  if (m.type === 'init') {
    (async () => {
      const loaded = await OnnxModel.load(m.path, {
        threads: m.threads,
        ...(m.inputShape !== undefined ? { inputShape: m.inputShape } : {}),
      });
      if (loaded.outputShape === null) await loaded.run(new Float32Array(loaded.inputShape.reduce((a, b) => a * b, 1)), 1);
      model = loaded;
      port.postMessage({ type: 'ready', inputShape: loaded.inputShape, outputShape: loaded.outputShape! } satisfies OnnxWorkerReply);
    })().catch((e: Error) => port.postMessage({ type: 'error', id: -1, message: e.message } satisfies OnnxWorkerReply));
    return;
  }
  const id = m.id;
  (async () => {
    if (model === null) throw new Error('model not initialised');
    const r = await model.run(m.data, m.batch);
    const data = r.data.slice();
    port.postMessage({ type: 'result', id, data, shape: r.shape } satisfies OnnxWorkerReply, [data.buffer as ArrayBuffer]);
  })().catch((e: Error) => port.postMessage({ type: 'error', id, message: e.message } satisfies OnnxWorkerReply));
});
