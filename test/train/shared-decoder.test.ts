// The decoder-aware parity loss uses the code's own decoder, and the learned codes' KL-Base
// loss the engine's kl_div: both give what the hand-written versions they replace gave.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manualSeed, randn, tidy, tensor, type Tensor } from '../../src/index.js';
import { crossEntropy, klDiv } from '../../src/engine/ops.js';
import { LinearCode, AdditionCode } from '../../src/codes/index.js';
import { decodedParityLoss } from '../../src/train/parity-training.js';
import { erasedSlotLoss } from '../../src/train/learned-training.js';

/** The loss as parity training wrote it before: the subtraction decoder re-derived by hand. */
function handWrittenDecodedLoss(
  code: LinearCode,
  j: number,
  pred: Tensor,
  outs: Tensor,
  labels: Tensor | null,
  T: number,
  labelWeight: number,
): Tensor {
  const err = pred.sub(code.parityTarget(outs, j));
  const soft = (t: Tensor) => (T === 1 ? t : t.mul(1 / T));
  let sum: Tensor | null = null;
  for (let i = 0; i < code.k; i++) {
    const out = outs.select(1, i);
    const rec = out.add(err.mul(1 / code.coefficients[j][i]));
    const kl = labelWeight < 1 ? klDiv(soft(rec).logSoftmax(-1), soft(out).softmax(-1)).mul(T * T * (1 - labelWeight)) : null;
    const xent = labelWeight > 0 ? crossEntropy(rec, labels!.select(1, i).contiguous()).mul(labelWeight) : null;
    const li = kl === null ? xent! : xent === null ? kl : kl.add(xent);
    sum = sum === null ? li : sum.add(li);
  }
  return sum!.mul(1 / code.k);
}

test('the decoder-aware parity loss (through code.decode) equals the hand-derived subtraction decoder, with its gradient', () => {
  manualSeed(4);
  for (const code of [new AdditionCode(2), new LinearCode({ k: 3, r: 2 })]) {
    for (const [T, w] of [
      [1, 0],
      [2, 0.3],
      [1, 1],
    ]) {
      for (let j = 0; j < code.r; j++) {
        tidy(() => {
          const outs = randn([5, code.k, 7]);
          const labels = tensor(
            Array.from({ length: 5 * code.k }, (_, i) => i % 7),
            [5, code.k],
            { dtype: 'int64' },
          );
          const p1 = randn([5, 7]).requiresGrad_(true);
          const p2 = p1.detach().clone().requiresGrad_(true);
          const a = decodedParityLoss(code, j, p1, outs, labels, T, w);
          const b = handWrittenDecodedLoss(code, j, p2, outs, labels, T, w);
          assert.ok(
            Math.abs(a.item() - b.item()) <= 1e-5 * (1 + Math.abs(b.item())),
            `${code.name} j=${j} T=${T} w=${w}: ${a.item()} vs ${b.item()}`,
          );
          a.backward();
          b.backward();
          const ga = p1.grad!.toList();
          const gb = p2.grad!.toList();
          ga.forEach((g, i) => assert.ok(Math.abs(g - gb[i]) <= 1e-5, `grad[${i}]: ${g} vs ${gb[i]}`));
        });
      }
    }
  }
});

test('KL-Base of the learned codes (the engine kl_div) equals the hand-written sum q (log q - log softmax rec)', () => {
  manualSeed(5);
  tidy(() => {
    const rec = randn([3, 4, 2, 6]); // [P, G, k, m]
    const target = randn([4, 2, 6]);
    const labels = tensor([0, 1, 2, 3, 4, 5, 0, 1], [4, 2], { dtype: 'int64' });
    const erased = tensor([1, 0, 0, 1, 1, 1], [3, 2]);
    const got = erasedSlotLoss(rec, target, labels, erased, 'kl-base').item();
    const q = target.softmax(-1).unsqueeze(0);
    const logq = target.logSoftmax(-1).unsqueeze(0);
    const perSlot = q.mul(logq.sub(rec.logSoftmax(-1))).sum(3);
    const w = erased.reshape([3, 1, 2]);
    const want = perSlot.mul(w).sum().div(w.sum().mul(4)).item();
    assert.ok(Math.abs(got - want) <= 1e-6 * (1 + Math.abs(want)), `${got} vs ${want}`);
  });
});
