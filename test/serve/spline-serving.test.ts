import { test } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { Frontend } from '../../src/serve/frontend.js';
import { validateFrontendConfig } from '../../src/serve/config.js';
import { InstanceServer } from '../../src/serve/instance.js';
import { servedModelFrom } from '../../src/serve/served-model.js';
import { tensor, tidy } from '../../src/engine/index.js';
import '../../src/codes/index.js';
import { codeFromConfig } from '../../src/codes/registry.js';
import type { CodeConfig } from '../../src/codes/code.js';

const silent = pino({ level: 'silent' });
const faults = (failProb: number) => ({ latency: { kind: 'none' as const }, slowProb: 0, slowMs: 0, failProb, crashAfter: 0, seed: 1 });

for (const config of [
  { family: 'letcc', k: 3, r: 2, lambdaDec: 0.001 },
  { family: 'bspline', k: 3, r: 2 },
] as CodeConfig[]) {
  test(`serving a ${config.family} code: base instances run F on the coded queries; the frontend decodes from every output, or from the rest when a worker fails`, async () => {
    const code = codeFromConfig(config);
    const servers: InstanceServer[] = [];
    const fes: Frontend[] = [];
    try {
      // five healthy instances and one whose every request fails
      for (const fail of [0, 0, 0, 0, 0, 1])
        servers.push(
          await InstanceServer.start({ model: servedModelFrom('noop:6', 'm'), httpPort: null, grpcPort: 0, faults: faults(fail) }),
        );
      const addr = (s: InstanceServer) => `127.0.0.1:${s.grpcPort}`;
      const start = (insts: InstanceServer[]) =>
        Frontend.start({
          config: validateFrontendConfig({
            name: 's',
            mode: 'coded',
            code: config,
            grpcPort: 0,
            sloMs: 60000,
            decodeDeadlineMs: 30000,
            maxWaitMs: 1,
            instanceConcurrency: 1,
            maxAttempts: 1,
            dispatch: 'round-robin',
            pools: { base: { model: 'm', instances: insts.map(addr) } },
          }),
          logger: silent,
        });
      const healthy = await start(servers.slice(0, 5));
      fes.push(healthy);
      const xs = [Float32Array.of(1, 2, 3, 4, 5, 6), Float32Array.of(-3, 0, 2, 8, 1, 1), Float32Array.of(0, 4, -2, 1, 1, 3)];
      // local reference: F = identity (noop) on the coded queries, decoded from a subset
      const local = (avail: boolean[]) =>
        tidy(() => {
          const outs = code
            .encode(tensor(Float32Array.from(xs.flatMap((v) => [...v])), [1, 3, 6]))
            .map((q, i) => (avail[i] ? q.inputs[0] : null));
          return code.decode(outs).outputs.map((t) => [...t.dataFloat32()]);
        });
      const close = (a: number[], b: number[]) => a.every((v, i) => Math.abs(v - b[i]) < 1e-4 * (1 + Math.abs(b[i])));
      const all = await Promise.all(healthy.submit(xs));
      assert.ok(all.every((r) => r.reconstructed && !r.defaulted));
      const want = local([true, true, true, true, true]);
      assert.ok(
        all.every((r, q) => close([...r.data], want[q])),
        'with every worker answering, the answer is decoded from all 5 outputs',
      );
      // an identity F: the answer is (close to) the query itself
      assert.ok(
        all.every((r, q) => [...r.data].every((v, i) => Math.abs(v - xs[q][i]) < 0.5)),
        `answers ${all.map((r) => [...r.data].map((v) => v.toFixed(2)).join(' ')).join(' | ')}`,
      );
      // round-robin dispatch: coded query 2 goes to the failing instance (no second attempts), the answer is decoded from the other four
      const withFailing = await start([servers[0], servers[1], servers[5], servers[2], servers[3]]);
      fes.push(withFailing);
      const some = await Promise.all(withFailing.submit(xs));
      assert.ok(some.every((r) => r.reconstructed && !r.defaulted));
      const four = local([true, true, false, true, true]);
      assert.ok(
        some.every((r, q) => close([...r.data], four[q])),
        'decoded from the four outputs that arrived',
      );
      assert.ok(!some.every((r, q) => close([...r.data], want[q])), 'not the all-outputs answer');
    } finally {
      for (const f of fes) await f.close();
      await Promise.all(servers.map((s) => s.close()));
    }
  });
}
