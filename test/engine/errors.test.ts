// Bad input never aborts the process: every case throws a JS Error with a message that
// says what was wrong, and the engine keeps working afterwards.
import { afterEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  batchNorm,
  cat,
  conv2d,
  crossEntropy,
  cudaAvailable,
  dropout,
  full,
  grad,
  interpolate,
  liveTensors,
  manualSeed,
  maxPool2d,
  mseLoss,
  nn,
  ones,
  randn,
  scopeDepth,
  setNumThreads,
  stack,
  tensor,
  tidy,
  zeros,
  type DType,
  type Tensor,
} from '../../src/index.js';
import { native, type Handle } from '../../src/engine/native.js';

const libtorch = (re: RegExp) => (e: unknown) => {
  assert.ok(e instanceof Error, 'a JS Error');
  assert.match(e.message, /^libtorch: /);
  assert.match(e.message, re);
  assert.doesNotMatch(e.message, /Exception raised from|frame #\d/, 'no C++ backtrace in the message');
  return true;
};
const long = (v: number[], shape?: number[]) => tensor(v, shape, { dtype: 'int64' });

afterEach(() => {
  // the engine still works and no scope was left open
  assert.equal(scopeDepth(), 0);
  tidy(() => assert.deepEqual(ones([2]).add(1).toList(), [2, 2]));
});

describe('shape errors', () => {
  test('matmul with mismatched shapes (2-D, 1-D, batched)', () => {
    tidy(() => {
      assert.throws(() => ones([2, 3]).matmul(ones([2, 3])), libtorch(/mat1 and mat2 shapes cannot be multiplied \(2x3 and 2x3\)/));
      assert.throws(() => ones([3]).matmul(ones([4])), libtorch(/inconsistent tensor size/));
      assert.throws(() => ones([2, 2, 3]).matmul(ones([3, 2, 3])), libtorch(/must match the size of tensor b/));
    });
  });

  test('add / mul / mseLoss with non-broadcastable shapes', () => {
    tidy(() => {
      assert.throws(
        () => ones([2, 3]).add(ones([2, 4])),
        libtorch(/size of tensor a \(3\) must match the size of tensor b \(4\) at non-singleton dimension 1/),
      );
      assert.throws(() => ones([2, 3]).mul(ones([3, 2])), libtorch(/must match the size of tensor b/));
      assert.throws(() => mseLoss(ones([2, 3]), ones([3, 2])), libtorch(/must match the size of tensor b/));
    });
  });

  test('conv2d with the wrong channel count, the wrong rank, groups that do not divide', () => {
    tidy(() => {
      assert.throws(
        () => conv2d(ones([1, 4, 5, 5]), ones([2, 3, 3, 3])),
        libtorch(/expected input\[1, 4, 5, 5\] to have 3 channels, but got 4 channels/),
      );
      assert.throws(
        () => conv2d(ones([4, 5]), ones([2, 3, 3, 3])),
        libtorch(/Expected 3D \(unbatched\) or 4D \(batched\) input to conv2d/),
      );
      assert.throws(() => conv2d(ones([1, 4, 5, 5]), ones([2, 4, 3, 3]), null, { groups: 3 }), libtorch(/groups/));
      assert.throws(() => conv2d(ones([1, 1, 2, 2]), ones([1, 1, 3, 3])), libtorch(/Kernel size can't be greater than actual input size/));
      assert.throws(
        () => conv2d(ones([1, 1, 5, 5]), ones([1, 1, 2, 2]), null, { padding: 'same' }),
        /'same' padding needs an odd effective kernel size/,
      );
      assert.throws(
        () => conv2d(ones([1, 1, 5, 5]), ones([1, 1, 3, 3]), null, { padding: 'same', stride: 2 }),
        /padding 'same' needs stride 1/,
      );
      assert.throws(() => new nn.Conv2d(3, 4, 3, { groups: 2 }), /must be divisible by groups/);
    });
  });

  test('reshape / expand / cat / stack / narrow / select / permute with impossible shapes', () => {
    tidy(() => {
      const x = ones([6]);
      assert.throws(() => x.reshape(4, 2), /shape '\[4, 2\]' is invalid for input of size 6/);
      assert.throws(() => x.reshape(-1, -1), /only one dimension can be inferred/);
      assert.throws(() => ones([2, 3]).expand(4, 3), libtorch(/expanded size of the tensor \(4\) must match the existing size \(2\)/));
      assert.throws(() => cat([ones([2, 3]), ones([2, 4])], 0), libtorch(/Sizes of tensors must match except in dimension 0/));
      assert.throws(() => cat([], 0), libtorch(/expected a non-empty list of Tensors/));
      assert.throws(() => stack([ones([2, 3]), ones([2, 4])]), libtorch(/stack expects each tensor to be equal size/));
      assert.throws(() => x.narrow(0, 4, 5), libtorch(/exceeds dimension size/));
      assert.throws(() => x.select(0, 6), libtorch(/index 6 out of range/));
      assert.throws(() => ones([2, 3]).permute(0, 0), libtorch(/duplicate dims/));
      assert.throws(() => ones([2, 3]).transpose(0, 2), libtorch(/Dimension out of range/));
      assert.throws(() => ones([2, 3]).sum(5), libtorch(/Dimension out of range/));
      assert.throws(() => ones([2, 3]).softmax(2), libtorch(/Dimension out of range/));
      assert.throws(() => ones([4]).split([1, 2]), libtorch(/split_sizes to sum exactly to 4/));
      assert.throws(() => ones([3]).topk(5), libtorch(/k out of range/));
    });
  });

  test('layers with inconsistent parameters', () => {
    tidy(() => {
      assert.throws(
        () => batchNorm(ones([2, 3, 2, 2]), { training: true, weight: ones([4]) }),
        libtorch(/weight should contain 3 elements not 4/),
      );
      assert.throws(() => batchNorm(ones([2, 3, 2, 2]), { training: false }), /evaluation mode needs runningMean and runningVar/);
      assert.throws(() => maxPool2d(ones([1, 1, 2, 2]), 3), libtorch(/Output size is too small/));
      const lin = new nn.Linear(4, 2);
      assert.throws(() => lin.forward(ones([3, 5])), libtorch(/mat1 and mat2 shapes cannot be multiplied \(3x5 and 4x2\)/));
      lin.dispose();
    });
  });
});

describe('dtype and index errors', () => {
  test('crossEntropy with float targets of the wrong shape, int32 targets, 2-D class targets', () => {
    tidy(() => {
      const logits = ones([4, 3]);
      assert.throws(() => crossEntropy(logits, ones([4])), libtorch(/expected scalar type Long but found Float/));
      assert.throws(() => crossEntropy(logits, ones([4, 2])), libtorch(/1D target tensor expected/));
      assert.throws(
        () => crossEntropy(logits, tensor([0, 1, 2, 0], undefined, { dtype: 'int32' })),
        libtorch(/expected scalar type Long but found Int/),
      );
      assert.throws(() => crossEntropy(logits, long([0, 1, 2, 0, 1, 1, 1, 1], [4, 2])), libtorch(/1D target tensor expected/));
    });
  });

  test('class targets out of range', () => {
    tidy(() => {
      assert.throws(() => crossEntropy(ones([4, 3]), long([0, 1, 5, 0])), libtorch(/Target 5 is out of bounds/));
      assert.throws(() => crossEntropy(ones([4, 3]), long([0, -3, 1, 0])), libtorch(/Target -3 is out of bounds/));
    });
  });

  test('indexSelect / gather with float or out-of-range indices, oneHot of floats', () => {
    tidy(() => {
      const x = ones([3]);
      assert.throws(() => x.indexSelect(0, tensor([0, 1])), libtorch(/index_select\(\): Expected dtype int32 or int64 for index/));
      assert.throws(() => x.indexSelect(0, long([0, 7])), libtorch(/index out of range/));
      assert.throws(() => ones([2, 3]).gather(1, tensor([0, 1], [2, 1])), libtorch(/gather\(\): Expected dtype int(32\/int)?64 for index/));
      assert.throws(() => ones([2, 3]).gather(1, long([0, 7], [2, 1])), libtorch(/index 7 is out of bounds for dimension 1 with size 3/));
      assert.throws(() => native.oneHot(ones([3]).handle, 3), libtorch(/one_hot is only applicable to index tensor/));
    });
  });

  test('matmul of mixed float32 / float64', () => {
    tidy(() => {
      assert.throws(
        () => ones([2, 2]).matmul(ones([2, 2], { dtype: 'float64' })),
        libtorch(/expected scalar type Float but found Double|expected m1 and m2 to have the same dtype/),
      );
    });
  });
});

describe('invalid sizes and data', () => {
  test('negative sizes in factories and reshape', () => {
    tidy(() => {
      assert.throws(
        () => zeros([-1, 2]),
        libtorch(/Trying to create tensor with negative dimension -1: \[-1, 2\]|Dimension size must be non-negative/),
      );
      assert.throws(() => ones([2, -3]), libtorch(/negative dimension -3|Dimension size must be non-negative/));
      assert.throws(() => full([-3], 1), libtorch(/negative dimension -3|Dimension size must be non-negative/));
      assert.throws(() => randn([-3]), libtorch(/negative dimension -3|Dimension size must be non-negative/));
      assert.throws(() => ones([6]).reshape(-2, 3), libtorch(/invalid shape dimension -2/));
      assert.throws(() => tensor(new Float32Array(0), [-1]), /fromArray: negative dimension in shape/);
    });
  });

  test('non-integer sizes are rejected, not truncated', () => {
    tidy(() => {
      assert.throws(() => zeros([2.5]), /expected an array of integers/);
      assert.throws(() => ones([NaN]), /expected an array of integers/);
      assert.throws(() => ones([6]).reshape(2.9, 3), /expected an array of integers/);
      assert.throws(() => ones([6]).narrow(0, 0.5, 2), /expected an integer/);
      assert.throws(() => ones([2, 3]).sum(Infinity), /expected an array of integers/);
    });
  });

  test('fromArray: data length does not match the shape', () => {
    tidy(() => {
      assert.throws(
        () => tensor(new Float32Array(3), [2, 2]),
        (e: unknown) => e instanceof RangeError && /shape \[2, 2\] holds 4 elements but the array has 3/.test(e.message),
      );
      assert.throws(() => tensor([1, 2, 3], [4]), /holds 4 elements but the array has 3/);
      assert.throws(() => tensor([[1, 2], [3]]), /holds 4 elements but the array has 3/);
      assert.throws(() => tensor([['a'] as unknown as number[]]), /nested arrays must hold numbers/);
      assert.throws(() => tensor(new Uint16Array(2) as unknown as Float32Array), /supported typed arrays|unsupported typed array/);
    });
  });

  test('unknown dtype and device strings', () => {
    tidy(() => {
      const bad = 'float128' as DType;
      assert.throws(
        () => zeros([2], { dtype: bad }),
        (e: unknown) => e instanceof TypeError && /unknown dtype 'float128'/.test(e.message),
      );
      assert.throws(() => tensor([1], undefined, { dtype: bad }), /unknown dtype 'float128'/);
      assert.throws(() => ones([1]).to(bad), /unknown dtype 'float128'/);
      assert.throws(
        () => zeros([2], { device: 'tpu' }),
        (e: unknown) => e instanceof TypeError && /unknown device 'tpu'/.test(e.message),
      );
      assert.throws(() => tensor([1], undefined, { device: 'tpu' }), /unknown device 'tpu'/);
      assert.throws(() => tensor(new Float32Array(1), [1], { device: 'meta' }), /unknown device 'meta'/);
      assert.throws(() => ones([1]).to({ device: 'gpu' }), /unknown device 'gpu'/);
      assert.throws(() => ones([1]).to('cuda:x'), /unknown device 'cuda:x'/);
      assert.throws(() => native.zeros([1], 42, null), /unknown dtype code/);
      if (!cudaAvailable()) {
        // a well-formed device this build cannot use is libtorch's error, not a crash
        assert.throws(() => zeros([1], { device: 'cuda' }), libtorch(/CUDA/));
        assert.throws(() => ones([1]).to('cuda'), libtorch(/CUDA|cuda/));
      }
    });
  });

  test('argument validation in the TypeScript layer', () => {
    tidy(() => {
      assert.throws(() => mseLoss(ones([2]), ones([2]), { reduction: 'avg' as 'mean' }), /unknown reduction 'avg'/);
      assert.throws(() => interpolate(ones([1, 1, 2, 2]), 3, { mode: 'cubic' as 'bicubic' }), /interpolate: unknown mode 'cubic'/);
      assert.throws(() => dropout(ones([2]), 1.5, true), /p must be in \[0, 1\]/);
      assert.throws(() => new nn.Dropout(-0.1), /p must be in \[0, 1\]/);
      assert.throws(() => new nn.Linear(0, 2), /sizes must be positive/);
      assert.throws(() => setNumThreads(0), /positive integer/);
      assert.throws(() => manualSeed(-1), /non-negative integer/);
      assert.throws(() => ones([2]).item(), libtorch(/a Tensor with 2 elements cannot be converted to Scalar/));
    });
  });

  test('native argument types: a non-handle, a missing argument', () => {
    tidy(() => {
      assert.throws(
        () => native.unary.exp({} as Handle),
        (e: unknown) => e instanceof TypeError && /unary exp: expected a tensor handle/.test(e.message),
      );
      assert.throws(() => native.unary.exp(undefined as unknown as Handle), /expected a tensor handle/);
      assert.throws(() => native.reshape(ones([2]).handle, 'ab' as unknown as number[]), /reshape shape: expected an array of integers/);
      assert.throws(() => native.inplace.fill(ones([1]).handle, 'x' as unknown as number), /inplace scalar: expected a number/);
      assert.throws(
        () => native.pad(ones([1, 4]).handle, [1, 1], 'wrap' as 'reflect', 0),
        (e: unknown) => e instanceof TypeError && /unknown pad mode 'wrap'/.test(e.message),
      );
      assert.throws(() => native.mseLoss(ones([1]).handle, ones([1]).handle, 'avg' as 'mean'), /unknown reduction 'avg'/);
    });
  });
});

describe('use after dispose', () => {
  test('a disposed Tensor refuses every use (TS level)', () => {
    const t = ones([2]);
    assert.deepEqual(t.shape, [2]); // metadata cached before dispose must not outlive it
    t.dispose();
    assert.ok(t.isDisposed);
    assert.throws(() => t.add(1), /Tensor used after dispose\(\)/);
    assert.throws(() => t.shape, /Tensor used after dispose\(\)/);
    assert.throws(() => t.rank, /Tensor used after dispose\(\)/);
    assert.throws(() => t.dtype, /Tensor used after dispose\(\)/);
    assert.throws(() => t.toList(), /Tensor used after dispose\(\)/);
    tidy(() => {
      assert.throws(() => ones([2]).add(t), /Tensor used after dispose\(\)/);
      assert.throws(() => cat([ones([2]), t]), /Tensor used after dispose\(\)/);
    });
    assert.equal(t.toString(), 'Tensor(disposed)');
  });

  test('a disposed native handle passed to another op (native level)', () => {
    tidy(() => {
      const a = ones([2]);
      const b = ones([2]);
      const h = b.handle;
      native.dispose(h);
      assert.ok(native.isDisposed(h));
      assert.throws(() => a.add(b), /binary add rhs: tensor used after dispose\(\)/);
      assert.throws(() => b.add(a), /binary add lhs: tensor used after dispose\(\)/);
      assert.throws(() => cat([a, b]), /cat: tensor used after dispose\(\)/);
      assert.throws(() => native.toArray(h), /toArray: tensor used after dispose\(\)/);
      assert.throws(() => native.linear(a.reshape(1, 2).handle, h, null), /linear weight: tensor used after dispose\(\)/);
      assert.throws(() => grad(a.sum(), [b]), /tensor used after dispose\(\)/);
      // disposing again is harmless and does not double-count
      const live = liveTensors();
      native.dispose(h);
      b.dispose();
      assert.equal(liveTensors(), live);
    });
  });

  test('module parameters used after the module was disposed', () => {
    const lin = new nn.Linear(2, 2);
    lin.dispose();
    tidy(() => assert.throws(() => lin.forward(ones([1, 2])), /Tensor used after dispose\(\)/));
  });
});

describe('NaN and infinities flow through without crashing', () => {
  test('NaN in, NaN out', () => {
    tidy(() => {
      const x = tensor([NaN, 1, -Infinity, Infinity]);
      const e = x.exp().toList();
      assert.ok(Number.isNaN(e[0]));
      assert.ok(Math.abs(e[1] - Math.E) < 1e-6);
      assert.deepEqual(e.slice(2), [0, Infinity]);
      assert.ok(Number.isNaN(x.sum().item()));
      assert.ok(Number.isNaN(x.max().item()), 'max propagates NaN');
      assert.ok(Number.isNaN(x.relu().toList()[0]));
      assert.ok(x.softmax().toList().every(Number.isNaN));
      assert.deepEqual(x.isnan().toList(), [1, 0, 0, 0]);
      assert.deepEqual(x.isfinite().toList(), [0, 1, 0, 0]);
      assert.ok(
        Number.isNaN(
          tensor([-1])
            .log()
            .add(tensor([-1]).sqrt())
            .item(),
        ),
      );
      assert.ok(Number.isNaN(tensor([NaN]).item()));
      assert.ok(Number.isNaN(ones([1]).div(0).mul(0).item()));
    });
  });

  test('crossEntropy with NaN logits returns NaN; backward gives NaN gradients, not a crash', () => {
    tidy(() => {
      const logits = tensor(
        [
          [NaN, 1, 2],
          [0, 1, 2],
        ],
        undefined,
        { requiresGrad: true },
      );
      const y = long([1, 2]);
      const loss = crossEntropy(logits, y);
      assert.ok(Number.isNaN(loss.item()));
      const none = crossEntropy(logits, y, { reduction: 'none' }).toList();
      assert.ok(Number.isNaN(none[0]));
      assert.ok(Number.isFinite(none[1]));
      loss.backward();
      assert.ok(logits.grad!.toList().slice(0, 3).every(Number.isNaN));
    });
  });

  test('conv, pooling and batch norm with NaN input', () => {
    tidy(() => {
      const x = randn([1, 1, 4, 4]);
      const bad = x.add(tensor([NaN]).reshape(1, 1, 1, 1)).mul(ones([1, 1, 4, 4]));
      assert.ok(
        conv2d(bad, ones([1, 1, 2, 2]))
          .toList()
          .every(Number.isNaN),
      );
      assert.ok(maxPool2d(bad, 2).toList().every(Number.isNaN));
      assert.ok(batchNorm(bad, { training: true }).toList().every(Number.isNaN));
    });
  });
});

describe('tidy() with an async function', () => {
  test('throws a TypeError and frees what the function created before its first await', async () => {
    const before = liveTensors();
    let early: Tensor | undefined;
    let rejected: unknown;
    assert.throws(
      () =>
        tidy((async () => {
          early = ones([3]);
          await Promise.resolve();
          early.add(1); // the scope is gone: this must not go unnoticed, nor crash the process
        }) as unknown as () => void),
      (e: unknown) => e instanceof TypeError && /tidy\(\) takes a synchronous function/.test(e.message),
    );
    assert.equal(scopeDepth(), 0);
    assert.ok(early!.isDisposed);
    assert.equal(liveTensors(), before);
    // let the abandoned promise settle (its microtasks, then Node's unhandled-rejection
    // processing, all run before the next immediate): it must not become an unhandled rejection
    const onUnhandled = (e: unknown) => {
      rejected = e;
    };
    process.on('unhandledRejection', onUnhandled);
    for (let i = 0; i < 3; i++) await new Promise((r) => setImmediate(r));
    process.off('unhandledRejection', onUnhandled);
    assert.equal(rejected, undefined, `unhandled rejection: ${String(rejected)}`);
  });

  test('a promise-returning function is rejected even if it never awaits', () => {
    assert.throws(() => tidy(() => Promise.resolve(ones([1]))), /synchronous/);
    assert.equal(scopeDepth(), 0);
  });
});
