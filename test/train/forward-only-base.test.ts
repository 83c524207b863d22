// A running V2 server (gRPC v2://, REST http://.../v2/models/M) or an ONNX file as F for parity
// training: forward only, batched, retried with backoff; targets through it equal local
// forwards; unreachable servers and gradient-needing uses get clear errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync } from 'fflate';
import { noGrad, tidy, tensor } from '../../src/index.js';
import { packageRoot } from '../../src/util/package-root.js';
import { TorchScriptModule } from '../../src/models/torchscript.js';
import { InstanceServer } from '../../src/serve/instance.js';
import { servedModelFrom } from '../../src/serve/served-model.js';
import { encodeNpy } from '../../src/data/npy.js';
import { Rng } from '../../src/data/rng.js';
import {
  computeOutputs,
  forwardOnlySource,
  loadForwardOnlyBase,
  parseV2Url,
  withRetries,
  type ForwardOnlySource,
} from '../../src/serve/forward-only-base.js';

const dir = join(packageRoot(), 'examples', 'own-model');
const ptFile = join(dir, 'small_cnn.pt');
const onnxFile = join(dir, 'small_cnn.onnx');
const shape = [3, 32, 32];
const per = 3 * 32 * 32;

function inputs(n: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: n * per }, () => rng.normal());
}

/** F's outputs computed locally, in the same batches as the source's requests. */
function localOutputs(x: Float32Array, n: number, batch: number): Float32Array {
  const m = TorchScriptModule.load(ptFile).eval();
  const out: number[] = [];
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    out.push(...tidy(() => noGrad(() => m.forward(tensor(x.subarray(s * per, (s + b) * per), [b, ...shape])).dataFloat32())));
  }
  m.dispose();
  return Float32Array.from(out);
}

test('targets computed through a V2 server (gRPC and REST) equal local forwards of F; the Module over them answers the data rows only', async () => {
  const n = 10;
  const x = inputs(n, 1);
  const want = localOutputs(x, n, 4);
  const s = await InstanceServer.start({
    model: servedModelFrom(ptFile, 'small_cnn', undefined, undefined, { inputShape: shape }),
    httpPort: 0,
    grpcPort: 0,
  });
  let first: Float32Array | null = null;
  try {
    for (const url of [`v2://127.0.0.1:${s.grpcPort}/small_cnn`, `http://127.0.0.1:${s.httpPort}/v2/models/small_cnn`]) {
      const src = forwardOnlySource(url);
      try {
        const o = await src.open();
        assert.deepEqual(o, { inputShape: shape, outputShape: [10] }, url);
        const progress: number[] = [];
        const y = await computeOutputs(src, x, n, o.inputShape, o.outputShape, { batch: 4, onProgress: (d) => progress.push(d) });
        assert.deepEqual(progress, [4, 8, 10], 'batched: 4 + 4 + 2');
        // equal up to float rounding (the instance's worker thread may sum in another order: ~1e-7)
        const diff = Math.max(...y.map((v, i) => Math.abs(v - want[i])));
        assert.ok(diff <= 1e-5, `${url}: targets through the server = local forwards (max abs difference ${diff})`);
        if (first === null) first = y;
        else assert.deepEqual([...y], [...first], 'gRPC and REST targets are bit for bit the same');
      } finally {
        await src.close();
      }
    }
    // the whole loader: outputs on all the data, a Module answering from them
    const t = tensor(x, [n, ...shape]);
    const base = await loadForwardOnlyBase(`v2://127.0.0.1:${s.grpcPort}/small_cnn`, t, { batch: 4 });
    assert.equal(base.classes, 10);
    assert.equal(base.identity.model, 'v2');
    assert.match(base.identity.sha256, /^[0-9a-f]{64}$/);
    const rows = tidy(() => noGrad(() => base.model.forward(t.narrow(0, 5, 3)).dataFloat32()));
    assert.deepEqual([...rows], [...first!.subarray(50, 80)], 'rows 5..7 answered from the outputs computed through the server');
    assert.throws(
      () => tidy(() => base.model.forward(t.narrow(0, 0, 2).add(1))),
      /forward-only F .*asked for an input outside the data .*drop --augment/,
    );
    t.dispose();
    // data of another shape than the server's model takes
    const wrong = tensor(new Float32Array(2 * 3 * 16 * 16), [2, 3, 16, 16]);
    await assert.rejects(
      loadForwardOnlyBase(`v2://127.0.0.1:${s.grpcPort}/small_cnn`, wrong),
      /takes inputs \[3, 32, 32\] per example, but the data has \[3, 16, 16\]/,
    );
    wrong.dispose();
    // an unknown model is not retried: the error names it
    await assert.rejects(
      loadForwardOnlyBase(`v2://127.0.0.1:${s.grpcPort}/nope`, tensor(x, [n, ...shape]), { sleep: async () => assert.fail('not retried') }),
      /v2:\/\/127\.0\.0\.1:\d+\/nope: model metadata: .*nope/,
    );
  } finally {
    await s.close();
  }
});

test('an ONNX file as a forward-only F agrees with the TorchScript export within 1e-4', async () => {
  const n = 4;
  const x = inputs(n, 2);
  const want = localOutputs(x, n, 4);
  const t = tensor(x, [n, ...shape]);
  const base = await loadForwardOnlyBase(onnxFile, t);
  assert.equal(base.identity.model, 'onnx');
  const y = tidy(() => noGrad(() => base.model.forward(t).dataFloat32()));
  for (let i = 0; i < y.length; i++) assert.ok(Math.abs(y[i] - want[i]) <= 1e-4, `${i}: ${y[i]} vs ${want[i]}`);
  t.dispose();
});

test('requests are retried with exponential backoff on transient failures; an unreachable server fails with a clear error after the attempts', async () => {
  let calls = 0;
  const waits: number[] = [];
  const flaky: ForwardOnlySource = {
    address: 'v2://fake:1/m',
    kind: 'v2-grpc',
    open: async () => ({ inputShape: [2], outputShape: [1] }),
    forward: async (x, b) => {
      calls++;
      if (calls % 3 !== 0) throw Object.assign(new Error('14 UNAVAILABLE: connection refused'), { code: 14 });
      return Float32Array.from({ length: b }, (_, i) => x[2 * i] + x[2 * i + 1]);
    },
    close: async () => {},
  };
  const y = await computeOutputs(flaky, Float32Array.from([1, 2, 3, 4, 5, 6]), 3, [2], [1], {
    batch: 2,
    sleep: async (ms) => void waits.push(ms),
    backoffMs: 100,
  });
  assert.deepEqual([...y], [3, 7, 11]);
  assert.deepEqual(waits, [100, 200, 100, 200], 'two retries per batch, doubling');
  // permanent errors (INVALID_ARGUMENT) are not retried
  let tries = 0;
  await assert.rejects(
    withRetries(
      'x',
      async () => {
        tries++;
        throw Object.assign(new Error('3 INVALID_ARGUMENT: bad shape'), { code: 3 });
      },
      { sleep: async () => {} },
    ),
    /x: 3 INVALID_ARGUMENT: bad shape/,
  );
  assert.equal(tries, 1);
  // nothing listens on port 1: gRPC and REST fail after the attempts, naming the address
  const t = tensor(new Float32Array(per), [1, ...shape]);
  for (const url of ['v2://127.0.0.1:1/small_cnn', 'http://127.0.0.1:1/v2/models/small_cnn']) {
    const seen: number[] = [];
    await assert.rejects(
      loadForwardOnlyBase(url, t, { attempts: 3, sleep: async (ms) => void seen.push(ms), timeoutMs: 5000 }),
      (e: Error) => e.message.startsWith(url) && /failed after 3 attempts .*check that the server is running and reachable/.test(e.message),
    );
    assert.deepEqual(seen, [200, 400]);
  }
  t.dispose();
  assert.throws(
    () => parseV2Url('v2://host/model'),
    /use v2:\/\/HOST:PORT\/MODEL \(gRPC\) or http:\/\/HOST:PORT\/v2\/models\/MODEL \(REST\)/,
  );
  assert.deepEqual(parseV2Url('http://h:8000/v2/models/resnet/versions/2'), {
    kind: 'v2-rest',
    address: 'http://h:8000',
    model: 'resnet',
    version: '2',
  });
});

test('coded train parity --base v2://... trains on targets from the server; --parity-model base, --augment and coded train learned are refused (no gradients)', async () => {
  const { runParity } = await import('../../src/train/parity-run.js');
  const { forwardOnlySupport } = await import('../../src/serve/forward-only-base.js');
  const { readCheckpointMetadata } = await import('../../src/serve/served-model.js');
  const { trainLearnedCommand } = await import('../../src/cli/commands/train-learned.js');
  const tmp = mkdtempSync(join(tmpdir(), 'coded-v2-base-'));
  const s = await InstanceServer.start({
    model: servedModelFrom(ptFile, 'small_cnn', undefined, undefined, { inputShape: shape }),
    httpPort: null,
    grpcPort: 0,
  });
  const url = `v2://127.0.0.1:${s.grpcPort}/small_cnn`;
  try {
    const n = 24;
    const data = join(tmp, 'data.npz');
    writeFileSync(data, zipSync({ 'inputs.npy': encodeNpy({ dtype: 'float32', shape: [n, ...shape], data: inputs(n, 3) }) }));
    const cfg = {
      code: 'addition',
      k: 2,
      r: 1,
      parityModel: 'mlp:32',
      epochs: 1,
      batchSize: 8,
      lr: 1e-3,
      weightDecay: 1e-5,
      schedule: 'constant' as const,
      target: 'base' as const,
      seed: 1,
      device: 'cpu' as const,
    };
    const quiet = { resume: false, command: 'test', quiet: true, log: () => {}, forwardOnly: forwardOnlySupport() };
    await assert.rejects(
      runParity({ base: url, data, cfg: { ...cfg, parityModel: 'base' }, ...quiet }),
      /is a running V2 server: it computes F's outputs but gives no gradients .*--parity-model base/,
    );
    await assert.rejects(runParity({ base: url, data, cfg: { ...cfg, augment: 'crop' }, ...quiet }), /--augment needs a local F/);
    const res = await runParity({ base: url, data, cfg, outDir: join(tmp, 'run'), ...quiet });
    assert.equal(res.epochs.length, 1);
    const meta = readCheckpointMetadata(res.bestCheckpoint) as { base: { path: string; model: string; classes: number; input: unknown } };
    assert.equal(meta.base.path, url);
    assert.equal(meta.base.model, 'v2');
    assert.equal(meta.base.classes, 10);
    assert.deepEqual(meta.base.input, { channels: 3, height: 32, width: 32 });
    for (const b of [url, onnxFile])
      await assert.rejects(trainLearnedCommand(['--base', b, '--k', '2']), /gives no gradients .*learned codes/);
    // coded eval CKPT --data FILE: F's outputs through the server again, the training's test split, the same result
    const { evalForwardOnlyCode } = await import('../../src/cli/commands/eval-forward-only.js');
    await assert.rejects(evalForwardOnlyCode(res.bestCheckpoint, {}), /trained for the forward-only base v2:.*pass --data/);
    const printed: string[] = [];
    const log = console.log;
    console.log = (s: string) => void printed.push(s);
    try {
      assert.equal(await evalForwardOnlyCode(res.bestCheckpoint, { data, json: true }, () => {}), true);
    } finally {
      console.log = log;
    }
    const e = JSON.parse(printed.pop()!) as { degraded: { accuracy: number }; samples: number };
    assert.equal(e.samples, res.test.samples);
    assert.equal(e.degraded.accuracy, res.test.degraded.accuracy);
    assert.equal(
      await evalForwardOnlyCode(join(packageRoot(), 'models', 'fashion-mnist-base-mlp-addition-k2.safetensors'), {}),
      false,
      'other checkpoints: the general path',
    );
  } finally {
    await s.close();
    rmSync(tmp, { recursive: true, force: true });
  }
});
