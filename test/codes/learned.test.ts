import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, tidy, randn, manualSeed, dispose, empty, noGrad, type Tensor } from '../../src/index.js';
import { normal_ } from '../../src/engine/init.js';
import {
  LearnedCode,
  type MLPDecoder,
  registerDecoder,
  registerEncoder,
  codeFromConfig,
  saveCode,
  computeAll,
  UndecodableError,
  type LearnedCodeConfig,
} from '../../src/codes/index.js';
import { Module, Linear, Sequential, BatchNorm2d, ReLU, saveSafetensors } from '../../src/nn/index.js';
import { loadCodeCheckpoint } from '../../src/codes/checkpoint.js';
import { applyReferenceInit } from '../../src/models/paper-init.js';
import { BaseMLP } from '../../src/models/base-mlp.js';
import type { ConvEncoder } from '../../src/models/conv-encoder.js';
import { Conv2d } from '../../src/nn/conv2d.js';
import { Adam } from '../../src/engine/optim/adam.js';
import { loadDataset, disposeDataset } from '../../src/data/registry.js';
import {
  buildJointParityModels,
  erasedMask,
  erasedSlotLoss,
  freeze,
  learnedLoss,
  trainLearned,
  LOSSES,
  type LearnedTrainingConfig,
} from '../../src/train/learned-training.js';
import { buildModel } from '../../src/models/registry.js';

const choose = (n: number, m: number): number => (m < 0 || m > n ? 0 : m === 0 ? 1 : (choose(n - 1, m - 1) * n) / m);

const cfg = (o: Partial<LearnedCodeConfig> = {}): LearnedCodeConfig => ({
  family: 'learned',
  k: 2,
  r: 1,
  encoder: 'mlp',
  decoder: 'mlp',
  input: { channels: 1, height: 4, width: 4 },
  outputs: 3,
  ...o,
});

// a decoder that records what it was given and returns zeros of the right shape (a user coder)
let recorded: number[][] = [];
class RecordingDecoder extends Module {
  readonly lin: Linear;
  constructor(
    readonly k: number,
    readonly m: number,
  ) {
    super();
    this.lin = this.registerModule('lin', new Linear(1, 1));
  }
  forward(y: Tensor): Tensor {
    recorded = [y.shape, Array.from(y.contiguous().data() as Float32Array)];
    return y.narrow(1, 0, this.k).mul(0);
  }
}
registerDecoder('test-recording', { description: 'records its input', build: (s) => new RecordingDecoder(s.k, s.m) });

// an encoder that returns, per parity j, (j + 1) * the sum of the k inputs (a user coder)
class SumEncoder extends Module {
  readonly dummy: Linear;
  constructor(readonly r: number) {
    super();
    this.dummy = this.registerModule('dummy', new Linear(1, 1));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const s = x.sum(1, true);
      return s.repeat([1, this.r, 1, 1]).mul(
        tensor(
          Array.from({ length: this.r }, (_, j) => j + 1),
          [1, this.r, 1, 1],
        ),
      );
    });
  }
}
registerEncoder('test-sum', { description: 'sum of inputs', build: (s) => new SumEncoder(s.r) });

test('evaluation and training patterns: every pattern of 1..r missing outputs except the all-parity ones', () => {
  for (const [k, r] of [
    [2, 1],
    [2, 2],
    [5, 1],
    [3, 2],
    [2, 3],
  ]) {
    const code = new LearnedCode(cfg({ k, r }));
    const ps = code.evaluationPatterns();
    let expected = 0;
    for (let m = 1; m <= r; m++) expected += choose(k + r, m) - choose(r, m);
    assert.equal(ps.length, expected, `k=${k} r=${r}`);
    // exactly r missing: C(k + r, r) minus the single all-parity pattern
    assert.equal(ps.filter((p) => p.filter((a) => !a).length === r).length, choose(k + r, r) - 1);
    for (const p of ps) assert.ok(p.slice(0, k).some((a) => !a));
    assert.equal(new Set(ps.map((p) => p.join())).size, ps.length);
    const mask = erasedMask(ps, k);
    assert.deepEqual(mask.shape, [ps.length, k]);
    mask.dispose();
    for (const [, m] of code.modules()) m.dispose();
  }
});

test('decoder input: unavailable outputs are zeros at their own positions, the rest kept in place', () => {
  tidy(() => {
    const code = new LearnedCode(cfg({ k: 3, r: 2, decoder: 'test-recording' }));
    const G = 2;
    const m = 3;
    const outs = Array.from({ length: 5 }, (_, i) =>
      tensor(
        Array.from({ length: G * m }, (_, j) => 10 * (i + 1) + j + 1),
        [G, m],
      ),
    );
    const avail = [true, false, true, true, false];
    const d = code.decode(outs.map((o, i) => (avail[i] ? o : null)));
    assert.deepEqual(d.reconstructed, [false, true, false]);
    const [shape, values] = recorded;
    assert.deepEqual(shape, [G, 5, m]);
    for (let g = 0; g < G; g++) {
      for (let i = 0; i < 5; i++) {
        for (let c = 0; c < m; c++) {
          const v = values[(g * 5 + i) * m + c];
          assert.equal(v, avail[i] ? 10 * (i + 1) + g * m + c + 1 : 0, `group ${g} slot ${i} class ${c}`);
        }
      }
    }
    // available data outputs are passed through untouched
    assert.deepEqual(d.outputs[0].toList(), outs[0].toList());
    assert.deepEqual(d.outputs[2].toList(), outs[2].toList());
    // the vectorised path zeroes the same positions for every pattern
    const all = tidy(() =>
      tensor(
        outs.flatMap((o) => o.toList()),
        [5, G, m],
      )
        .permute(1, 0, 2)
        .contiguous(),
    );
    const ps = code.evaluationPatterns();
    code.decodePatterns(all, ps);
    const [s2, v2] = recorded;
    assert.deepEqual(s2, [ps.length * G, 5, m]);
    ps.forEach((p, pi) => {
      for (let g = 0; g < G; g++)
        for (let i = 0; i < 5; i++)
          for (let c = 0; c < m; c++) {
            const v = v2[((pi * G + g) * 5 + i) * m + c];
            assert.equal(v, p[i] ? 10 * (i + 1) + g * m + c + 1 : 0);
          }
    });
    for (const [, mod] of code.modules()) mod.dispose();
  });
});

test('decode: no data missing passes through; more than r missing is undecodable; wrong shapes are refused', () => {
  tidy(() => {
    const code = new LearnedCode(cfg());
    const o = [randn([4, 3]), randn([4, 3]), randn([4, 3])];
    const d = code.decode([o[0], o[1], null]);
    assert.deepEqual(d.reconstructed, [false, false]);
    assert.deepEqual(d.outputs[1].toList(), o[1].toList());
    const r = code.decode([null, o[1], o[2]]);
    assert.deepEqual(r.reconstructed, [true, false]);
    assert.deepEqual(r.outputs[0].shape, [4, 3]);
    assert.equal(code.canDecode([false, false, true]), false);
    assert.throws(() => code.decode([null, null, o[2]]), UndecodableError);
    assert.throws(() => code.decode([o[0], o[1]]), /takes 3 outputs/);
    assert.throws(() => code.decode([null, randn([4, 5]), o[2]]), /must be \[G, 3\]/);
    assert.throws(() => code.encode(randn([4, 2, 1, 5, 5])), /expected coding groups shaped \[G, 2, 1, 4, 4\]/);
    for (const [, mod] of code.modules()) mod.dispose();
  });
});

test('bad configs give clear errors', () => {
  assert.throws(() => codeFromConfig(cfg({ encoder: 'nope' })), /unknown encoder 'nope'.*registerEncoder/);
  assert.throws(() => codeFromConfig(cfg({ decoder: 'nope' })), /unknown decoder 'nope'/);
  assert.throws(() => codeFromConfig(cfg({ r: 0 })), /r must be >= 1/);
  assert.throws(() => codeFromConfig(cfg({ input: { channels: 1, height: 0, width: 4 } })), /input must be/);
  assert.throws(() => codeFromConfig(cfg({ outputs: 0 })), /outputs/);
  assert.throws(() => registerEncoder('mlp', { description: '', build: () => new Linear(1, 1) }), /already registered/);
});

test('multi-channel queries are encoded channel by channel: channels never mix', () => {
  tidy(() => {
    for (const enc of ['conv', 'mlp', 'test-sum']) {
      manualSeed(3);
      const code = new LearnedCode(cfg({ k: 2, r: 2, encoder: enc, input: { channels: 3, height: 5, width: 5 } }));
      const x = randn([4, 2, 3, 5, 5]);
      const p = code.parities(x);
      assert.deepEqual(p.shape, [4, 2, 3, 5, 5]);
      // parity channel c equals the encoder applied to the k inputs' channel c alone
      for (let c = 0; c < 3; c++) {
        const direct = code.encoder.forward(x.select(2, c));
        const got = p.select(2, c);
        assert.ok(direct.sub(got).abs().max().item() < 1e-5, `${enc}: channel ${c}`);
      }
      // perturbing the green channel changes only green parities
      const x2 = x.clone();
      x2.select(2, 1).add_(1);
      const p2 = code.parities(x2);
      const diff = p2.sub(p).abs().sum([0, 1, 3, 4]).toList();
      assert.equal(diff[0], 0, enc);
      assert.equal(diff[2], 0, enc);
      assert.ok(diff[1] > 0, enc);
      // coded queries: k originals then r parities, all for the base model
      const q = code.encode(x);
      assert.equal(q.length, 4);
      for (const cq of q) assert.deepEqual(cq.fn, { kind: 'base' });
      assert.deepEqual(q[1].inputs[0].toList(), x.select(1, 1).toList());
      assert.deepEqual(q[3].inputs[0].toList(), p.select(1, 1).toList());
      for (const [, mod] of code.modules()) mod.dispose();
    }
  });
});

test('the gradient reaches the encoder through F (or F_P in joint mode) while F stays bit-identical; F_P moves', () => {
  const snap = (ps: Tensor[]) => ps.map((p) => Float32Array.from(p.data() as Float32Array));
  const moved = (ps: Tensor[], before: Float32Array[]) =>
    ps.some((p, i) => Float32Array.from(p.data() as Float32Array).some((v, j) => v !== before[i][j]));
  for (const mode of ['F', 'joint'] as const) {
    for (const encoder of ['mlp', 'conv']) {
      const what = `${mode}/${encoder}`;
      manualSeed(1);
      // joint mode copies F into its parity models, so F must be the zoo's base-mlp there
      // (with O(1) weights: the paper init's ~0.01 make outputs so flat that kl-base gradients round to zero)
      const base =
        mode === 'F'
          ? new BaseMLP({ inFeatures: 16, hidden: [8], numClasses: 3 })
          : buildModel('base-mlp', { channels: 1, height: 4, width: 4, classes: 3 });
      if (mode === 'joint')
        noGrad(() => {
          for (const t of base.parameters()) t.uniform_(-0.3, 0.3);
        });
      freeze(base);
      const before = snap(base.parameters());
      const code = new LearnedCode(
        cfg({ k: 2, r: mode === 'joint' ? 2 : 1, encoder, parityModel: mode === 'joint' ? 'base-mlp' : undefined }),
      );
      const { parity } = buildJointParityModels({ parityModel: mode === 'joint' ? 'base' : undefined }, code, base);
      assert.equal(parity.length, mode === 'joint' ? 2 : 0);
      // 'base': each parity model starts as a copy of F (separate storage)
      for (const pm of parity)
        pm.parameters().forEach((p, i) =>
          assert.deepEqual(Float32Array.from(p.data() as Float32Array), before[i], `${what}: F_P is not a copy of F`),
        );
      const parityParams = parity.flatMap((m) => m.parameters());
      const params = [...code.encoder.parameters(), ...code.decoder.parameters(), ...parityParams];
      const opt = new Adam(params, { lr: 1e-3, weightDecay: 1e-5 });
      const encBefore = snap(code.encoder.parameters());
      const decBefore = snap(code.decoder.parameters());
      const parBefore = snap(parityParams);
      const patterns = code.evaluationPatterns();
      const erased = erasedMask(patterns, 2);
      for (let step = 0; step < 3; step++) {
        tidy(() => {
          opt.zeroGrad();
          const x = randn([6, 2, 1, 4, 4]);
          const y = tensor([0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2], [6, 2], { dtype: 'int64' });
          const loss = learnedLoss(code, base, x, y, patterns, erased, 'kl-base', parity);
          loss.backward();
          for (const p of code.encoder.parameters()) {
            assert.ok(p.grad !== null, `${what}: encoder gradient missing`);
            assert.ok(p.grad.abs().sum().item() > 0 || p.shape.length === 1, `${what}: encoder gradient is zero`);
          }
          for (const pm of parity) {
            assert.ok(
              pm.parameters().every((p) => p.grad !== null),
              `${what}: F_P gradient missing`,
            );
            assert.ok(
              pm.parameters().some((p) => p.grad!.abs().sum().item() > 0),
              `${what}: F_P gradient is zero`,
            );
          }
          for (const p of base.parameters()) assert.equal(p.grad, null, 'F accumulated a gradient');
          opt.step();
        });
      }
      base.parameters().forEach((p, i) => assert.deepEqual(Float32Array.from(p.data() as Float32Array), before[i], `${what}: F changed`));
      assert.ok(moved(code.encoder.parameters(), encBefore), `${what}: the encoder did not move`);
      assert.ok(moved(code.decoder.parameters(), decBefore), `${what}: the decoder did not move`);
      if (mode === 'joint') {
        assert.ok(moved(parityParams, parBefore), `${what}: F_P did not move`);
        for (const pm of parity) assert.ok(moved(pm.parameters(), before), `${what}: a parity model still equals F`);
        // a joint code must be given its parity models
        assert.throws(
          () =>
            learnedLoss(code, base, randn([2, 2, 1, 4, 4]), tensor([0, 1, 2, 0], [2, 2], { dtype: 'int64' }), patterns, erased, 'kl-base'),
          /2 parity model\(s\); learnedLoss was given 0/,
        );
      }
      opt.dispose();
      erased.dispose();
      base.dispose();
      for (const m of parity) m.dispose();
      for (const [, m] of code.modules()) m.dispose();
    }
  }
});

test('losses are taken on erased slots only (value and gradient)', () => {
  tidy(() => {
    // k = 2, r = 1: patterns 011 (slot 0 erased) and 101 (slot 1 erased)
    const code = new LearnedCode(cfg());
    const ps = code.evaluationPatterns();
    assert.deepEqual(ps, [
      [false, true, true],
      [true, false, true],
    ]);
    const erased = erasedMask(ps, 2);
    const G = 3;
    const target = randn([G, 2, 3]);
    const labels = tensor([0, 1, 2, 2, 1, 0], [G, 2], { dtype: 'int64' });
    for (const loss of LOSSES) {
      const rec = randn([2, G, 2, 3]).requiresGrad_(true);
      const l = erasedSlotLoss(rec, target, labels, erased, loss);
      l.backward();
      const g = rec.grad!;
      // pattern 0 erased slot 0 only, pattern 1 slot 1 only
      assert.equal(g.select(0, 0).select(1, 1).abs().sum().item(), 0, `${loss}: gradient on an available slot`);
      assert.equal(g.select(0, 1).select(1, 0).abs().sum().item(), 0, `${loss}: gradient on an available slot`);
      assert.ok(g.select(0, 0).select(1, 0).abs().sum().item() > 0, loss);
      assert.ok(g.select(0, 1).select(1, 1).abs().sum().item() > 0, loss);
      // the value depends only on the erased slots: changing available ones changes nothing
      const rec2 = rec.detach().clone();
      rec2.select(0, 0).select(1, 1).add_(5);
      rec2.select(0, 1).select(1, 0).add_(5);
      assert.ok(Math.abs(erasedSlotLoss(rec2, target, labels, erased, loss).item() - l.item()) < 1e-6, loss);
      if (loss === 'mse-base') {
        // as the reference's MaskedLoss(MSELoss): squared error summed over the m outputs of a
        // slot (not averaged), then averaged over the erased slots (2 patterns x G groups)
        const a = rec.detach().select(0, 0).select(1, 0).sub(target.select(1, 0)).square().sum().item();
        const b = rec.detach().select(0, 1).select(1, 1).sub(target.select(1, 1)).square().sum().item();
        assert.ok(Math.abs(l.item() - (a + b) / (2 * G)) < 1e-4, `mse-base ${l.item()} vs ${(a + b) / (2 * G)}`);
      }
      if (loss === 'kl-base') {
        // KL(softmax(target) || softmax(rec)) summed over the m outputs, averaged over erased slots
        let s = 0;
        for (const [pi, slot] of [
          [0, 0],
          [1, 1],
        ]) {
          const q = target.select(1, slot).softmax(-1);
          s += q
            .mul(q.log().sub(rec.detach().select(0, pi).select(1, slot).logSoftmax(-1)))
            .sum()
            .item();
        }
        assert.ok(Math.abs(l.item() - s / (2 * G)) < 1e-4, `kl-base ${l.item()} vs ${s / (2 * G)}`);
      }
      if (loss === 'xent-label') {
        const lp0 = rec.detach().select(0, 0).select(1, 0).logSoftmax(-1).toList();
        const lp1 = rec.detach().select(0, 1).select(1, 1).logSoftmax(-1).toList();
        const lab = labels.toList();
        let s = 0;
        for (let gi = 0; gi < G; gi++) s -= lp0[gi * 3 + lab[gi * 2]] + lp1[gi * 3 + lab[gi * 2 + 1]];
        assert.ok(Math.abs(l.item() - s / (2 * G)) < 1e-5);
      }
    }
    assert.throws(() => erasedSlotLoss(randn([2, G, 2, 3]), target, labels, erased, 'bogus' as never), /unknown loss/);
    for (const [, mod] of code.modules()) mod.dispose();
  });
});

test("conv encoder init: 'kaiming' keeps each 3x3 layer's activation std within 2x of the input's ('xavier' gain 1 shrinks the parity ~30x); recorded in the config, rebuilt on load", () => {
  const dir = mkdtempSync(join(tmpdir(), 'learned-init-'));
  try {
    const input = { channels: 1, height: 28, width: 28 };
    // std of the input and of every convolution's output (pre-ReLU; the last is the parity)
    manualSeed(4);
    const x0 = randn([8, 4, 28, 28]);
    const layerStds = (code: LearnedCode): number[] =>
      tidy(() =>
        noGrad(() => {
          let x = x0;
          const out = [x.std().item()];
          const net = (code.encoder as ConvEncoder).net;
          for (let i = 0; i < net.length; i++) {
            const m = net.at(i);
            x = m.forward(x);
            if (m instanceof Conv2d) out.push(x.std().item());
          }
          return out;
        }),
      );
    manualSeed(3);
    const he = new LearnedCode(cfg({ k: 4, input, encoder: 'conv', encoderOptions: { init: 'kaiming' } }));
    manualSeed(3);
    const xavier = new LearnedCode(cfg({ k: 4, input, encoder: 'conv', encoderOptions: { init: 'xavier' } }));
    manualSeed(3);
    const legacy = new LearnedCode(cfg({ k: 4, input, encoder: 'conv', encoderOptions: { init: 'paper' } }));
    const sh = layerStds(he);
    const sx = layerStds(xavier);
    assert.equal(sh.length, 8); // input + 6 dilated 3x3 convs + the 1x1 conv
    // the six 3x3 convolutions (the 1x1 parity has one output channel and 'same' padding eats
    // into the dilated layers, so it is only checked to stay within 4x)
    for (const [i, s] of sh.slice(1, 7).entries())
      assert.ok(s > sh[0] / 2 && s < sh[0] * 2, `kaiming: layer ${i} std ${s} vs input ${sh[0]} (${sh.join(', ')})`);
    assert.ok(sh[7] > sh[0] / 4 && sh[7] < sh[0] * 4, `kaiming: parity std ${sh[7]} vs input ${sh[0]}`);
    // Xavier gain 1: every layer shrinks, the parity ends far below the input
    assert.ok(sx[6] < sx[0] / 2 && sx[7] < sx[0] / 10, `xavier init: stds ${sx.join(', ')}`);
    // a stored legacy 'paper' is Xavier gain 1: the same weights from the same seed
    assert.deepEqual(layerStds(legacy), sx);
    // biases zero with both
    for (const c of [he, xavier])
      for (const [n, p] of c.encoder.namedParameters()) if (n.endsWith('bias')) assert.equal(p.abs().max().item(), 0);
    // the init is part of the code config: saved, and a loaded checkpoint rebuilds (then loads) the same encoder
    assert.deepEqual(he.config().encoderOptions, { init: 'kaiming' });
    assert.equal(new LearnedCode(cfg({ k: 4, input, encoder: 'conv' })).config().encoderOptions, undefined);
    saveCode(join(dir, 'he.safetensors'), he, {});
    const { code: back } = loadCodeCheckpoint(join(dir, 'he.safetensors'), { base: false, parity: 'none', keepExtra: true });
    assert.deepEqual((back as LearnedCode).config().encoderOptions, { init: 'kaiming' });
    assert.deepEqual(layerStds(back as LearnedCode), sh);
    assert.throws(
      () => codeFromConfig(cfg({ encoder: 'conv', encoderOptions: { init: 'he' } })),
      /options.init must be one of reference, xavier, kaiming/,
    );
    x0.dispose();
    for (const c of [he, xavier, legacy, back]) for (const [, m] of c.modules()) m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the default init is the reference code's: conv weights Xavier-uniform with the ReLU gain, linear N(0, 0.01), biases zero", () => {
  manualSeed(11);
  const code = new LearnedCode(cfg({ k: 2, input: { channels: 1, height: 28, width: 28 }, outputs: 10, encoder: 'conv' }));
  try {
    for (const [name, m] of code.encoder.namedModules()) {
      if (!(m instanceof Conv2d)) continue;
      const w = m.weight;
      const [out, inC, kh, kw] = w.shape;
      const bound = Math.SQRT2 * Math.sqrt(6 / (inC * kh * kw + out * kh * kw));
      // U(-b, b): every weight inside, the extremes near b, the std b / sqrt 3
      assert.ok(w.abs().max().item() <= bound * (1 + 1e-6), `${name}: max |w| ${w.abs().max().item()} > bound ${bound}`);
      if (out * inC * kh * kw >= 1000) {
        assert.ok(w.abs().max().item() > 0.95 * bound, `${name}: max |w| ${w.abs().max().item()} far below ${bound}`);
        const std = w.std().item();
        assert.ok(
          Math.abs(std - bound / Math.sqrt(3)) < (0.05 * bound) / Math.sqrt(3),
          `${name}: std ${std}, expected ${bound / Math.sqrt(3)} (ReLU gain; gain 1 would be ${bound / Math.SQRT2 / Math.sqrt(3)})`,
        );
      }
      assert.equal(m.bias!.abs().max().item(), 0, `${name}: bias`);
    }
    // decoder: the reference widths (k+r)m -> (k+r)m -> km -> km, N(0, 0.01) weights, zero biases
    const lin = [...code.decoder.namedModules()].map(([, m]) => m).filter((m): m is Linear => m instanceof Linear);
    assert.deepEqual(
      lin.map((l) => l.weight.shape),
      [
        [30, 30],
        [20, 30],
        [20, 20],
      ],
    );
    let n = 0,
      s = 0,
      s2 = 0;
    for (const l of lin)
      for (const v of l.weight.flatten().toList() as number[]) {
        n++;
        s += v;
        s2 += v * v;
      }
    const std = Math.sqrt(s2 / n - (s / n) ** 2);
    assert.ok(Math.abs(std - 0.01) < 0.001 && Math.abs(s / n) < 0.001, `decoder weights mean ${s / n} std ${std}`);
    for (const l of lin) assert.equal(l.bias!.abs().max().item(), 0);
  } finally {
    for (const [, m] of code.modules()) m.dispose();
  }
});

test('applyReferenceInit: batch-norm weight 1 and bias 0, linear N(0, 0.01), conv gain configurable', () => {
  manualSeed(5);
  const model = new Sequential(new Conv2d(3, 64, 3), new BatchNorm2d(64), new ReLU(), new Linear(200, 300));
  try {
    noGrad(() => {
      for (const p of model.parameters()) p.uniform_(-3, 3);
    });
    applyReferenceInit(model);
    const bn = model.at(1) as BatchNorm2d;
    assert.equal(bn.weight!.sub(1).abs().max().item(), 0);
    assert.equal(bn.bias!.abs().max().item(), 0);
    const fc = model.at(3) as Linear;
    assert.ok(Math.abs(fc.weight.std().item() - 0.01) < 0.0005, `linear std ${fc.weight.std().item()}`);
    const conv = model.at(0) as Conv2d;
    const b1 = Math.sqrt(6 / (27 + 576));
    assert.ok(Math.abs(conv.weight.std().item() - (Math.SQRT2 * b1) / Math.sqrt(3)) < 0.05 * b1, `conv std ${conv.weight.std().item()}`);
    applyReferenceInit(model, { convGain: 1 });
    assert.ok(conv.weight.abs().max().item() <= b1 * (1 + 1e-6));
  } finally {
    model.dispose();
  }
});

test('an MLPDecoder checkpoint of the layout before issue 19 (hidden km, km; no options in its config) still loads and decodes the same', () => {
  const dir = mkdtempSync(join(tmpdir(), 'learned-legacy-'));
  try {
    manualSeed(8);
    const narrow = new LearnedCode(cfg({ decoderOptions: { hidden: [6, 6] } })); // k = 2, m = 3: km = 6
    const c = narrow.config();
    delete c.decoderOptions; // what an old checkpoint's config holds
    const tensors = new Map<string, Tensor>();
    for (const [name, m] of narrow.modules()) for (const [key, t] of m.stateDict()) tensors.set(`${name}.${key}`, t);
    const path = join(dir, 'old.safetensors');
    saveSafetensors(path, tensors, { format: 'pt', coded: JSON.stringify({ kind: 'code', code: c }) });
    const { code: back } = loadCodeCheckpoint(path, { base: false, parity: 'none', keepExtra: true });
    assert.deepEqual((back as LearnedCode).config().decoderOptions, { hidden: [6, 6] });
    const all = randn([4, 3, 3]);
    const ps = narrow.evaluationPatterns();
    assert.deepEqual((back as LearnedCode).decodePatterns(all, ps).toList(), narrow.decodePatterns(all, ps).toList());
    // a new code with no options has the reference widths, so the old tensors would not fit it
    assert.deepEqual((new LearnedCode(cfg()).decoder as MLPDecoder).hidden, [9, 6]);
    assert.throws(() => codeFromConfig(cfg({ decoderOptions: { hidden: [6] } })), /options.hidden must be two positive integers/);
    for (const cd of [narrow, back]) for (const [, m] of cd.modules()) m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('save/load round trip: the same code decodes identically; computeAll runs it on the base model', () => {
  const dir = mkdtempSync(join(tmpdir(), 'learned-'));
  try {
    manualSeed(2);
    const code = new LearnedCode(cfg({ k: 2, r: 2, encoder: 'conv', encoderOptions: { hidden: 6 } }));
    const base = new BaseMLP({ inFeatures: 16, hidden: [8], numClasses: 3 });
    saveCode(join(dir, 'c.safetensors'), code, { base: { sha256: 'x' } });
    const {
      code: back,
      metadata,
      extra,
    } = loadCodeCheckpoint(join(dir, 'c.safetensors'), { base: false, parity: 'none', keepExtra: true });
    assert.equal(back.name, code.name);
    assert.deepEqual((metadata as unknown as { base: unknown }).base, { sha256: 'x' });
    assert.equal(extra.size, 0);
    tidy(() => {
      const x = randn([3, 2, 1, 4, 4]);
      const a = computeAll(code, { base }, x);
      const b = computeAll(back, { base }, x);
      for (const p of code.evaluationPatterns()) {
        const da = code.decode(a.map((t, i) => (p[i] ? t : null)));
        const db = back.decode(b.map((t, i) => (p[i] ? t : null)));
        da.outputs.forEach((t, i) => assert.deepEqual(t.toList(), db.outputs[i].toList()));
      }
    });
    base.dispose();
    for (const c of [code, back]) for (const [, m] of c.modules()) m.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('trainLearned: trains through a frozen base, keeps the best checkpoint, resumes to the same result', async () => {
  const ds = await loadDataset('synthetic', {
    synthetic: { trainSize: 600, testSize: 200, height: 6, width: 6, classes: 4 },
    validation: 100,
  });
  const dir = mkdtempSync(join(tmpdir(), 'learned-train-'));
  try {
    manualSeed(5);
    const base = new BaseMLP({ inFeatures: 36, hidden: [16], numClasses: 4 });
    const baseBefore = base.parameters().map((p) => Float32Array.from(p.data() as Float32Array));
    const data = {
      train: ds.train,
      validation: ds.validation!,
      test: ds.test,
      classes: ds.info.classes,
      input: { channels: 1, height: 6, width: 6 },
    };
    const tc: LearnedTrainingConfig = {
      dataset: 'synthetic',
      base: 'none',
      k: 2,
      r: 1,
      encoder: 'mlp',
      decoder: 'mlp',
      loss: 'kl-base',
      epochs: 2,
      batchSize: 16,
      lr: 1e-3,
      weightDecay: 1e-5,
      optimizers: 'joint',
      trainParts: 'both',
      seed: 1,
      device: 'cpu',
    };
    const id = { path: 'none', sha256: 'abc', dataset: 'synthetic', model: 'base-mlp' };
    const mk = () => new LearnedCode({ family: 'learned', k: 2, r: 1, encoder: 'mlp', decoder: 'mlp', input: data.input, outputs: 4 });
    manualSeed(7);
    const c1 = mk();
    const full = trainLearned(tc, c1, base, id, data, join(dir, 'full'));
    assert.equal(full.epochs.length, 2);
    assert.ok(full.test.degraded.count > 0);
    base
      .parameters()
      .forEach((p, i) => assert.deepEqual(Float32Array.from(p.data() as Float32Array), baseBefore[i], 'F changed during training'));
    const { metadata } = loadCodeCheckpoint(full.bestCheckpoint, { base: false, parity: 'none', keepExtra: true });
    assert.equal((metadata as unknown as { base: { sha256: string } }).base.sha256, 'abc');
    // one epoch, then resume to two: the same weights as two epochs straight
    manualSeed(7);
    const c2 = mk();
    trainLearned({ ...tc, epochs: 1 }, c2, base, id, data, join(dir, 'resumed'));
    const c3 = mk();
    const resumed = trainLearned(tc, c3, base, id, data, join(dir, 'resumed'), { resume: true });
    assert.equal(resumed.resumedFrom, 2);
    const last = (d: string) => loadCodeCheckpoint(join(dir, d, 'last.safetensors'), { base: false, parity: 'none', keepExtra: true });
    const a = last('full');
    const b = last('resumed');
    for (const [name, m] of a.code.modules()) {
      const other = b.code.modules().get(name)!.stateDict();
      for (const [key, t] of m.stateDict()) assert.deepEqual(t.toList(), other.get(key)!.toList(), `${name}.${key}`);
    }
    assert.throws(
      () => trainLearned(tc, mk(), base, { ...id, sha256: 'other' }, data, join(dir, 'resumed'), { resume: true }),
      /trained for base model/,
    );
    for (const c of [c1, c2, c3, a.code, b.code]) for (const [, m] of c.modules()) m.dispose();
    dispose([...a.extra.values(), ...b.extra.values()]);
    base.dispose();
  } finally {
    disposeDataset(ds);
    rmSync(dir, { recursive: true, force: true });
  }
});

// the worked example of src/codes/README.md ("Your own coder")
class WeightedSumEncoder extends Module {
  readonly weights: Tensor;
  constructor(k: number, r: number) {
    super();
    this.weights = this.registerParameter('weights', normal_(empty([r, k]), 1 / k, 0.01));
  }
  forward(x: Tensor): Tensor {
    return tidy(() => {
      const [n, k, h, w] = x.shape;
      return this.weights.matmul(x.reshape([n, k, h * w])).reshape([n, this.weights.shape[0], h, w]);
    });
  }
}

test('the README worked example: a user encoder trains through F with the built-in decoder', () => {
  registerEncoder('weighted-sum', {
    description: 'parity j = sum_i w_ji X_i with trainable w',
    build: ({ k, r }) => new WeightedSumEncoder(k, r),
  });
  manualSeed(4);
  const code = new LearnedCode(cfg({ k: 3, r: 2, encoder: 'weighted-sum', input: { channels: 2, height: 4, width: 4 } }));
  const base = new BaseMLP({ inFeatures: 32, hidden: [8], numClasses: 3 });
  freeze(base);
  const ps = code.evaluationPatterns();
  const erased = erasedMask(ps, 3);
  tidy(() => {
    const x = randn([5, 3, 2, 4, 4]);
    const y = tensor(
      Array.from({ length: 15 }, (_, i) => i % 3),
      [5, 3],
      { dtype: 'int64' },
    );
    const loss = learnedLoss(code, base, x, y, ps, erased, 'xent-label');
    loss.backward();
    const g = (code.encoder as WeightedSumEncoder).weights.grad;
    assert.ok(g !== null && g.abs().sum().item() > 0);
  });
  erased.dispose();
  base.dispose();
  for (const [, m] of code.modules()) m.dispose();
});
