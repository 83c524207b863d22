// Worker-thread side of AsyncForward: owns one model and runs its forward passes off the
// main event loop. Messages: init -> ready | error; forward -> result | error.
import { parentPort } from 'node:worker_threads';
import { pathToFileURL } from 'node:url';
import { isAbsolute, resolve } from 'node:path';
import { tensor } from '../engine/tensor.js';
import { tidy } from '../engine/scope.js';
import { noGrad } from '../engine/autograd.js';
import { setNumThreads } from '../engine/runtime.js';
import { Module, forwardInputs } from '../nn/module.js';
import { loadCheckpointInto } from '../nn/checkpoint.js';
import type { ForwardRequest, ModelSpec, WorkerReply } from './async-forward.js';

if (parentPort === null) throw new Error('forward-worker must run in a worker thread');
const port = parentPort;
let model: Module | null = null;
let device = 'cpu';

function reply(m: WorkerReply, transfer: ArrayBuffer[] = []): void {
  port.postMessage(m, transfer);
}

async function init(spec: ModelSpec): Promise<void> {
  if (spec.threads !== undefined) setNumThreads(spec.threads);
  const url = spec.module.startsWith('file:')
    ? spec.module
    : pathToFileURL(isAbsolute(spec.module) ? spec.module : resolve(spec.module)).href;
  const mod = (await import(url)) as Record<string, unknown>;
  const factory = mod[spec.export ?? 'default'];
  if (typeof factory !== 'function')
    throw new Error(`${spec.module} has no exported function '${spec.export ?? 'default'}' that builds the model`);
  const built = await (factory as (o: unknown) => unknown)(spec.options);
  if (!(built instanceof Module)) throw new Error(`${spec.module}: '${spec.export ?? 'default'}' did not return an nn Module`);
  model = built;
  if (spec.checkpoint !== undefined) loadCheckpointInto(spec.checkpoint, model);
  device = spec.device ?? 'cpu';
  model.to(device).eval();
}

port.on('message', (m: { type: 'init'; spec: ModelSpec } | ForwardRequest) => {
  if (m.type === 'init') {
    init(m.spec).then(
      () => reply({ type: 'ready' }),
      (e: Error) => reply({ type: 'error', id: -1, message: e.message }),
    );
    return;
  }
  try {
    if (model === null) throw new Error('model not initialised');
    const m0 = model;
    const { data, shape } = tidy(() =>
      noGrad(() => {
        const inputs = [{ data: m.data, shape: m.shape }, ...(m.side ?? [])].map((t) =>
          tensor(t.data, t.shape, { dtype: 'float32', device }),
        );
        const y = forwardInputs(m0, inputs, 'the model');
        return { data: y.dataFloat32(), shape: y.shape };
      }),
    );
    reply({ type: 'result', id: m.id, data, shape }, [data.buffer as ArrayBuffer]);
  } catch (e) {
    reply({ type: 'error', id: m.id, message: (e as Error).message });
  }
});
