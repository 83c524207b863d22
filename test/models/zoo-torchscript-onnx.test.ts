// The same network three ways: the zoo's LeNet-5 (src/models/lenet5.ts), its PyTorch twin
// traced to TorchScript and exported to ONNX (test/fixtures/make_lenet5.py). With the
// TorchScript file's weights loaded into the zoo model, all three agree within 1e-4 (issue 13).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { noGrad, tensor, tidy } from '../../src/index.js';
import { packageRoot } from '../../src/util/package-root.js';
import { TorchScriptModule } from '../../src/models/torchscript.js';
import { OnnxModel } from '../../src/models/onnx.js';
import { LeNet5 } from '../../src/models/lenet5.js';
import { prng } from '../helpers/gradcheck.js';

/** onnxruntime-node is an optional dependency (scripts/gpu-check runs with no node_modules at all): skip its half without it. */
const onnxRuntimeMissing: string | false = await import('onnxruntime-node').then(
  () => false,
  (e: Error) => `onnxruntime-node (an optional dependency) did not load: ${e.message}`,
);

const fixtures = join(packageRoot(), 'test', 'fixtures');
const batch = 5;
const rand = prng(7);
const input = Float32Array.from({ length: batch * 28 * 28 }, () => rand() * 2 - 1);

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

/** The zoo LeNet-5 with the TorchScript file's weights, and the file itself, on `input`. */
function zooAndTorchScript(): { fromZoo: Float32Array; fromPt: Float32Array } {
  const pt = TorchScriptModule.load(join(fixtures, 'lenet5.pt'));
  const zoo = new LeNet5().eval();
  try {
    const { missing, unexpected } = zoo.loadStateDict(pt.stateDict());
    assert.deepEqual([missing, unexpected], [[], []], 'the zoo model and the file name their weights alike');
    const [fromZoo, fromPt] = tidy(() =>
      noGrad(() => {
        const x = tensor(input, [batch, 1, 28, 28]);
        return [zoo.forward(x).dataFloat32(), pt.forward(x).dataFloat32()];
      }),
    );
    return { fromZoo, fromPt };
  } finally {
    pt.dispose();
  }
}

test('the zoo LeNet-5 with the weights of a TorchScript file and the file itself give the same outputs (within 1e-4)', () => {
  const { fromZoo, fromPt } = zooAndTorchScript();
  assert.equal(fromZoo.length, batch * 10);
  const spread = Math.max(...Array.from(fromZoo, Math.abs));
  assert.ok(spread > 1e-3, 'the outputs are not all zero (the comparison means something)');
  const dPt = maxAbsDiff(fromZoo, fromPt);
  assert.ok(dPt <= 1e-4, `max |zoo - TorchScript| = ${dPt}`);
});

test('the same zoo LeNet-5 and its ONNX export (ONNX Runtime) give the same outputs (within 1e-4)', {
  skip: onnxRuntimeMissing,
}, async () => {
  const { fromZoo } = zooAndTorchScript();
  const onnx = await OnnxModel.load(join(fixtures, 'lenet5.onnx'));
  let fromOnnx: Float32Array;
  try {
    assert.deepEqual(onnx.inputShape, [1, 28, 28]);
    fromOnnx = (await onnx.run(input, batch)).data;
  } finally {
    await onnx.close();
  }
  const dOnnx = maxAbsDiff(fromZoo, fromOnnx);
  assert.ok(dOnnx <= 1e-4, `max |zoo - ONNX Runtime| = ${dOnnx}`);
});
