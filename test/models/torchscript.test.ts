// TorchScript files as models (src/models/torchscript.ts over native/jit.cc), checked against
// the outputs PyTorch saved for the example model (examples/own-model/make_model.py).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cudaAvailable, noGrad, tensor, tidy } from '../../src/index.js';
import { packageRoot } from '../../src/util/package-root.js';
import { loadSafetensors } from '../../src/nn/safetensors.js';
import { TorchScriptModule } from '../../src/models/torchscript.js';
import { native, type JitHandle } from '../../src/engine/native.js';
import { Tensor } from '../../src/engine/tensor.js';
import { freeze } from '../../src/train/learned-training.js';
import { gradcheck, prng } from '../helpers/gradcheck.js';

const dir = join(packageRoot(), 'examples', 'own-model');
const ptFile = join(dir, 'small_cnn.pt');

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

test('a TorchScript file run through the addon gives the outputs PyTorch saved for it (within 1e-4)', () => {
  const ref = loadSafetensors(join(dir, 'reference.safetensors')).tensors;
  const m = TorchScriptModule.load(ptFile);
  try {
    const [got, want] = tidy(() => noGrad(() => [m.forward(ref.get('inputs')!).dataFloat32(), ref.get('outputs')!.dataFloat32()]));
    assert.equal(got.length, 4 * 10);
    const d = maxAbsDiff(got, want);
    assert.ok(d <= 1e-4, `max |addon - PyTorch| = ${d}`);
  } finally {
    m.dispose();
    for (const t of ref.values()) t.dispose();
  }
});

test("a TorchScript module's parameters and buffers are engine tensors under PyTorch's names, shared with the module", () => {
  const m = TorchScriptModule.load(ptFile);
  const copy = m.clone();
  try {
    const names = [...m.stateDict().keys()];
    assert.deepEqual(names.slice(0, 4), ['features.0.weight', 'features.0.bias', 'features.1.weight', 'features.1.bias']);
    assert.ok(names.includes('features.1.running_mean') && names.includes('head.2.bias'));
    assert.deepEqual(
      m.namedParameters().map(([n]) => n),
      [
        'features.0.weight',
        'features.0.bias',
        'features.1.weight',
        'features.1.bias',
        'features.4.weight',
        'features.4.bias',
        'features.5.weight',
        'features.5.bias',
        'head.2.weight',
        'head.2.bias',
      ],
    );
    assert.equal(m.numParameters(), 8 * 27 + 8 + 8 + 8 + 16 * 72 + 16 + 16 + 16 + 160 + 10);
    const x = tensor(
      Float32Array.from({ length: 2 * 3 * 32 * 32 }, (_, i) => Math.sin(i)),
      [2, 3, 32, 32],
    ).keep();
    const before = tidy(() => noGrad(() => m.forward(x).dataFloat32()));
    // an in-place change of the engine tensor is seen by the JIT module's forward
    const bias = m.stateDict().get('head.2.bias')!;
    noGrad(() => bias.add_(1));
    const after = tidy(() => noGrad(() => m.forward(x).dataFloat32()));
    for (let i = 0; i < after.length; i++) assert.ok(Math.abs(after[i] - before[i] - 1) < 1e-5, `logit ${i}: ${before[i]} -> ${after[i]}`);
    // the clone (taken before) has its own parameters
    const cloned = tidy(() => noGrad(() => copy.forward(x).dataFloat32()));
    assert.ok(maxAbsDiff(cloned, before) < 1e-6, 'a clone keeps the original weights');
    x.dispose();
  } finally {
    m.dispose();
    copy.dispose();
  }
});

test('a TorchScript module saved with new weights loads back with them', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'coded-ts-'));
  const m = TorchScriptModule.load(ptFile);
  try {
    noGrad(() => m.stateDict().get('head.2.bias')!.fill_(0.5));
    m.save(join(tmp, 'copy.pt'));
    const back = TorchScriptModule.load(join(tmp, 'copy.pt'));
    try {
      assert.deepEqual([...back.stateDict().get('head.2.bias')!.dataFloat32()], new Array(10).fill(0.5));
    } finally {
      back.dispose();
    }
  } finally {
    m.dispose();
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('gradients through a frozen TorchScript F to its input match finite differences (float64)', () => {
  const m = TorchScriptModule.load(ptFile);
  try {
    m.to('float64');
    freeze(m);
    assert.ok(m.parameters().every((p) => !p.requiresGrad && p.dtype === 'float64'));
    assert.equal(m.stateDict().get('features.1.num_batches_tracked')!.dtype, 'int64', 'counters keep their dtype');
    const rnd = prng(3);
    const x = tensor(
      Float64Array.from({ length: 2 * 3 * 8 * 8 }, () => 2 * rnd() - 1),
      [2, 3, 8, 8],
      { dtype: 'float64' },
    )
      .keep()
      .requiresGrad_(true);
    gradcheck(() => m.forward(x), [x], { eps: 1e-6, rtol: 1e-4, atol: 1e-6 });
    assert.ok(
      m.parameters().every((p) => p.grad === null),
      'a frozen F accumulates no parameter gradients',
    );
    x.dispose();
  } finally {
    m.dispose();
  }
});

test('files that are not TorchScript, missing files and wrong input shapes get errors naming the file and what to do', () => {
  const tmp = mkdtempSync(join(tmpdir(), 'coded-ts-'));
  try {
    writeFileSync(join(tmp, 'junk.pt'), 'not a model');
    assert.throws(
      () => TorchScriptModule.load(join(tmp, 'junk.pt')),
      (e: Error) =>
        e.message.includes(join(tmp, 'junk.pt')) && /is not a TorchScript file/.test(e.message) && /torch\.jit\.trace/.test(e.message),
    );
    assert.throws(() => TorchScriptModule.load(join(dir, 'small_cnn.onnx')), /small_cnn\.onnx is not a TorchScript file/);
    assert.throws(() => TorchScriptModule.load(join(tmp, 'missing.pt')), /missing\.pt: no such file/);
    const m = TorchScriptModule.load(ptFile);
    try {
      const x = tensor(new Float32Array(2 * 784), [2, 1, 28, 28]).keep();
      assert.throws(
        () => m.forward(x),
        (e: Error) =>
          e.message.includes(ptFile) &&
          /forward failed on input \[2, 1, 28, 28\]/.test(e.message) &&
          /--input-shape/.test(e.message) &&
          /channels/.test(e.message),
      );
      x.dispose();
    } finally {
      m.dispose();
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});

test('forward with one input takes the single-input entry point (jitForward1) and equals the generic jitForward bit for bit; a tuple result is refused through either', () => {
  const fixtures = join(packageRoot(), 'test', 'fixtures');
  const m = TorchScriptModule.load(join(fixtures, 'linear.pt'));
  const two = TorchScriptModule.load(join(fixtures, 'two-outputs.pt'));
  try {
    tidy(() =>
      noGrad(() => {
        const x = tensor(
          Float32Array.from({ length: 5 * 12 }, (_, i) => Math.cos(0.3 * i)),
          [5, 12],
        );
        const handleOf = (t: TorchScriptModule) => (t as unknown as { handle: JitHandle }).handle;
        const one = native.jitForward1(handleOf(m), x.handle);
        if (Array.isArray(one)) assert.fail('a single tensor comes back as a handle, not a list');
        const viaForward = m.forward(x).dataFloat32();
        const viaList = m.forwardInputs([x]).dataFloat32();
        const generic = native.jitForward(handleOf(m), [x.handle]).map((h) => new Tensor(h));
        assert.equal(generic.length, 1);
        assert.deepEqual([...new Tensor(one).dataFloat32()], [...generic[0].dataFloat32()]);
        assert.deepEqual([...viaForward], [...generic[0].dataFloat32()]);
        assert.deepEqual([...viaList], [...viaForward]);
        const pair = native.jitForward1(handleOf(two), x.handle);
        assert.ok(Array.isArray(pair) && pair.length === 2, 'a tuple result comes back as the flattened list');
        for (const h of pair) new Tensor(h).dispose();
        assert.throws(() => two.forward(x), /two-outputs\.pt: forward returned 2 tensors; a served or coded model must return one tensor/);
        assert.throws(() => two.forwardInputs([x]), /forward returned 2 tensors/);
      }),
    );
  } finally {
    m.dispose();
    two.dispose();
  }
});

test('a TorchScript module moved to CUDA computes what it computes on the CPU (within 1e-4)', {
  skip: cudaAvailable() ? false : 'libtorch built without CUDA or no GPU',
}, () => {
  const ref = loadSafetensors(join(dir, 'reference.safetensors')).tensors;
  const m = TorchScriptModule.load(ptFile);
  try {
    const onCpu = tidy(() => noGrad(() => m.forward(ref.get('inputs')!).dataFloat32()));
    m.to('cuda');
    const [onGpu, device] = tidy(() =>
      noGrad(() => {
        const y = m.forward(ref.get('inputs')!.to('cuda'));
        return [y.to('cpu').dataFloat32(), y.device] as const;
      }),
    );
    assert.match(device, /^cuda/);
    const d = maxAbsDiff(onGpu, onCpu);
    assert.ok(d <= 1e-4, `max |CUDA - CPU| = ${d}`);
  } finally {
    m.dispose();
    for (const t of ref.values()) t.dispose();
  }
});
