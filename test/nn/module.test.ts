// Module composition with PyTorch's vocabulary: dotted names, train/eval, state dicts and
// checkpoints, dtype moves, and the behaviour of the stock layers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { liveTensors, manualSeed, nn, noGrad, ones, randn, tensor, tidy, zeros, type Tensor } from '../../src/index.js';
import { close, tmp } from '../helpers/util.js';

const { BatchNorm2d, Conv2d, Dropout, Flatten, Linear, Module, ReLU, Sequential, loadCheckpointInto, readCheckpoint, saveCheckpoint } = nn;

/** conv -> bn -> relu -> (flatten -> dropout -> linear), on [N, 1, 4, 4] inputs */
function build(out = 3): InstanceType<typeof Sequential> {
  return new Sequential(
    new Conv2d(1, 2, 3, { padding: 1 }),
    new BatchNorm2d(2),
    new ReLU(),
    new Sequential(new Flatten(), new Dropout(0.25), new Linear(2 * 4 * 4, out)),
  );
}

test('nested Sequential: dotted PyTorch names for parameters, buffers, modules and the state dict', () => {
  const net = build();
  try {
    assert.deepEqual(
      net.namedModules().map(([n]) => n),
      ['', '0', '1', '2', '3', '3.0', '3.1', '3.2'],
    );
    assert.deepEqual(
      net.namedParameters().map(([n]) => n),
      ['0.weight', '0.bias', '1.weight', '1.bias', '3.2.weight', '3.2.bias'],
    );
    assert.deepEqual(
      net.namedBuffers().map(([n]) => n),
      ['1.running_mean', '1.running_var', '1.num_batches_tracked'],
    );
    const sd = net.stateDict();
    assert.deepEqual(
      [...sd.keys()],
      ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked', '3.2.weight', '3.2.bias'],
    );
    // the module's own tensors, not copies
    const conv = net.at(0) as InstanceType<typeof Conv2d>;
    const bn = net.at(1) as InstanceType<typeof BatchNorm2d>;
    const lin = (net.at(3) as InstanceType<typeof Sequential>).at(2) as InstanceType<typeof Linear>;
    assert.equal(sd.get('0.weight'), conv.weight);
    assert.equal(sd.get('1.running_mean'), bn.runningMean);
    assert.equal(sd.get('3.2.bias'), lin.bias);
    assert.deepEqual(net.namedParameters('model').map(([n]) => n)[0], 'model.0.weight');
    for (const [n, p] of net.namedParameters()) assert.equal(p.requiresGrad, true, n);
    for (const [n, b] of net.namedBuffers()) assert.equal(b.requiresGrad, false, n);
    assert.equal(sd.get('1.num_batches_tracked')!.dtype, 'int64');
    assert.deepEqual(sd.get('1.num_batches_tracked')!.shape, []);
    assert.equal(net.numParameters(), 2 * 1 * 9 + 2 + 2 + 2 + 32 * 3 + 3);
    assert.deepEqual(
      net.children().map(([n]) => n),
      ['0', '1', '2', '3'],
    );
  } finally {
    net.dispose();
  }
});

test('train() and eval() propagate through nested modules', () => {
  const net = build();
  try {
    assert.ok(
      net.namedModules().every(([, m]) => m.training),
      'modules start in training mode',
    );
    assert.equal(net.eval(), net, 'eval() chains');
    assert.ok(net.namedModules().every(([, m]) => !m.training));
    net.train();
    assert.ok(net.namedModules().every(([, m]) => m.training));
    net.train(false);
    assert.ok(net.namedModules().every(([, m]) => !m.training));
    net.train();
    net.at(3).eval(); // a subtree only
    assert.deepEqual(
      net.namedModules().map(([n, m]) => [n, m.training]),
      [
        ['', true],
        ['0', true],
        ['1', true],
        ['2', true],
        ['3', false],
        ['3.0', false],
        ['3.1', false],
        ['3.2', false],
      ],
    );
  } finally {
    net.dispose();
  }
});

test('stateDict -> saveCheckpoint -> readCheckpoint / loadCheckpointInto reproduces outputs exactly', () => {
  const dir = tmp('module-test-');
  manualSeed(1);
  const a = build();
  manualSeed(2);
  const b = build();
  const live = liveTensors();
  try {
    tidy(() => {
      const x = randn([5, 1, 4, 4]);
      // move the batch-norm statistics away from their initial values
      for (let i = 0; i < 3; i++) a.forward(x.mul(i + 1));
      a.eval();
      b.eval();
      const y1 = a.forward(x).data();
      assert.notDeepEqual(b.forward(x).data(), y1, 'differently seeded models differ');

      const p = join(dir, 'ck.safetensors');
      const extra = new Map<string, Tensor>([
        ['adam.step', tensor(new BigInt64Array([7n]), [])],
        ['adam.m.0', ones([2, 2])],
      ]);
      saveCheckpoint(p, a, { kind: 'test', epoch: 3, nested: { ok: true } }, extra);

      const ck = readCheckpoint(p);
      assert.deepEqual(ck.metadata, { kind: 'test', epoch: 3, nested: { ok: true } });
      assert.deepEqual([...ck.state.keys()].sort(), [...a.stateDict().keys()].sort());
      assert.deepEqual([...ck.extra.keys()].sort(), ['adam.m.0', 'adam.step']);
      assert.equal(ck.state.get('1.num_batches_tracked')!.dtype, 'int64');
      assert.equal(ck.state.get('1.num_batches_tracked')!.item(), 3);
      for (const [k, t] of a.stateDict()) assert.deepEqual(ck.state.get(k)!.data(), t.data(), k);

      const loaded = loadCheckpointInto(p, b);
      assert.deepEqual(loaded.metadata.kind, 'test');
      assert.equal(loaded.extra.get('adam.step')!.item(), 7);
      assert.deepEqual(b.forward(x).data(), y1, 'identical outputs after loading');
      for (const [k, t] of b.stateDict()) assert.deepEqual(t.data(), a.stateDict().get(k)!.data(), k);
      // loading copies values in: the module keeps its own tensors, which still train
      assert.ok(b.parameters().every((t) => t.requiresGrad && !t.isDisposed));

      // a plain stateDict round trip between modules, no file
      manualSeed(3);
      const c = build();
      c.loadStateDict(a.stateDict());
      c.eval();
      assert.deepEqual(c.forward(x).data(), y1);
      c.dispose();
    });
    assert.equal(liveTensors(), live, 'no tensor handles leak');
  } finally {
    a.dispose();
    b.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('strict loading names missing and unexpected keys and shape mismatches, and changes nothing', () => {
  const dir = tmp('module-test-');
  const a = build();
  const b = build();
  const wrong = build(4);
  const live = liveTensors();
  try {
    tidy(() => {
      const before = b.stateDict().get('0.weight')!.data();
      const missing = new Map(a.stateDict());
      missing.delete('1.running_var');
      missing.delete('0.bias');
      assert.throws(
        () => b.loadStateDict(missing),
        (e: unknown) => {
          assert.ok(e instanceof Error);
          assert.match(e.message, /state dict does not match Sequential: missing 0\.bias, 1\.running_var \(/);
          assert.doesNotMatch(e.message, /unexpected/);
          return true;
        },
      );
      const unexpected = new Map(a.stateDict());
      unexpected.set('4.weight', zeros([1]));
      assert.throws(() => b.loadStateDict(unexpected), /state dict does not match Sequential: unexpected 4\.weight \(/);
      const both = new Map(missing);
      both.set('4.weight', zeros([1]));
      assert.throws(() => b.loadStateDict(both), /missing 0\.bias, 1\.running_var; unexpected 4\.weight/);
      assert.throws(
        () => b.loadStateDict(wrong.stateDict()),
        /state dict entry '3\.2\.weight' has shape \[4,32\], the module expects \[3,32\]/,
      );
      assert.throws(
        () => b.loadStateDict(wrong.stateDict(), { strict: false }),
        /'3\.2\.weight' has shape \[4,32\]/,
        'shapes are checked in non-strict mode too',
      );
      assert.deepEqual(b.stateDict().get('0.weight')!.data(), before, 'failed loads leave the module unchanged');

      // non-strict loads the names that match and reports the rest
      const r = b.loadStateDict(both, { strict: false });
      assert.deepEqual(r, { missing: ['0.bias', '1.running_var'], unexpected: ['4.weight'] });
      assert.deepEqual(b.stateDict().get('0.weight')!.data(), a.stateDict().get('0.weight')!.data());

      // through a checkpoint file: the error names the file
      const p = join(dir, 'wrong.safetensors');
      saveCheckpoint(p, wrong, { kind: 'wrong' });
      assert.throws(
        () => loadCheckpointInto(p, a),
        (e: unknown) => {
          assert.ok(e instanceof Error);
          assert.ok(e.message.startsWith(`${p}: state dict entry '3.2.weight' has shape [4,32]`), e.message);
          return true;
        },
      );
      const q = join(dir, 'other.safetensors');
      const lin = new Linear(2, 2);
      saveCheckpoint(q, lin, {});
      lin.dispose();
      assert.throws(
        () => loadCheckpointInto(q, a),
        /other\.safetensors: state dict does not match Sequential: missing 0\.weight, .*; unexpected (weight, bias|bias, weight) \(/,
      );
      assert.throws(() => loadCheckpointInto(join(dir, 'none.safetensors'), a), /none\.safetensors: no such file/);
    });
    assert.equal(liveTensors(), live, 'failed loads free their temporaries');
  } finally {
    a.dispose();
    b.dispose();
    wrong.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

class WithMask extends Module {
  readonly w: Tensor;
  readonly mask: Tensor;
  constructor() {
    super();
    this.w = this.registerParameter('w', ones([2]));
    this.mask = this.registerBuffer('mask', tensor(new Uint8Array([1, 0])));
  }
  forward(x: Tensor): Tensor {
    return x.mul(this.w);
  }
}

test("to('float64') keeps tensor identity and requiresGrad, casts only floating tensors, leaks nothing", () => {
  const net = build();
  const m = new WithMask();
  try {
    const params = net.namedParameters();
    const buffers = net.namedBuffers();
    const values = new Map([...net.stateDict()].map(([k, t]) => [k, t.dataFloat32()]));
    const live = liveTensors();
    assert.equal(net.to('float64'), net);
    assert.equal(liveTensors(), live, 'to() leaves no stray handles');
    assert.deepEqual(
      net.namedParameters().map(([n]) => n),
      params.map(([n]) => n),
    );
    net.namedParameters().forEach(([n, t], i) => {
      assert.equal(t, params[i][1], `${n}: same Tensor object`);
      assert.equal(t.dtype, 'float64', n);
      assert.equal(t.requiresGrad, true, n);
      assert.equal(t.isLeaf, true, n);
    });
    net.namedBuffers().forEach(([n, t], i) => {
      assert.equal(t, buffers[i][1], `${n}: same Tensor object`);
      assert.equal(t.requiresGrad, false, n);
    });
    assert.equal(net.stateDict().get('1.running_mean')!.dtype, 'float64');
    assert.equal(net.stateDict().get('1.num_batches_tracked')!.dtype, 'int64', 'counters stay integral');
    for (const [k, t] of net.stateDict()) assert.deepEqual(t.dataFloat32(), values.get(k), `${k}: values kept`);

    tidy(() => {
      const y = net.forward(randn([2, 1, 4, 4], { dtype: 'float64' }));
      assert.equal(y.dtype, 'float64');
      y.sum().backward();
      for (const [n, p] of net.namedParameters()) {
        const g = p.grad;
        assert.ok(g !== null && g.dtype === 'float64', `${n}: float64 gradient`);
      }
      net.zeroGrad();
    });

    m.to('float64');
    assert.equal(m.w.dtype, 'float64');
    assert.equal(m.mask.dtype, 'uint8', 'non-floating buffers keep their dtype');
    assert.throws(() => net.to('int32'), /floating-point dtypes only/);
    net.to('float32');
    assert.equal(net.parameters()[0].dtype, 'float32');
    assert.equal(net.parameters()[0], params[0][1]);
    assert.equal(liveTensors(), live);
  } finally {
    net.dispose();
    m.dispose();
  }
});

test('BatchNorm2d: running statistics update in train mode and are used in eval mode', () => {
  const bn = new BatchNorm2d(2, { momentum: 0.1, eps: 1e-5 });
  try {
    tidy(() => {
      const [N, C, H, W] = [4, 2, 3, 3];
      manualSeed(5);
      const x = randn([N, C, H, W]).mul(2).add(1);
      const xs = x.data() as Float32Array;
      const at = (n: number, c: number, i: number): number => xs[(n * C + c) * H * W + i];
      const mean: number[] = [];
      const varU: number[] = [];
      for (let c = 0; c < C; c++) {
        let s = 0;
        for (let n = 0; n < N; n++) for (let i = 0; i < H * W; i++) s += at(n, c, i);
        const m = s / (N * H * W);
        let q = 0;
        for (let n = 0; n < N; n++) for (let i = 0; i < H * W; i++) q += (at(n, c, i) - m) ** 2;
        mean.push(m);
        varU.push(q / (N * H * W - 1));
      }
      assert.equal(bn.numBatchesTracked!.item(), 0);
      const y = bn.forward(x);
      close(
        bn.runningMean!.data() as Float32Array,
        mean.map((m) => 0.1 * m),
        1e-5,
        'running_mean after one step',
      );
      close(
        bn.runningVar!.data() as Float32Array,
        varU.map((v) => 0.9 + 0.1 * v),
        1e-5,
        'running_var (unbiased) after one step',
      );
      assert.equal(bn.numBatchesTracked!.item(), 1);
      // train mode normalizes with the batch's statistics
      close(y.mean([0, 2, 3]).data() as Float32Array, [0, 0], 1e-5, 'train output mean');
      bn.forward(x);
      bn.forward(x);
      assert.equal(bn.numBatchesTracked!.item(), 3);
      close(
        bn.runningMean!.data() as Float32Array,
        mean.map((m) => (1 - 0.9 ** 3) * m),
        1e-5,
        'running_mean after three steps',
      );

      noGrad(() => {
        bn.weight!.copy_(tensor([2, 0.5]));
        bn.bias!.copy_(tensor([-1, 3]));
      });
      bn.eval();
      const rm = Array.from(bn.runningMean!.data() as Float32Array);
      const rv = Array.from(bn.runningVar!.data() as Float32Array);
      const ye = bn.forward(x).data() as Float32Array;
      const expected = Array.from(xs, (v, i) => {
        const c = Math.floor(i / (H * W)) % C;
        return ((v - rm[c]) / Math.sqrt(rv[c] + 1e-5)) * [2, 0.5][c] + [-1, 3][c];
      });
      close(ye, expected, 1e-5, 'eval output from running statistics');
      assert.deepEqual(Array.from(bn.runningMean!.data() as Float32Array), rm, 'eval mode leaves the statistics alone');
      assert.equal(bn.numBatchesTracked!.item(), 3, 'eval mode does not count batches');
    });
    assert.equal(new BatchNorm2d(3, { affine: false }).numParameters(), 0);
  } finally {
    bn.dispose();
  }
});

test('Dropout is active only in training mode', () => {
  const d = new Dropout(0.5);
  try {
    tidy(() => {
      manualSeed(7);
      const x = ones([4000]);
      const yt = Array.from(d.forward(x).data() as Float32Array);
      assert.ok(
        yt.every((v) => v === 0 || v === 2),
        'kept values are scaled by 1 / (1 - p)',
      );
      const zeroFrac = yt.filter((v) => v === 0).length / yt.length;
      assert.ok(zeroFrac > 0.45 && zeroFrac < 0.55, `about half dropped, got ${zeroFrac}`);
      d.eval();
      assert.deepEqual(d.forward(x).data(), x.data(), 'identity in eval mode');
      d.train();
      assert.deepEqual(
        Array.from(new Dropout(1).forward(x).data() as Float32Array).every((v) => v === 0),
        true,
      );
      assert.deepEqual(new Dropout(0).forward(x).data(), x.data());
      // inside a model: eval() reaches the nested dropout
      manualSeed(8);
      const net = new Sequential(new Sequential(new Dropout(0.9)));
      const z = randn([64]);
      assert.notDeepEqual(net.forward(z).data(), z.data());
      net.eval();
      assert.deepEqual(net.forward(z).data(), z.data());
    });
    assert.throws(() => new Dropout(1.5), /p must be in \[0, 1\]/);
  } finally {
    d.dispose();
  }
});

test("Conv2d padding 'same' keeps the spatial size, with dilation", () => {
  tidy(() => {
    const x = randn([2, 3, 9, 7]);
    const cases: [number | [number, number], number | [number, number], [number, number]][] = [
      [3, 1, [1, 1]],
      [3, 2, [2, 2]],
      [
        [3, 5],
        [3, 2],
        [3, 4],
      ],
      [4, 2, [3, 3]],
      [1, 5, [0, 0]],
    ];
    for (const [k, dil, pad] of cases) {
      const same = new Conv2d(3, 4, k, { padding: 'same', dilation: dil });
      const explicit = new Conv2d(3, 4, k, { padding: pad, dilation: dil });
      explicit.loadStateDict(same.stateDict());
      const y = same.forward(x);
      assert.deepEqual(y.shape, [2, 4, 9, 7], `kernel ${String(k)}, dilation ${String(dil)}`);
      assert.deepEqual(y.data(), explicit.forward(x).data(), `same as explicit padding ${pad}`);
      same.dispose();
      explicit.dispose();
    }
    const even = new Conv2d(3, 4, 2, { padding: 'same' });
    assert.throws(() => even.forward(x), /'same' padding needs an odd effective kernel size/);
    even.dispose();
    const strided = new Conv2d(3, 4, 3, { padding: 'same', stride: 2 });
    assert.throws(() => strided.forward(x), /'same' needs stride 1/);
    strided.dispose();
  });
});

test('parameter counts and shapes of Linear and Conv2d', () => {
  const mods = [
    new Linear(10, 5),
    new Linear(10, 5, { bias: false }),
    new Conv2d(3, 8, 3),
    new Conv2d(4, 8, [3, 5], { groups: 2, bias: false }),
    new BatchNorm2d(6),
  ];
  try {
    const [l1, l2, c1, c2, bn] = mods as [
      InstanceType<typeof Linear>,
      InstanceType<typeof Linear>,
      InstanceType<typeof Conv2d>,
      InstanceType<typeof Conv2d>,
      InstanceType<typeof BatchNorm2d>,
    ];
    assert.equal(l1.numParameters(), 55);
    assert.deepEqual(l1.weight.shape, [5, 10]);
    assert.deepEqual(l1.bias!.shape, [5]);
    assert.equal(l2.numParameters(), 50);
    assert.equal(l2.bias, null);
    assert.deepEqual(
      l2.namedParameters().map(([n]) => n),
      ['weight'],
    );
    assert.equal(c1.numParameters(), 8 * 3 * 9 + 8);
    assert.deepEqual(c1.weight.shape, [8, 3, 3, 3]);
    assert.equal(c2.numParameters(), 8 * 2 * 15);
    assert.deepEqual(c2.weight.shape, [8, 2, 3, 5]);
    assert.equal(bn.numParameters(), 12);
    assert.equal(new Sequential(...mods).numParameters(), 55 + 50 + 224 + 240 + 12);
    assert.throws(() => new Conv2d(3, 8, 3, { groups: 2 }), /divisible by groups/);
    assert.throws(() => new Linear(0, 5), /sizes must be positive/);
  } finally {
    for (const m of mods) m.dispose();
  }
});
