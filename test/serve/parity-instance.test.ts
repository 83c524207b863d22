import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tensor, tidy, noGrad, manualSeed } from '../../src/index.js';
import { LinearCode } from '../../src/codes/index.js';
import { buildParityModels, saveParityCode, fileSha256, type ParityMeta } from '../../src/codes/parity-models.js';
import { buildModel } from '../../src/models/registry.js';
import { saveCheckpoint } from '../../src/nn/checkpoint.js';
import { InstanceServer } from '../../src/serve/instance.js';
import { servedModelFrom } from '../../src/serve/served-model.js';

const input = { channels: 1, height: 4, width: 4 };
const CLASSES = 3;

test('instance serving parity model j of a parity-code checkpoint answers exactly what that parity model computes locally', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-parity-serve-'));
  manualSeed(21);
  const pm: ParityMeta = { model: 'base-mlp', input: { ...input, classes: CLASSES }, count: 2 };
  const base = buildModel('logistic-regression', { ...input, classes: CLASSES });
  const parity = buildParityModels(pm);
  // O(1) weights (the paper init's are ~0.01, outputs ~1e-4: too small to tell models apart at 1e-5)
  noGrad(() => {
    for (const m of parity) for (const t of m.parameters()) t.uniform_(-0.5, 0.5);
  });
  for (const m of parity) m.eval();
  let s: InstanceServer | null = null;
  try {
    const basePath = join(dir, 'base.safetensors');
    const classes = Array.from({ length: CLASSES }, (_, i) => `c${i}`);
    saveCheckpoint(basePath, base, { kind: 'base', dataset: 'toy', model: 'logistic-regression', input, classes });
    const path = join(dir, 'code.safetensors');
    const identity = {
      path: basePath,
      sha256: fileSha256(basePath),
      dataset: 'toy',
      model: 'logistic-regression',
      input,
      classes: CLASSES,
    };
    saveParityCode(path, new LinearCode({ k: 2, r: 2 }), parity, { parity: pm, base: identity, classes });

    // metadata from the checkpoint header; default index 0, default name <file>-parity<J>
    const m0 = servedModelFrom(path);
    assert.equal(m0.name, 'code-parity0');
    assert.deepEqual(m0.inputShape, [1, 4, 4]);
    assert.deepEqual(m0.outputShape, [CLASSES]);
    // clear errors: index out of range, --parity-index on a non-parity model, a file that is neither
    assert.throws(() => servedModelFrom(path, undefined, 2), /has 2 parity model\(s\).*out of range/);
    assert.throws(() => servedModelFrom(basePath, undefined, 0), /parity-code checkpoints only/);
    assert.throws(() => servedModelFrom('linear:4:2', undefined, 1), /parity-code checkpoints only/);
    const bare = join(dir, 'bare.safetensors');
    saveParityCode(bare, new LinearCode({ k: 2, r: 2 }), [], { parity: undefined as never, base: undefined as never });
    assert.throws(() => servedModelFrom(bare), /code checkpoint without parity models/);
    const junk = join(dir, 'junk.safetensors');
    saveCheckpoint(junk, base, { note: 'no kind' });
    assert.throws(() => servedModelFrom(junk), /neither a base-model checkpoint .* nor a parity-code checkpoint/);
    writeFileSync(join(dir, 'text.safetensors'), 'hello');
    assert.throws(() => servedModelFrom(join(dir, 'text.safetensors')), /not a safetensors file/);

    // serve parity model 1 and compare with its forward computed here
    const J = 1;
    s = await InstanceServer.start({ model: servedModelFrom(path, 'p1', J), httpPort: 0, grpcPort: null });
    const meta = (await (await fetch(`http://127.0.0.1:${s.httpPort}/v2/models/p1`)).json()) as {
      inputs: { shape: number[] }[];
      outputs: { shape: number[] }[];
    };
    assert.deepEqual(meta.inputs[0].shape, [-1, 1, 4, 4]);
    assert.deepEqual(meta.outputs[0].shape, [-1, CLASSES]);
    const B = 3;
    const x = Array.from({ length: B * 16 }, (_, i) => Math.sin(0.7 * i + 0.3));
    const r = await fetch(`http://127.0.0.1:${s.httpPort}/v2/models/p1/infer`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [B, 1, 4, 4], data: x }] }),
    });
    assert.equal(r.status, 200);
    const out = ((await r.json()) as { outputs: { shape: number[]; data: number[] }[] }).outputs[0];
    assert.deepEqual(out.shape, [B, CLASSES]);
    const want = tidy(() => noGrad(() => Array.from(parity[J].forward(tensor(Float32Array.from(x), [B, 1, 4, 4])).data() as Float32Array)));
    const other = tidy(() =>
      noGrad(() => Array.from(parity[0].forward(tensor(Float32Array.from(x), [B, 1, 4, 4])).data() as Float32Array)),
    );
    assert.equal(out.data.length, want.length);
    for (let i = 0; i < want.length; i++) assert.ok(Math.abs(out.data[i] - want[i]) < 1e-5, `output ${i}: ${out.data[i]} vs ${want[i]}`);
    assert.ok(
      out.data.some((v, i) => Math.abs(v - other[i]) > 1e-3),
      'served the wrong parity model',
    );
  } finally {
    if (s !== null) await s.close();
    for (const m of [base, ...parity]) m.dispose();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('shipped parity checkpoint: header gives the parity model shapes without loading weights', () => {
  const path = fileURLToPath(new URL('../../../models/fashion-mnist-base-mlp-concat-k2.safetensors', import.meta.url));
  const m = servedModelFrom(path);
  assert.equal(m.name, 'fashion-mnist-base-mlp-concat-k2-parity0');
  assert.deepEqual(m.inputShape, [1, 28, 28]);
  assert.deepEqual(m.outputShape, [10]);
  assert.throws(() => servedModelFrom(path, undefined, 1), /out of range/);
});
