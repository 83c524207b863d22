// Runs only where the addon was built against a CUDA libtorch and a GPU is present
// (scripts/gpu-check); on CPU-only builds each test reports itself skipped with the reason.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cudaAvailable, tensor, tidy, randn, manualSeed, crossEntropy, SGD, noGrad } from '../../src/index.js';
import { Sequential, Linear, ReLU, Conv2d, BatchNorm2d, Flatten } from '../../src/nn/index.js';

const skip = cudaAvailable() ? false : 'libtorch built without CUDA or no GPU';

test('tensors move to the GPU and back unchanged', { skip }, () => {
  tidy(() => {
    const a = tensor([1, 2, 3, 4], [2, 2]);
    const g = a.to('cuda');
    assert.match(g.device, /^cuda/);
    assert.deepEqual(g.matmul(g).cpu().toList(), [7, 10, 15, 22]);
  });
});

test('a training step on the GPU matches the same step on the CPU', { skip }, () => {
  manualSeed(7);
  const build = () =>
    new Sequential(
      new Conv2d(1, 4, 3, { padding: 1, bias: false }),
      new BatchNorm2d(4),
      new ReLU(),
      new Flatten(),
      new Linear(4 * 8 * 8, 10),
    );
  const cpu = build();
  const gpu = build();
  gpu.loadStateDict(cpu.stateDict());
  gpu.to('cuda');
  const x = randn([8, 1, 8, 8]).keep();
  const y = tensor(new BigInt64Array([0n, 1n, 2n, 3n, 4n, 5n, 6n, 7n])).keep();
  const step = (m: Sequential, dev: string) => {
    // SGD, not Adam: Adam's update is scale-free, so it would amplify float noise in near-zero gradients
    const opt = new SGD(m.parameters(), { lr: 0.1, momentum: 0.9 });
    tidy(() => {
      const l = crossEntropy(m.forward(x.to(dev)), y.to(dev));
      l.backward();
      opt.step();
    });
    opt.dispose();
  };
  step(cpu, 'cpu');
  step(gpu, 'cuda');
  noGrad(() =>
    tidy(() => {
      const onGpu = gpu.stateDict();
      for (const [name, a] of cpu.stateDict()) {
        const b = onGpu.get(name)!;
        const diff = a.to('float64').sub(b.cpu().to('float64')).abs().max().item();
        assert.ok(diff < 1e-4, `${name} differs by ${diff}`);
      }
    }),
  );
  cpu.dispose();
  gpu.dispose();
  x.dispose();
  y.dispose();
});
