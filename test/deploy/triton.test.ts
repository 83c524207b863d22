// `coded export triton`: the repository Triton loads (config.pbtxt in text format, checked
// against the fields, types and enum values of inference.ModelConfig; model files under 1/),
// the parity models as TorchScript computing what the checkpoint holds, and clear refusals.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { packageRoot } from '../../src/util/package-root.js';
import { fileSha256 } from '../../src/models/base-checkpoint.js';
import { TorchScriptModule } from '../../src/models/torchscript.js';
import { loadCodeCheckpoint } from '../../src/codes/checkpoint.js';
import { manualSeed, noGrad, randn, tidy } from '../../src/index.js';
import { exportTriton } from '../../src/deploy/triton.js';
import { checkTritonConfig, parseTextFormat, renderTritonConfig } from '../../src/deploy/triton-config.js';

const root = packageRoot();
const main = join(root, 'dist', 'src', 'cli', 'main.js');
const pt = join(root, 'examples', 'own-model', 'small_cnn.pt');
const onnx = join(root, 'examples', 'own-model', 'small_cnn.onnx');
const data = join(root, 'examples', 'own-model', 'data.safetensors');
const dirs: string[] = [];
function tmp(): string {
  const d = mkdtempSync(join(tmpdir(), 'coded-triton-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
const coded = (args: string[]) => spawnSync(process.execPath, [main, ...args], { cwd: root, encoding: 'utf8' });

/** A parity checkpoint (addition k = 2, parity models = copies of F's TorchScript module), trained 1 epoch. */
function trainParity(parityModel: string): string {
  const out = join(tmp(), 'run');
  const r = coded([
    'train',
    'parity',
    '--base',
    pt,
    '--data',
    data,
    '--code',
    'addition',
    '--k',
    '2',
    '--parity-model',
    parityModel,
    '--epochs',
    '1',
    '--out',
    out,
  ]);
  assert.equal(r.status, 0, r.stderr);
  return join(out, 'best.safetensors');
}

function configOf(dir: string) {
  const text = readFileSync(join(dir, 'config.pbtxt'), 'utf8');
  const msg = parseTextFormat(text);
  assert.deepEqual(checkTritonConfig(msg), [], `${dir}/config.pbtxt:\n${text}`);
  return msg;
}

test('export triton: a TorchScript base and its TorchScript parity models become a valid repository; the parity model.pt computes what the checkpoint holds', async () => {
  const ckpt = trainParity('base');
  const out = join(tmp(), 'repo');
  const r = coded(['export', 'triton', '--base', pt, '--code', ckpt, '--out', out, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const report = JSON.parse(r.stdout) as {
    models: { name: string; role: string; pool: string }[];
    pools: { base: { model: string }; parity: { model: string }[] };
  };
  assert.deepEqual(
    report.models.map((m) => [m.name, m.role, m.pool]),
    [
      ['small_cnn', 'base', 'base'],
      ['small_cnn-parity-0', 'parity', 'parity:0'],
    ],
  );
  assert.deepEqual(
    report.pools.parity.map((p) => p.model),
    ['small_cnn-parity-0'],
  );

  const base = configOf(join(out, 'small_cnn'));
  assert.deepEqual(base.get('platform'), ['pytorch_libtorch']);
  assert.deepEqual(base.get('max_batch_size'), [64]);
  const input = base.get('input')![0] as Map<string, unknown[]>;
  assert.deepEqual(input.get('name'), ['INPUT__0']);
  assert.deepEqual(input.get('data_type'), ['TYPE_FP32']);
  assert.deepEqual(input.get('dims'), [3, 32, 32]); // recorded by the checkpoint
  assert.deepEqual((base.get('output')![0] as Map<string, unknown[]>).get('dims'), [10]);
  const params = new Map(
    (base.get('parameters') as Map<string, unknown[]>[]).map((p) => [
      p.get('key')![0],
      (p.get('value')![0] as Map<string, unknown[]>).get('string_value')![0],
    ]),
  );
  assert.equal(params.get('coded.role'), 'base');
  assert.equal(params.get('coded.base_sha256'), fileSha256(pt));
  // the base file is copied unchanged
  assert.equal(fileSha256(join(out, 'small_cnn', '1', 'model.pt')), fileSha256(pt));

  configOf(join(out, 'small_cnn-parity-0'));
  const exported = TorchScriptModule.load(join(out, 'small_cnn-parity-0', '1', 'model.pt')).eval();
  const lp = loadCodeCheckpoint(ckpt, { base: false, parity: 'required' });
  try {
    manualSeed(3);
    const maxDiff = tidy(() =>
      noGrad(() => {
        const x = randn([4, 3, 32, 32]);
        return exported.forward(x).sub(lp.parity[0].forward(x)).abs().max().item();
      }),
    );
    assert.equal(maxDiff, 0);
  } finally {
    exported.dispose();
    for (const m of lp.parity) m.dispose();
  }
});

test("export triton: an ONNX base keeps the file's tensor names and shape; --max-batch 0 gives whole-tensor dims with a variable batch", async () => {
  const out = join(tmp(), 'repo');
  const r = await exportTriton({ base: onnx, out, device: 'cpu', maxBatchSize: 0 });
  assert.equal(r.models.length, 1);
  const c = configOf(join(out, 'small_cnn'));
  assert.deepEqual(c.get('platform'), ['onnxruntime_onnx']);
  const input = c.get('input')![0] as Map<string, unknown[]>;
  assert.deepEqual(input.get('name'), ['input']);
  assert.deepEqual(input.get('dims'), [-1, 3, 32, 32]);
  assert.deepEqual((c.get('instance_group')![0] as Map<string, unknown[]>).get('kind'), ['KIND_CPU']);
  assert.equal(c.get('dynamic_batching'), undefined);
  assert.equal(fileSha256(join(out, 'small_cnn', '1', 'model.onnx')), fileSha256(onnx));
});

test('export triton refuses what Triton cannot serve, naming the file and what to do', async () => {
  const out = () => join(tmp(), 'repo');
  await assert.rejects(
    exportTriton({ base: join(root, 'models', 'fashion-mnist-base-mlp.safetensors'), out: out() }),
    /Triton serves TorchScript .* or ONNX .*not \.safetensors.*coded serve instance/,
  );
  await assert.rejects(exportTriton({ base: pt, out: out() }), /does not say its input shape: pass --input-shape/);
  await assert.rejects(exportTriton({ base: join(tmp(), 'missing.pt'), out: out() }), /no such file/);
  // parity models of the project's own architecture: not TorchScript
  const mlp = trainParity('mlp:32');
  await assert.rejects(exportTriton({ base: pt, code: mlp, out: out() }), /project's own 'mlp:32' modules.*--parity-model base/);
  // a checkpoint trained for another base
  const other = join(tmp(), 'other.pt');
  writeFileSync(other, Buffer.concat([readFileSync(pt), Buffer.from([0])]));
  await assert.rejects(exportTriton({ base: other, code: mlp, out: out(), inputShape: [3, 32, 32] }), /trained for another base model/);
  // a non-empty folder without --force
  const full = out();
  mkdirSync(full, { recursive: true });
  writeFileSync(join(full, 'x'), 'x');
  await assert.rejects(exportTriton({ base: onnx, out: full }), /is not empty.*--force/);
  const forced = await exportTriton({ base: onnx, out: full, force: true });
  assert.equal(forced.models.length, 1);
});

test('the config check catches fields, types and enum values ModelConfig does not have (so it can fail)', () => {
  const ok = renderTritonConfig({
    name: 'm',
    platform: 'pytorch_libtorch',
    max_batch_size: 8,
    input: [{ name: 'INPUT__0', data_type: 'TYPE_FP32', dims: [1, 28, 28] }],
    output: [{ name: 'OUTPUT__0', data_type: 'TYPE_FP32', dims: [10] }],
    instance_group: [{ kind: 'KIND_GPU', count: 2 }],
    dynamic_batching: { max_queue_delay_microseconds: 100 },
    parameters: { a: 'b "quoted"' },
  });
  const msg = parseTextFormat(ok);
  assert.deepEqual(checkTritonConfig(msg), []);
  const p = (msg.get('parameters')![0] as Map<string, unknown[]>).get('value')![0] as Map<string, unknown[]>;
  assert.deepEqual(p.get('string_value'), ['b "quoted"']);
  assert.match(checkTritonConfig(parseTextFormat('name: "m"\nmax_batch: 3\n')).join(), /max_batch: not a field/);
  assert.match(
    checkTritonConfig(parseTextFormat('input [ { name: "x" data_type: TYPE_FLOAT32 dims: [1] } ]')).join(),
    /TYPE_FLOAT32 is not one of/,
  );
  assert.match(checkTritonConfig(parseTextFormat('max_batch_size: "8"')).join(), /expected an integer/);
  assert.match(
    checkTritonConfig(parseTextFormat('instance_group [ { kind: KIND_GPU count: 1 gpu: 0 } ]')).join(),
    /instance_group\.gpu: not a field/,
  );
  assert.throws(() => parseTextFormat('input [ { name: "x" '), /missing '}'/);
});
