// The engine benchmark in quick mode: our numbers must be positive and finite, tensors must
// not leak, and the PyTorch peer runs when /usr/bin/python3 (or $CODED_PYTHON) has torch;
// without it the bench must refuse with an error that says how to install python3-torch.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import {
  PeerUnavailableError,
  WORKLOAD_NAMES,
  defaultPython,
  onPath,
  engineBenchJson,
  formatEngineBench,
  median,
  parseEngineBenchArgs,
  quantile,
  runEngineBench,
  type EngineBenchReport,
} from '../../src/bench/engine.js';
import { BaseMLP } from '../../src/models/base-mlp.js';
import { ConvEncoder } from '../../src/models/conv-encoder.js';
import { ResNet18, ResNet152 } from '../../src/models/resnet.js';
import { liveTensors, noGrad, randn, tidy } from '../../src/index.js';

const python = defaultPython();
const peerAvailable = existsSync(python) && spawnSync(python, ['-c', 'import torch'], { stdio: 'ignore' }).status === 0;

function assertPositiveFinite(r: EngineBenchReport, withPeer: boolean): void {
  assert.deepEqual(
    r.workloads.map((w) => w.name),
    [...WORKLOAD_NAMES],
  );
  for (const w of r.workloads) {
    assert.ok(Number.isFinite(w.ours) && w.ours > 0, `${w.name}: ours = ${w.ours}`);
    if (withPeer) {
      assert.ok(w.pytorch !== null && Number.isFinite(w.pytorch) && w.pytorch > 0, `${w.name}: pytorch = ${w.pytorch}`);
      assert.ok(w.ratio !== null && Number.isFinite(w.ratio) && w.ratio > 0, `${w.name}: ratio = ${w.ratio}`);
      const expected = w.higherIsBetter ? w.ours / w.pytorch! : w.pytorch! / w.ours;
      assert.ok(Math.abs(w.ratio! - expected) < 1e-9 * expected);
    } else {
      assert.equal(w.pytorch, null);
      assert.equal(w.ratio, null);
    }
  }
  const json = JSON.parse(engineBenchJson(r)) as { workloads: Record<string, unknown>[]; machine: string; threads: number; device: string };
  for (const w of json.workloads)
    for (const k of ['name', 'ours', 'pytorch', 'unit', 'ratio']) assert.ok(k in w, `JSON workload lacks '${k}'`);
  assert.equal(typeof json.machine, 'string');
  assert.equal(json.threads, r.threads);
  assert.equal(json.device, 'cpu');
  assert.match(formatEngineBench(r), /W4/);
}

test('models have the expected shapes and sizes', () => {
  const before = liveTensors();
  const mlp = new BaseMLP();
  const enc = new ConvEncoder({ k: 2 });
  const r18 = new ResNet18('cifar');
  const r18m = new ResNet18('mnist');
  assert.equal(mlp.numParameters(), 784 * 200 + 200 + 200 * 100 + 100 + 100 * 10 + 10);
  assert.equal(r18.numParameters(), 11173962); // kuangliu/pytorch-cifar ResNet18
  assert.equal(enc.hidden, 40);
  noGrad(() =>
    tidy(() => {
      r18.eval();
      r18m.eval();
      assert.deepEqual(mlp.forward(randn([3, 1, 28, 28])).shape, [3, 10]);
      assert.deepEqual(enc.forward(randn([2, 2, 28, 28])).shape, [2, 1, 28, 28]);
      assert.deepEqual(r18.forward(randn([2, 3, 32, 32])).shape, [2, 10]);
      assert.deepEqual(r18m.forward(randn([2, 1, 28, 28])).shape, [2, 10]);
    }),
  );
  for (const m of [mlp, enc, r18, r18m]) m.dispose();
  assert.equal(liveTensors(), before);
  const r152 = new ResNet152();
  assert.equal(r152.numParameters(), 58156618); // kuangliu/pytorch-cifar ResNet152
  r152.dispose();
});

test('statistics and argument parsing', () => {
  assert.equal(median([3, 1, 2]), 2);
  assert.equal(median([4, 1, 3, 2]), 2.5);
  assert.equal(quantile([0, 10], 0.25), 2.5);
  assert.deepEqual(parseEngineBenchArgs(['--json', '--threads', '3', '--quick', '--no-peer']), {
    json: true,
    device: 'cpu',
    threads: 3,
    quick: true,
    peer: false,
    sameMalloc: false,
    workloads: undefined,
  });
  assert.deepEqual(parseEngineBenchArgs(['--workloads', 'w1,W4'])?.workloads, ['W1', 'W4']);
  assert.equal(parseEngineBenchArgs(['--help']), null);
  assert.throws(() => parseEngineBenchArgs(['--threads', '0']), /--threads/);
  assert.throws(() => parseEngineBenchArgs(['--device', 'tpu']), /--device/);
  assert.throws(() => parseEngineBenchArgs(['--workloads', 'W9']), /W9/);
});

test('CODED_PYTHON may name a command on PATH (CODED_PYTHON=python3), as the GPU instructions write it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'coded-path-'));
  const saved = { py: process.env.CODED_PYTHON, path: process.env.PATH };
  try {
    const fake = join(dir, 'mypython');
    writeFileSync(fake, '#!/bin/sh\n', { mode: 0o755 });
    writeFileSync(join(dir, 'not-executable'), '');
    assert.equal(onPath('mypython', `/nonexistent:${dir}`), fake);
    assert.equal(onPath('not-executable', dir), null);
    assert.equal(onPath('./mypython', dir), null, 'paths are not looked up');
    process.env.PATH = `${dir}:${saved.path ?? ''}`;
    process.env.CODED_PYTHON = 'mypython';
    assert.equal(defaultPython(), fake);
    process.env.CODED_PYTHON = join(dir, 'elsewhere', 'python');
    assert.equal(defaultPython(), join(dir, 'elsewhere', 'python'), 'a path is taken as it is');
    delete process.env.CODED_PYTHON;
    assert.equal(defaultPython(), '/usr/bin/python3');
  } finally {
    if (saved.py === undefined) delete process.env.CODED_PYTHON;
    else process.env.CODED_PYTHON = saved.py;
    process.env.PATH = saved.path;
    rmSync(dir, { recursive: true, force: true });
  }
});

test('quick bench: positive finite numbers, no leaked tensors', { timeout: 600_000 }, async () => {
  const before = liveTensors();
  const r = await runEngineBench({ quick: true, peer: peerAvailable, reps: 2, blockSeconds: 0.05 });
  assert.equal(liveTensors(), before, 'the bench leaked native tensors');
  assertPositiveFinite(r, peerAvailable);
  if (!peerAvailable) console.log(`# ${python} has no torch: measured our side only`);
});

test('a peer without torch fails with install instructions', { skip: !existsSync(python) && `${python} missing` }, async () => {
  // a package named torch that fails to import stands in for a missing PyTorch
  const dir = mkdtempSync(join(tmpdir(), 'coded-no-torch-'));
  mkdirSync(join(dir, 'torch'));
  writeFileSync(join(dir, 'torch', '__init__.py'), 'raise ImportError("No module named torch (test stand-in)")\n');
  const saved = process.env.PYTHONPATH;
  process.env.PYTHONPATH = dir;
  try {
    await assert.rejects(runEngineBench({ quick: true, workloads: ['W1'], reps: 1, blockSeconds: 0.01 }), (e: Error) => {
      assert.ok(e instanceof PeerUnavailableError, `expected PeerUnavailableError, got ${e.name}: ${e.message}`);
      assert.match(e.message, /python3-torch/);
      assert.match(e.message, /--no-peer/);
      return true;
    });
    await assert.rejects(runEngineBench({ quick: true, workloads: ['W1'], python: join(dir, 'no-such-python') }), PeerUnavailableError);
  } finally {
    if (saved === undefined) delete process.env.PYTHONPATH;
    else process.env.PYTHONPATH = saved;
    rmSync(dir, { recursive: true, force: true });
  }
});
