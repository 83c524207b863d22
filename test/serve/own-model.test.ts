// Instances serving the user's own model files: TorchScript (--model FILE.pt --input-shape)
// and ONNX (--model FILE.onnx), checked against local forwards and PyTorch's saved outputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { noGrad, tidy } from '../../src/index.js';
import { packageRoot } from '../../src/util/package-root.js';
import { loadSafetensors } from '../../src/nn/safetensors.js';
import { TorchScriptModule } from '../../src/models/torchscript.js';
import { OnnxModel } from '../../src/models/onnx.js';
import { InstanceServer } from '../../src/serve/instance.js';
import { V2GrpcClient } from '../../src/serve/client.js';
import { parseInputShape, servedModelFrom } from '../../src/serve/served-model.js';

const dir = join(packageRoot(), 'examples', 'own-model');
const ptFile = join(dir, 'small_cnn.pt');
const onnxFile = join(dir, 'small_cnn.onnx');

function reference(): { inputs: Float32Array; outputs: Float32Array } {
  const ref = loadSafetensors(join(dir, 'reference.safetensors')).tensors;
  const r = { inputs: ref.get('inputs')!.dataFloat32(), outputs: ref.get('outputs')!.dataFloat32() };
  for (const t of ref.values()) t.dispose();
  return r;
}

async function serveAndQuery(
  model: ReturnType<typeof servedModelFrom>,
  x: Float32Array,
): Promise<{
  data: Float32Array;
  shape: number[];
  meta: { inputs: { shape: number[] }[]; outputs: { shape: number[] }[]; platform?: string };
}> {
  const s = await InstanceServer.start({ model, httpPort: null, grpcPort: 0 });
  const client = new V2GrpcClient(`127.0.0.1:${s.grpcPort}`);
  try {
    const meta = await client.modelMetadata(model.name, 10000);
    const r = await client.infer(model.name, 'input', x, [4, 3, 32, 32], 10000);
    return { data: r.data, shape: r.shape, meta };
  } finally {
    client.close();
    await s.close();
  }
}

test('an instance serving a TorchScript file answers V2 requests exactly as a local forward of it, and publishes its shapes', async () => {
  const { inputs, outputs } = reference();
  const model = servedModelFrom(ptFile, undefined, undefined, undefined, { inputShape: [3, 32, 32] });
  assert.equal(model.name, 'small_cnn');
  assert.equal(model.platform, 'pytorch_libtorch');
  const r = await serveAndQuery(model, inputs);
  assert.deepEqual(r.shape, [4, 10]);
  assert.deepEqual(r.meta.inputs[0].shape, [-1, 3, 32, 32], 'V2 metadata: batch dimension -1');
  assert.deepEqual(r.meta.outputs[0].shape, [-1, 10], 'the output shape learned by the probe forward at load');
  const m = TorchScriptModule.load(ptFile);
  const local = tidy(() =>
    noGrad(() => m.forward(loadSafetensors(join(dir, 'reference.safetensors')).tensors.get('inputs')!).dataFloat32()),
  );
  m.dispose();
  assert.deepEqual([...r.data], [...local], 'served = local forward, bit for bit');
  for (let i = 0; i < outputs.length; i++)
    assert.ok(Math.abs(r.data[i] - outputs[i]) <= 1e-4, `logit ${i}: ${r.data[i]} vs PyTorch ${outputs[i]}`);
});

test('an ONNX file of the same network agrees with PyTorch within 1e-4, and an instance serving it answers exactly as a local ONNX Runtime forward', async () => {
  const { inputs, outputs } = reference();
  const local = await OnnxModel.load(onnxFile);
  assert.deepEqual(local.inputShape, [3, 32, 32], 'the input shape comes from the file');
  const want = (await local.run(inputs, 4)).data.slice();
  await local.close();
  for (let i = 0; i < outputs.length; i++)
    assert.ok(Math.abs(want[i] - outputs[i]) <= 1e-4, `logit ${i}: ONNX Runtime ${want[i]} vs PyTorch ${outputs[i]}`);
  const model = servedModelFrom(onnxFile);
  assert.equal(model.platform, 'onnxruntime_onnx');
  const r = await serveAndQuery(model, inputs);
  assert.deepEqual(r.shape, [4, 10]);
  assert.deepEqual(r.meta.inputs[0].shape, [-1, 3, 32, 32], 'V2 metadata: batch dimension -1');
  assert.deepEqual(r.meta.outputs[0].shape, [-1, 10]);
  assert.deepEqual([...r.data], [...want], 'served = local ONNX Runtime forward, bit for bit');
});

test('bad model files and shapes fail with errors naming the file and what to do', async () => {
  const tmp = mkdtempSync(join(tmpdir(), 'coded-own-'));
  try {
    // TorchScript without --input-shape: refused before anything loads
    assert.throws(
      () => servedModelFrom(ptFile),
      (e: Error) => e.message.includes(ptFile) && /do not record their input shape; pass --input-shape/.test(e.message),
    );
    // a wrong --input-shape: the probe forward at load fails, naming the file and the option
    await assert.rejects(
      InstanceServer.start({
        model: servedModelFrom(ptFile, undefined, undefined, undefined, { inputShape: [1, 28, 28] }),
        httpPort: null,
        grpcPort: 0,
      }),
      (e: Error) =>
        e.message.includes(ptFile) && /forward failed on input \[1, 1, 28, 28\]/.test(e.message) && /--input-shape/.test(e.message),
    );
    // a file that is not TorchScript
    writeFileSync(join(tmp, 'junk.pt'), 'not a model');
    await assert.rejects(
      InstanceServer.start({
        model: servedModelFrom(join(tmp, 'junk.pt'), undefined, undefined, undefined, { inputShape: [3, 32, 32] }),
        httpPort: null,
        grpcPort: 0,
      }),
      (e: Error) =>
        e.message.includes(join(tmp, 'junk.pt')) && /is not a TorchScript file/.test(e.message) && /torch\.jit\.trace/.test(e.message),
    );
    // a corrupt (truncated) ONNX file
    const bytes = readFileSync(onnxFile);
    writeFileSync(join(tmp, 'cut.onnx'), bytes.subarray(0, Math.floor(bytes.length / 2)));
    await assert.rejects(
      OnnxModel.load(join(tmp, 'cut.onnx')),
      (e: Error) =>
        e.message.includes(join(tmp, 'cut.onnx')) &&
        /is not an ONNX model ONNX Runtime can load/.test(e.message) &&
        /torch\.onnx\.export/.test(e.message),
    );
    await assert.rejects(
      InstanceServer.start({ model: servedModelFrom(join(tmp, 'cut.onnx')), httpPort: null, grpcPort: 0 }),
      /cut\.onnx is not an ONNX model/,
    );
    // an --input-shape that contradicts the ONNX file's
    await assert.rejects(
      OnnxModel.load(onnxFile, { inputShape: [1, 28, 28] }),
      (e: Error) =>
        e.message.includes(onnxFile) && /--input-shape 1x28x28 does not match the file's input \[batch, 3, 32, 32\]/.test(e.message),
    );
    await assert.rejects(
      InstanceServer.start({ model: servedModelFrom(onnxFile), httpPort: null, grpcPort: 0, device: 'cuda' }),
      /ONNX models run on the CPU here/,
    );
    // option misuse
    assert.throws(
      () => servedModelFrom('linear:4:2', undefined, undefined, undefined, { inputShape: [4] }),
      /--input-shape applies to TorchScript/,
    );
    assert.throws(() => parseInputShape('3x0x32'), /bad --input-shape '3x0x32'/);
    assert.deepEqual(parseInputShape('3x32x32'), [3, 32, 32]);
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
