import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { pino } from 'pino';
import { Frontend } from '../../src/serve/frontend.js';
import { validateFrontendConfig } from '../../src/serve/config.js';
import { InstanceServer } from '../../src/serve/instance.js';
import { servedModelFrom } from '../../src/serve/served-model.js';
import { manualSeed, tensor, tidy, noGrad } from '../../src/engine/index.js';
import '../../src/codes/index.js';
import { codeFromConfig, saveCode } from '../../src/codes/registry.js';
import type { LagrangeCode } from '../../src/codes/lagrange.js';
import { hybridClock, ScriptedConnections, turns } from './scripted-connections.js';

const silent = pino({ level: 'silent' });
const faults = (ms: number) => ({ latency: { kind: 'const' as const, ms }, slowProb: 0, slowMs: 0, failProb: 0, crashAfter: 0, seed: 1 });

for (const worker of ['HS', 'HB'] as const) {
  test(`serving a Lagrange ${worker} code: worker instances${worker === 'HS' ? ' with side inputs' : ''}, any R of N answers decode to H(E(beta_k)); a straggling worker is not waited for`, {
    timeout: 120_000,
  }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'coded-lagrange-serve-'));
    const path = join(dir, 'code.safetensors');
    manualSeed(3);
    // K = 2, N = 3, G = 1, P = 1: R = 2 of 3 workers suffice
    const code = codeFromConfig({
      family: 'lagrange',
      k: 2,
      r: 1,
      degree: 1,
      power: 1,
      worker,
      encoder: 'mlp',
      computation: 'mlp',
      input: [1, 4, 4],
      classes: 3,
      hidden: [8],
    }) as LagrangeCode;
    saveCode(path, code, { dataset: 'synthetic' });
    const servers: InstanceServer[] = [];
    let fe: Frontend | null = null;
    try {
      for (let i = 0; i < 4; i++)
        servers.push(
          await InstanceServer.start({ model: servedModelFrom(path, 'H'), httpPort: i === 0 ? 0 : null, grpcPort: 0, faults: faults(0) }),
        );
      const addr = (s: InstanceServer) => `127.0.0.1:${s.grpcPort}`;
      const [w1, w2, slow, meta] = servers;
      assert.deepEqual(
        w1.meta.sideInputs?.map((t) => t.name),
        worker === 'HS' ? ['v0', 'v1'] : undefined,
      );
      // the straggler takes its request and never answers; time moves only when the test says so,
      // so an answer proves that R = 2 outputs were decoded without waiting for the third
      const conns = new ScriptedConnections(new Set([addr(slow)]));
      fe = await Frontend.start({
        config: validateFrontendConfig({
          name: 'poly',
          mode: 'coded',
          codeCheckpoint: path,
          grpcPort: 0,
          sloMs: 5000,
          decodeDeadlineMs: 1000,
          maxWaitMs: 1,
          instanceConcurrency: 1,
          pools: {
            base: { model: 'H', instances: [addr(meta)] },
            workers: { H: [{ model: 'H', instances: [addr(w1), addr(slow), addr(w2)] }] },
          },
        }),
        logger: silent,
        connect: conns.connect,
        clock: hybridClock().clock,
      });
      const xs = [0, 1].map((q) => Float32Array.from({ length: 16 }, (_, j) => Math.sin(1.3 * q + 0.7 * j)));
      const want = tidy(() =>
        noGrad(() => code.trainingLogits(tensor(Float32Array.from([...xs[0], ...xs[1]]), [1, 2, 1, 4, 4])).dataFloat32()),
      );
      const rs = await Promise.all(fe.submit(xs));
      assert.equal(conns.held, 1, 'the straggling worker got its coded query');
      assert.equal(conns.answered, 2, 'answered from the two other workers');
      conns.release();
      for (const [q, r] of rs.entries()) {
        assert.equal(r.defaulted, false);
        for (let c = 0; c < 3; c++)
          assert.ok(
            Math.abs(r.data[c] - want[3 * q + c]) < 1e-3 * (1 + Math.abs(want[3 * q + c])),
            `query ${q} class ${c}: ${r.data[c]} vs ${want[3 * q + c]}`,
          );
      }
      if (worker === 'HS') {
        // the V2 layer names what is missing
        const res = await fetch(`http://127.0.0.1:${w1.httpPort}/v2/models/H/infer`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ inputs: [{ name: 'input', datatype: 'FP32', shape: [1, 1, 4, 4], data: Array(16).fill(0) }] }),
        });
        assert.equal(res.status, 400);
        assert.match(((await res.json()) as { error: string }).error, /takes 3 inputs \('input', 'v0', 'v1'\)/);
        const md = (await (await fetch(`http://127.0.0.1:${w1.httpPort}/v2/models/H`)).json()) as { inputs: { name: string }[] };
        assert.deepEqual(
          md.inputs.map((i) => i.name),
          ['input', 'v0', 'v1'],
        );
      }
    } finally {
      await fe?.close();
      await Promise.all(servers.map((s) => s.close()));
      code.dispose();
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('an instance refuses --worker for models without worker networks, and unknown worker names', () => {
  assert.throws(() => servedModelFrom('noop:4', undefined, undefined, 'H'), /--worker applies to code checkpoints/);
  const dir = mkdtempSync(join(tmpdir(), 'coded-lagrange-serve-'));
  try {
    const path = join(dir, 'c.safetensors');
    const code = codeFromConfig({
      family: 'lagrange',
      k: 2,
      r: 1,
      degree: 1,
      worker: 'HB',
      encoder: 'mlp',
      computation: 'mlp',
      input: [1, 2, 2],
      classes: 2,
      hidden: [4],
    }) as LagrangeCode;
    saveCode(path, code);
    code.dispose();
    assert.throws(() => servedModelFrom(path, undefined, undefined, 'G[1]'), /has worker\(s\) H\[0\]/);
    assert.equal(servedModelFrom(path, undefined, undefined, 'H[0]').name, 'c-H0');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('serving a Berrut code: base instances run F on the coded queries; the frontend waits for every output until the decode deadline, then decodes from what arrived', {
  timeout: 120_000,
}, async () => {
  const code = codeFromConfig({ family: 'berrut', k: 2, r: 1 });
  const servers: InstanceServer[] = [];
  const fes: Frontend[] = [];
  try {
    for (let i = 0; i < 4; i++)
      servers.push(await InstanceServer.start({ model: servedModelFrom('noop:6', 'm'), httpPort: null, grpcPort: 0, faults: faults(0) }));
    const addr = (s: InstanceServer) => `127.0.0.1:${s.grpcPort}`;
    // servers[3] is a straggler that never answers; deadlines pass only when the test advances the clock
    const conns = new ScriptedConnections(new Set([addr(servers[3])]));
    const start = (insts: InstanceServer[], clock: ReturnType<typeof hybridClock>['clock']) =>
      Frontend.start({
        config: validateFrontendConfig({
          name: 'b',
          mode: 'coded',
          code: { family: 'berrut', k: 2, r: 1 },
          grpcPort: 0,
          sloMs: 5000,
          decodeDeadlineMs: 60,
          maxWaitMs: 1,
          instanceConcurrency: 1,
          pools: { base: { model: 'm', instances: insts.map(addr) } },
        }),
        logger: silent,
        connect: conns.connect,
        clock,
      });
    const fast = await start(servers.slice(0, 3), hybridClock().clock);
    fes.push(fast);
    const slowTime = hybridClock();
    const withSlow = await start([servers[0], servers[1], servers[3]], slowTime.clock);
    fes.push(withSlow);
    const xs = [Float32Array.of(1, 2, 3, 4, 5, 6), Float32Array.of(-3, 0, 2, 8, 1, 1)];
    // local reference: F = identity on the coded queries, decoded from a subset
    const local = (avail: boolean[]) =>
      tidy(() => {
        const outs = code.encode(tensor(Float32Array.from([...xs[0], ...xs[1]]), [1, 2, 6])).map((q, i) => (avail[i] ? q.inputs[0] : null));
        return code.decode(outs).outputs.map((t) => [...t.dataFloat32()]);
      });
    const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-5);
    // every output arrives: decoded from all 3 at once (the deadline never passes: time stands still)
    const all = await Promise.all(fast.submit(xs));
    assert.ok(all.every((r) => r.reconstructed && !r.defaulted));
    const want = local([true, true, true]);
    assert.ok(
      all.every((r, q) => close([...r.data], want[q])),
      'with every worker fast, the answer is decoded from all 3 outputs',
    );
    // with a straggler: two outputs arrive, the frontend keeps waiting for the third until the deadline
    const before = conns.answered;
    let settled = false;
    const pending = Promise.all(withSlow.submit(xs)).finally(() => void (settled = true));
    await conns.answers(before + 2);
    await turns();
    assert.equal(settled, false, 'decoded before the deadline although an output was still missing');
    assert.equal(conns.held, 1);
    slowTime.virtual.advance(59);
    await turns();
    assert.equal(settled, false, 'decoded 1 ms before the deadline');
    slowTime.virtual.advance(1);
    const some = await pending;
    conns.release();
    const subsets = [
      [false, true, true],
      [true, false, true],
      [true, true, false],
    ].map(local);
    assert.ok(
      subsets.some((w) => some.every((r, q) => close([...r.data], w[q]))),
      'decoded from the two outputs that arrived by the deadline',
    );
  } finally {
    for (const f of fes) await f.close();
    await Promise.all(servers.map((s) => s.close()));
    (code as { dispose?: () => void }).dispose?.();
  }
});
