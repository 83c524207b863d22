// Native memory: tidy() scope semantics and a long training run that must not leak
// handles or resident memory.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import {
  Adam,
  dispose,
  getNumThreads,
  keep,
  liveTensors,
  manualSeed,
  mseLoss,
  nn,
  noGrad,
  ones,
  randn,
  scopeDepth,
  setNumThreads,
  tensor,
  tidy,
  zeros,
  type Tensor,
} from '../../src/index.js';

describe('tidy() semantics', () => {
  test('intermediates are freed, the returned tensor survives', () => {
    const before = liveTensors();
    const out = tidy(() => {
      const a = ones([3]);
      const b = a.mul(2).add(1);
      return b.sub(a);
    });
    assert.equal(liveTensors(), before + 1);
    assert.deepEqual(out.toList(), [2, 2, 2]);
    out.dispose();
    assert.equal(liveTensors(), before);
  });

  test('tensors in returned arrays, plain objects and Maps survive; others do not', () => {
    const before = liveTensors();
    let dropped: Tensor | undefined;
    const r = tidy(() => {
      dropped = ones([1]);
      return { list: [zeros([1]), ones([2])], nested: { m: new Map([['k', ones([3])]]) }, n: 5 };
    });
    assert.equal(liveTensors(), before + 3);
    assert.ok(dropped!.isDisposed);
    assert.deepEqual(r.nested.m.get('k')!.shape, [3]);
    dispose(r);
    assert.equal(liveTensors(), before);
  });

  test('a returned tensor moves to the parent scope and is freed there', () => {
    const before = liveTensors();
    let inner: Tensor | undefined;
    const outer = tidy(() => {
      inner = tidy(() => ones([2]).mul(3));
      assert.equal(scopeDepth(), 1);
      assert.ok(!inner.isDisposed, 'survives its own scope');
      return inner.sum();
    });
    assert.ok(inner!.isDisposed, 'the parent scope disposed it');
    assert.equal(outer.item(), 6);
    assert.equal(liveTensors(), before + 1);
    outer.dispose();
    assert.equal(scopeDepth(), 0);
  });

  test('keep() survives every scope; tensors made outside scopes belong to the caller', () => {
    const before = liveTensors();
    const outside = ones([1]);
    let kept: Tensor | undefined;
    let kept2: Tensor | undefined;
    tidy(() => {
      tidy(() => {
        kept = keep(ones([2]));
        kept2 = zeros([2]).keep();
        outside.add(1);
      });
    });
    assert.ok(!kept!.isDisposed && !kept2!.isDisposed && !outside.isDisposed);
    assert.equal(liveTensors(), before + 3);
    dispose([kept, kept2, outside]);
    assert.equal(liveTensors(), before);
  });

  test('nested scopes free at each level', () => {
    const before = liveTensors();
    tidy(() => {
      const a = ones([1]);
      tidy(() => {
        ones([1]);
        tidy(() => ones([1]));
        assert.equal(liveTensors(), before + 2 + 1);
      });
      assert.equal(liveTensors(), before + 1);
      assert.ok(!a.isDisposed);
    });
    assert.equal(liveTensors(), before);
  });

  test('an exception inside tidy frees everything created, at every level, and closes the scopes', () => {
    const before = liveTensors();
    let made: Tensor[] = [];
    assert.throws(
      () =>
        tidy(() => {
          made.push(ones([4]));
          tidy(() => {
            made.push(ones([4]).mul(2));
            throw new Error('boom');
          });
        }),
      /boom/,
    );
    assert.equal(liveTensors(), before);
    assert.ok(made.every((t) => t.isDisposed));
    assert.equal(scopeDepth(), 0);
    // a libtorch error mid-scope behaves the same
    made = [];
    assert.throws(() => tidy(() => ones([2, 3]).matmul(ones([2, 3]))), /libtorch: .*mat1 and mat2 shapes cannot be multiplied/);
    assert.equal(liveTensors(), before);
    assert.equal(scopeDepth(), 0);
  });

  test('handles forgotten without dispose() are released by the GC finalizer (backstop)', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const before = liveTensors();
    (() => {
      for (let i = 0; i < 100; i++) ones([1000]).mul(2); // never disposed, outside any scope
    })();
    assert.equal(liveTensors(), before + 200);
    for (let i = 0; i < 20 && liveTensors() > before; i++) {
      gc();
      await new Promise((r) => setImmediate(r));
    }
    assert.equal(liveTensors(), before);
  });

  test('dispose() is idempotent and the handle count never goes negative', () => {
    const before = liveTensors();
    const t = ones([2]);
    t.dispose();
    t.dispose();
    assert.equal(liveTensors(), before);
    const inScope = tidy(() => {
      const x = ones([1]);
      x.dispose(); // disposed early by hand: the scope's own dispose is a no-op
      return zeros([1]);
    });
    assert.equal(liveTensors(), before + 1);
    inScope.dispose();
  });
});

describe('long runs', () => {
  // One intra-op thread: these properties are about handles and the allocator, and
  // OpenMP threads crawl when other processes hold the cores (50x slower here then).
  let threads = 1;
  before(() => {
    threads = getNumThreads();
    setNumThreads(1);
  });
  after(() => setNumThreads(threads));

  test('3000 Adam steps of an MLP inside tidy(): no handle leak, bounded RSS', () => {
    manualSeed(7);
    const model = new nn.Sequential(new nn.Linear(16, 32), new nn.ReLU(), new nn.Linear(32, 32), new nn.ReLU(), new nn.Linear(32, 4));
    const opt = new Adam(model.parameters(), { lr: 1e-3 });
    const x = randn([64, 16]);
    const y = tidy(() => x.matmul(randn([16, 4])).tanh());
    const step = (): number =>
      tidy(() => {
        opt.zeroGrad();
        const loss = mseLoss(model.forward(x), y);
        loss.backward();
        opt.step();
        return loss.item();
      });
    // warm-up: optimizer state appears on the first step, allocator caches fill up
    const first = step();
    for (let i = 0; i < 200; i++) step();
    const handles = liveTensors();
    const rss0 = process.memoryUsage().rss;
    let last = first;
    for (let i = 0; i < 3000; i++) {
      last = step();
      if (liveTensors() !== handles) assert.fail(`step ${i}: ${liveTensors()} live handles, expected ${handles}`);
    }
    const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
    assert.ok(grown < 30, `RSS grew by ${grown.toFixed(1)} MB over 3000 steps`);
    assert.ok(last < first, `training makes progress (loss ${first} -> ${last})`);
    assert.equal(scopeDepth(), 0);
    opt.dispose();
    model.dispose();
    dispose([x, y]);
  });

  test('an inference loop with MB-sized activations keeps a flat RSS', () => {
    manualSeed(11);
    const net = new nn.Sequential(
      new nn.Conv2d(1, 16, 3, { padding: 1 }),
      new nn.ReLU(),
      new nn.MaxPool2d(2),
      new nn.Conv2d(16, 16, 3, { padding: 1 }),
      new nn.ReLU(),
      new nn.Flatten(),
      new nn.Linear(16 * 14 * 14, 10),
    ).eval();
    const batch = Float32Array.from({ length: 128 * 784 }, (_, i) => (i % 97) / 97);
    const infer = (): number[] =>
      noGrad(() =>
        tidy(() =>
          net
            .forward(tensor(batch, [128, 1, 28, 28]).sub(0.5).div(0.25))
            .argmax(1)
            .toList(),
        ),
      );
    const expected = infer();
    for (let i = 0; i < 10; i++) infer();
    const handles = liveTensors();
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 200; i++) {
      const got = infer();
      if (i % 50 === 0) assert.deepEqual(got, expected);
    }
    assert.equal(liveTensors(), handles);
    const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
    assert.ok(grown < 30, `RSS grew by ${grown.toFixed(1)} MB over 200 batches`);
    net.dispose();
  });

  test('creating and disposing large tensors repeatedly returns their memory', () => {
    const big = (): number => tidy(() => zeros([1024, 1024]).add(1).sum().item()); // 2 x 4 MB
    for (let i = 0; i < 5; i++) big();
    const rss0 = process.memoryUsage().rss;
    for (let i = 0; i < 200; i++) assert.equal(big(), 1024 * 1024);
    const grown = (process.memoryUsage().rss - rss0) / 2 ** 20;
    assert.ok(grown < 30, `RSS grew by ${grown.toFixed(1)} MB`);
    // a tensor from a typed array owns a copy: the source can be reused
    const src = new Float32Array([1, 2, 3]);
    const t = tensor(src);
    src[0] = 100;
    assert.deepEqual(t.toList(), [1, 2, 3]);
    t.dispose();
  });
});
