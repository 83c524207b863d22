import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { tensor, tidy, randn, manualSeed, stack, noGrad, type Tensor } from '../../src/index.js';
import { zeros_ } from '../../src/engine/init.js';
import {
  LinearCode,
  AdditionCode,
  ConcatCode,
  UndecodableError,
  codeFromConfig,
  computeAll,
  patternsWithMissing,
  concatLayout,
  cauchyCoefficients,
} from '../../src/codes/index.js';
import { saveParityCode, fileSha256 } from '../../src/codes/parity-models.js';
import { loadCodeCheckpoint } from '../../src/codes/checkpoint.js';
import { saveCheckpoint } from '../../src/nn/checkpoint.js';
import { LogisticRegression } from '../../src/models/logistic-regression.js';

function linearF(features: number, classes: number): LogisticRegression {
  const f = new LogisticRegression(features, classes);
  zeros_(f.fc.bias!); // linear (no bias): F(sum a_i X_i) = sum a_i F(X_i)
  return f;
}

const maxAbsDiff = (a: Tensor, b: Tensor) => tidy(() => a.sub(b).abs().max().item());

test('linear code with F_P = F linear reconstructs every decodable pattern exactly, r = 1, 2, 3', () => {
  manualSeed(11);
  const f = linearF(2 * 5 * 5, 7);
  try {
    for (const [k, r] of [
      [2, 1],
      [3, 1],
      [2, 2],
      [3, 2],
      [4, 3],
      [2, 3],
    ]) {
      tidy(() => {
        const code = new LinearCode({ k, r });
        const x = randn([6, k, 2, 5, 5]); // G = 6 groups, 2-channel 5x5 queries
        const outs = computeAll(code, { base: f, parity: Array(r).fill(f) }, x);
        assert.equal(outs.length, k + r);
        const truth = Array.from({ length: k }, (_, i) => f.forward(x.select(1, i)));
        // every pattern with up to r missing outputs (least squares when extra parities remain)
        let checked = 0;
        for (let m = 1; m <= r; m++) {
          for (const p of patternsWithMissing(k + r, m)) {
            assert.equal(code.canDecode(p), true);
            const d = code.decode(outs.map((o, i) => (p[i] ? o : null)));
            for (let i = 0; i < k; i++) {
              assert.equal(d.reconstructed[i], !p[i]);
              assert.deepEqual(d.outputs[i].shape, [6, 7]);
              assert.ok(maxAbsDiff(d.outputs[i], truth[i]) < 1e-4, `k=${k} r=${r} pattern ${p.map(Number).join('')} output ${i}`);
            }
            if (p.slice(0, k).some((a) => !a)) assert.ok(d.info!.conditionNumber >= 1 && d.info!.conditionNumber < 1e3);
            checked++;
          }
        }
        assert.ok(checked > 0);
        assert.equal(
          code.evaluationPatterns().length,
          [...Array(r).keys()].reduce(
            (s, m) => s + patternsWithMissing(k + r, m + 1).filter((p) => p.slice(0, k).some((a) => !a)).length,
            0,
          ),
        );
      });
    }
  } finally {
    f.dispose();
  }
});

test('r = 1 linear code is the addition code; codes rebuild from their configs', () => {
  assert.deepEqual(cauchyCoefficients(3, 1), [[1, 1, 1]]);
  assert.deepEqual(new LinearCode({ k: 3, r: 1 }).coefficients, new AdditionCode(3).coefficients);
  const c = codeFromConfig(new LinearCode({ k: 3, r: 2 }).config());
  assert.equal(c.name, 'linear(k=3, r=2)');
  assert.equal(codeFromConfig({ family: 'addition', k: 2, r: 1 }).name, 'addition(k=2, r=1)');
  assert.equal(codeFromConfig({ family: 'concat', k: 4, r: 1 }).name, 'concat(k=4, r=1)');
  assert.throws(() => codeFromConfig({ family: 'addition', k: 2, r: 2 }), /r = 1/);
  assert.throws(
    () =>
      new LinearCode({
        k: 2,
        r: 2,
        coefficients: [
          [1, 1],
          [2, 2],
        ],
      }),
    /singular/,
  );
  assert.throws(() => new LinearCode({ k: 2, r: 1, coefficients: [[1, 0]] }), /singular/);
  assert.throws(() => new LinearCode({ k: 2, r: 1, coefficients: [[1]] }), /r x k = 1 x 2/);
});

test('encode/decode shapes and batching: a batch of groups decodes like each group alone', () => {
  tidy(() => {
    manualSeed(12);
    const f = linearF(16, 5);
    const fp = linearF(16, 5);
    const code = new LinearCode({ k: 3, r: 2 });
    const x = randn([4, 3, 1, 4, 4]);
    const q = code.encode(x);
    assert.deepEqual(
      q.map((c) => c.fn),
      [{ kind: 'base' }, { kind: 'base' }, { kind: 'base' }, { kind: 'parity', index: 0 }, { kind: 'parity', index: 1 }],
    );
    for (const c of q) assert.deepEqual(c.inputs[0].shape, [4, 1, 4, 4]);
    const outs = computeAll(code, { base: f, parity: [fp, fp] }, x);
    const pattern = [false, true, false, true, true];
    const all = code.decode(outs.map((o, i) => (pattern[i] ? o : null)));
    for (let g = 0; g < 4; g++) {
      const one = code.decode(outs.map((o, i) => (pattern[i] ? o.narrow(0, g, 1) : null)));
      for (let i = 0; i < 3; i++) assert.ok(maxAbsDiff(one.outputs[i], all.outputs[i].narrow(0, g, 1)) < 1e-5);
    }
    assert.throws(() => code.encode(randn([4, 2, 1, 4, 4])), /expected coding groups shaped \[G, 3, \.\.\.\]/);
    f.dispose();
    fp.dispose();
  });
});

test('undecodable patterns give a clear error', () => {
  tidy(() => {
    const code = new LinearCode({ k: 3, r: 1 });
    const o = tensor([[1, 2]]);
    assert.equal(code.canDecode([false, false, true, true]), false);
    assert.throws(
      () => code.decode([null, null, o, o]),
      (e: Error) =>
        e instanceof UndecodableError &&
        /2 data outputs are missing but only 1 parity outputs arrived/.test(e.message) &&
        /\[0011\]/.test(e.message),
    );
    assert.throws(() => code.decode([o, o]), /takes 4 outputs/);
    const two = new LinearCode({ k: 2, r: 2 });
    assert.throws(() => two.decode([null, null, o, null]), UndecodableError);
  });
});

test('concat layout: k = 2 side by side, 4 as 2 x 2, other k on a near-square grid', () => {
  assert.deepEqual(concatLayout(2, 28, 28), {
    rows: 1,
    cols: 2,
    tileHeight: 28,
    tileWidth: 14,
    positions: [
      { top: 0, left: 0 },
      { top: 0, left: 14 },
    ],
  });
  assert.deepEqual(concatLayout(4, 28, 28).positions, [
    { top: 0, left: 0 },
    { top: 0, left: 14 },
    { top: 14, left: 0 },
    { top: 14, left: 14 },
  ]);
  const l5 = concatLayout(5, 28, 28);
  assert.deepEqual([l5.rows, l5.cols, l5.tileHeight, l5.tileWidth], [2, 3, 14, 9]);
  assert.throws(() => concatLayout(9, 2, 2), /too small/);
  tidy(() => {
    // constant images: image i is all (i + 1); the parity image must show each value in its tile
    for (const k of [2, 3, 4, 5]) {
      const code = new ConcatCode(k);
      const G = 2;
      const x = stack(
        Array.from({ length: k }, (_, i) =>
          randn([G, 1, 28, 28])
            .mul(0)
            .add(i + 1),
        ),
        1,
      );
      const q = code.encode(x);
      assert.equal(q.length, k + 1);
      assert.deepEqual(q[k].fn, { kind: 'parity', index: 0 });
      const p = q[k].inputs[0];
      assert.deepEqual(p.shape, [G, 1, 28, 28]);
      const L = concatLayout(k, 28, 28);
      const v = p.select(0, 1).select(0, 0).toList(); // group 1, channel 0, [28 * 28]
      const expected = Array<number>(28 * 28).fill(0);
      L.positions.forEach(({ top, left }, i) => {
        for (let h = top; h < top + L.tileHeight; h++) for (let w = left; w < left + L.tileWidth; w++) expected[h * 28 + w] = i + 1;
      });
      assert.deepEqual(
        v.map((a) => Math.round(a * 1e4) / 1e4),
        expected,
        `k = ${k}`,
      );
    }
  });
});

test('multi-channel inputs are encoded channel by channel: channels never mix', () => {
  tidy(() => {
    const k = 4;
    const G = 3;
    // image i, channel c is the constant 100 * (c + 1) + (i + 1): any mixing shows in the values
    const x = stack(
      Array.from({ length: k }, (_, i) =>
        stack(
          [0, 1, 2].map((c) =>
            randn([G, 8, 8])
              .mul(0)
              .add(100 * (c + 1) + i + 1),
          ),
          1,
        ),
      ),
      1,
    );
    assert.deepEqual(x.shape, [G, k, 3, 8, 8]);
    const concat = new ConcatCode(k).encode(x)[k].inputs[0];
    const linear = new LinearCode({ k, r: 2 });
    const lq = linear.encode(x);
    for (let c = 0; c < 3; c++) {
      const vals = new Set(
        concat
          .select(1, c)
          .toList()
          .map((a) => Math.round(a * 1e4) / 1e4),
      );
      assert.deepEqual(
        [...vals].sort((a, b) => a - b),
        [1, 2, 3, 4].map((i) => 100 * (c + 1) + i),
        `concat channel ${c}`,
      );
      for (let j = 0; j < 2; j++) {
        const want = linear.coefficients[j].reduce((s, a, i) => s + a * (100 * (c + 1) + i + 1), 0);
        const got = lq[k + j].inputs[0].select(1, c).toList();
        for (const g of got) assert.ok(Math.abs(g - want) < 1e-3, `linear parity ${j} channel ${c}: ${g} vs ${want}`);
      }
    }
  });
});

test('parity checkpoints: round trip; corrupt files and mismatched base models are refused', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-parity-'));
  manualSeed(13);
  const classes = Array.from({ length: 10 }, (_, i) => `c${i}`);
  const input = { channels: 1, height: 4, width: 4 };
  const base = new LogisticRegression(16, 10);
  const other = new LogisticRegression(16, 10);
  const parity = [new LogisticRegression(16, 10), new LogisticRegression(16, 10)];
  try {
    const basePath = join(dir, 'base.safetensors');
    const otherPath = join(dir, 'other.safetensors');
    const baseMeta = { kind: 'base', dataset: 'mnist', model: 'logistic-regression', input, classes };
    saveCheckpoint(basePath, base, baseMeta);
    saveCheckpoint(otherPath, other, baseMeta);
    const identity = { path: basePath, sha256: fileSha256(basePath), dataset: 'mnist', model: 'logistic-regression', input, classes: 10 };
    const code = new LinearCode({ k: 2, r: 2 });
    const path = join(dir, 'code.safetensors');
    saveParityCode(path, code, parity, {
      parity: { model: 'logistic-regression', input: { ...input, classes: 10 }, count: 2 },
      base: identity,
    });
    const lw = loadCodeCheckpoint(path, { parity: 'required' });
    assert.equal(lw.code.name, 'linear(k=2, r=2)');
    assert.equal(lw.workers.parity!.length, 2);
    tidy(() => {
      const x = randn([1, 1, 4, 4]);
      assert.ok(maxAbsDiff(lw.workers.parity![1].forward(x), parity[1].forward(x)) < 1e-6);
      assert.ok(maxAbsDiff(lw.workers.base.forward(x), base.forward(x)) < 1e-6);
    });
    lw.workers.base.dispose();
    for (const m of lw.workers.parity!) m.dispose();

    // a different base checkpoint (same architecture, other weights) is refused
    assert.throws(
      () => loadCodeCheckpoint(path, { basePath: otherPath, parity: 'required' }),
      /trained for base checkpoint .* but .*other\.safetensors differs/,
    );
    // truncated file
    const bytes = readFileSync(path);
    const cut = join(dir, 'cut.safetensors');
    writeFileSync(cut, bytes.subarray(0, bytes.length - 100));
    assert.throws(() => loadCodeCheckpoint(cut, { base: false, parity: 'required' }));
    // parity weights that do not fit the recorded architecture
    const wrong = join(dir, 'wrong.safetensors');
    const small = [new LogisticRegression(9, 10), new LogisticRegression(9, 10)];
    saveParityCode(wrong, code, small, {
      parity: { model: 'logistic-regression', input: { ...input, classes: 10 }, count: 2 },
      base: identity,
    });
    for (const m of small) m.dispose();
    assert.throws(
      () => loadCodeCheckpoint(wrong, { base: false, parity: 'required' }),
      /parity model 0 does not fit its recorded architecture/,
    );
    // non-finite weights
    const nan = join(dir, 'nan.safetensors');
    noGrad(() => parity[0].fc.weight.fill_(Number.NaN));
    saveParityCode(nan, code, parity, {
      parity: { model: 'logistic-regression', input: { ...input, classes: 10 }, count: 2 },
      base: identity,
    });
    assert.throws(() => loadCodeCheckpoint(nan, { base: false, parity: 'required' }), /non-finite weights/);
    // a code checkpoint without parity metadata
    const bare = join(dir, 'bare.safetensors');
    saveParityCode(bare, code, [], { parity: undefined as never, base: undefined as never });
    assert.throws(() => loadCodeCheckpoint(bare, { base: false, parity: 'required' }), /without parity models/);
  } finally {
    for (const m of [base, other, ...parity]) m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});
