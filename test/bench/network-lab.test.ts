import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync, spawn } from 'node:child_process';
import { NetworkLab, networkLabUnavailable } from '../../src/bench/network-lab.js';
import { describeStragglers, parseNetwork } from '../../src/bench/serving-experiment.js';
import { startInstanceProcess } from '../../src/serve/processes.js';
import { V2GrpcClient } from '../../src/serve/client.js';

const unavailable = networkLabUnavailable();
const skip = unavailable === null ? false : `skipped: ${unavailable}`;

function sh(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

function labObjects(prefix: string): string[] {
  const ns = sh('ip', ['netns', 'list'])
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0])
    .filter((n) => n && n.startsWith(prefix));
  const links = sh('ip', ['-o', 'link', 'show'])
    .split('\n')
    .map((l) => /^\d+:\s+([^:@\s]+)/.exec(l)?.[1])
    .filter((n): n is string => n !== undefined && n.startsWith(prefix));
  return [...ns, ...links];
}

test("network lab: a noop instance in host 0's namespace answers V2 gRPC from the root namespace at lab.address(0)", { skip }, async () => {
  const lab = await NetworkLab.start({ hosts: 2, rateMbit: 100 });
  try {
    const inst = await startInstanceProcess(['--model', 'noop:16'], { wrap: lab.wrap(0), host: lab.address(0) });
    const client = new V2GrpcClient(inst.address);
    try {
      assert.equal(inst.address, `${lab.address(0)}:${inst.grpc}`);
      // the instance really runs in host 0's namespace
      assert.equal(sh('ip', ['netns', 'identify', String(inst.proc.pid)]).trim(), lab.link(0).ns);
      const x = Float32Array.from({ length: 16 }, (_, i) => i * 0.5 - 3);
      const r = await client.infer('noop', 'input', x, [1, 16], 10000);
      assert.deepEqual(r.shape, [1, 16]);
      assert.deepEqual([...r.data], [...x]);
    } finally {
      client.close();
      await inst.stop();
    }
  } finally {
    await lab.stop();
  }
});

test('network lab: both ends of every host link are rate-limited (htb at rateMbit with a 1 ms bucket over a pfifo queue); the hosts have no default route and use the chosen congestion control', {
  skip,
}, async () => {
  const lab = await NetworkLab.start({ hosts: 2, rateMbit: 37, queuePackets: 500, congestionControl: 'reno' });
  try {
    for (let i = 0; i < 2; i++) {
      const l = lab.link(i);
      for (const [ns, dev] of [
        [[], l.outside],
        [['-n', l.ns], l.inside],
      ] as const) {
        const classes = sh('tc', [...ns, 'class', 'show', 'dev', dev]);
        assert.match(classes, /class htb 1:1 .*rate 37Mbit ceil 37Mbit burst 4625b cburst 4625b/, `${dev}: ${classes}`);
        const qdiscs = sh('tc', [...ns, 'qdisc', 'show', 'dev', dev]);
        assert.match(qdiscs, /qdisc htb 1: root/, qdiscs);
        assert.match(qdiscs, /qdisc pfifo 10: parent 1:1 limit 500p/, qdiscs);
      }
    }
    // the namespaces have no route out of the lab subnet
    const routes = sh('ip', ['-n', lab.link(0).ns, '-4', 'route', 'show']);
    assert.doesNotMatch(routes, /default/);
    assert.match(routes, /congctl reno/);
    assert.match(lab.address(1), /^10\.213\.\d+\.3$/);
  } finally {
    await lab.stop();
  }
});

test('network lab: with gso the links keep GSO on and queue in a byte fifo as large as the packet fifo would be (at least two 64 KB packets)', {
  skip,
}, async () => {
  const lab = await NetworkLab.start({ hosts: 1, rateMbit: 37, queuePackets: 100, gso: true });
  try {
    const l = lab.link(0);
    for (const [ns, dev] of [
      [[], l.outside],
      [['-n', l.ns], l.inside],
    ] as const) {
      assert.match(sh('tc', [...ns, 'qdisc', 'show', 'dev', dev]), /qdisc bfifo 10: parent 1:1 limit 151400b/);
      assert.doesNotMatch(sh('ip', [...ns, '-d', 'link', 'show', 'dev', dev]), /gso_max_segs 1 /);
    }
  } finally {
    await lab.stop();
  }
  // a queue of a few packets still holds two 64 KB super-packets
  const small = await NetworkLab.start({ hosts: 1, rateMbit: 37, queuePackets: 10, gso: true });
  try {
    assert.match(sh('tc', ['qdisc', 'show', 'dev', small.link(0).outside]), /qdisc bfifo 10: parent 1:1 limit 128Kb/);
  } finally {
    await small.stop();
  }
});

test('network lab: with uplinkMbit the host ends are shaped to it and the bridge ends (downlinks) to rateMbit', { skip }, async () => {
  const lab = await NetworkLab.start({ hosts: 1, rateMbit: 37, uplinkMbit: 370 });
  try {
    const l = lab.link(0);
    assert.match(sh('tc', ['class', 'show', 'dev', l.outside]), /class htb 1:1 .*rate 37Mbit ceil 37Mbit/);
    assert.match(sh('tc', ['-n', l.ns, 'class', 'show', 'dev', l.inside]), /class htb 1:1 .*rate 370Mbit ceil 370Mbit/);
  } finally {
    await lab.stop();
  }
});

test('--network parses RATE[:PAIRS[:MIN:MAX[:UPLINK]]][,gso] (PAIRS 0: links only) and names the form when it is wrong', () => {
  assert.deepEqual(parseNetwork('100'), { rateMbit: 100, pairs: 4, minMB: 16, maxMB: 64 });
  assert.deepEqual(parseNetwork('100:1:8:32'), { rateMbit: 100, pairs: 1, minMB: 8, maxMB: 32 });
  assert.deepEqual(parseNetwork('100:1:8:32:1000'), { rateMbit: 100, pairs: 1, minMB: 8, maxMB: 32, uplinkMbit: 1000 });
  assert.deepEqual(parseNetwork('1000:0'), { rateMbit: 1000, pairs: 0, minMB: 16, maxMB: 64 });
  assert.deepEqual(parseNetwork('10000:4:128:256,gso'), { rateMbit: 10000, pairs: 4, minMB: 128, maxMB: 256, gso: true });
  for (const bad of [
    '100:1:8',
    '100:1.5',
    '100:1:32:8',
    '100:1:8:32:0',
    '100:1:8:32:1000:5',
    'x',
    '0:1',
    '100:-1',
    '100::8:32',
    '100,tso',
    '100,gso,gso',
  ])
    assert.throws(() => parseNetwork(bad), /RATE_MBIT\[:PAIRS\[:MIN_MB:MAX_MB\[:UPLINK_MBIT\]\]\]\[,gso\]/, bad);
  assert.match(
    describeStragglers({ slowProb: 0, slowMs: 100, network: parseNetwork('1000:0,gso') }),
    /GSO super-packets.*no background transfers/,
  );
  assert.match(
    describeStragglers({ slowProb: 0, slowMs: 100, network: parseNetwork('100:1:8:32:1000') }),
    /100 Mbit link \(uplink 1000 Mbit\)/,
  );
});

test('network lab: bulk transfers complete between random pairs, each finished one starts the next, and stats() counts the bytes exactly', {
  skip,
}, async () => {
  const lab = await NetworkLab.start({ hosts: 3, rateMbit: 1000 });
  try {
    const bulk = await lab.startBulkTransfers({ pairs: 2, minBytes: 300_000, maxBytes: 300_000, seed: 5 });
    const s = await bulk.waitFor(4);
    await bulk.stop();
    const after = bulk.stats();
    assert.ok(s.transfers >= 4);
    assert.equal(after.failures, 0);
    assert.equal(after.bytes, after.transfers * 300_000);
    assert.equal(bulk.completed.length, after.transfers);
    for (const t of bulk.completed) {
      assert.notEqual(t.from, t.to);
      assert.ok(t.from >= 0 && t.from < 3 && t.to >= 0 && t.to < 3);
    }
    await assert.rejects(bulk.waitFor(after.transfers + 1), /stopped/);
  } finally {
    await lab.stop();
  }
});

test('network lab: stop() removes every namespace, veth and bridge of the lab (and kills processes in it); it is idempotent', {
  skip,
}, async () => {
  const lab = await NetworkLab.start({ hosts: 2, rateMbit: 100 });
  try {
    const bulk = await lab.startBulkTransfers({ pairs: 1, minBytes: 1 << 30, maxBytes: 1 << 30, seed: 1 });
    // a process started through wrap() that the lab does not own
    const stray = spawn(lab.wrap(1)[0], [...lab.wrap(1).slice(1), process.execPath, '-e', 'setInterval(() => {}, 1000)'], {
      stdio: 'ignore',
    });
    const strayExit = new Promise((resolve) => stray.once('exit', resolve));
    // in the root namespace: 2 namespaces, the bridge, the 2 outer veth ends
    assert.equal(labObjects(`${lab.name}-`).length, 5);
    await lab.stop();
    await lab.stop();
    await strayExit;
    assert.deepEqual(labObjects(`${lab.name}-`), []);
    assert.equal(bulk.stats().running, 0);
  } finally {
    await lab.stop();
  }
});

test('network lab: cleanupStale removes the namespaces and interfaces of a lab whose process is gone', { skip }, async () => {
  // a pid that no longer runs
  const p = spawn(process.execPath, ['-e', '0'], { stdio: 'ignore' });
  await new Promise((resolve) => p.once('exit', resolve));
  const name = `ciltest${p.pid!.toString(36)}-0`;
  sh('ip', ['netns', 'add', `${name}-n0`]);
  sh('ip', ['link', 'add', `${name}-b`, 'type', 'bridge']);
  try {
    assert.equal(labObjects(`${name}-`).length, 2);
    const removed = NetworkLab.cleanupStale('ciltest');
    assert.deepEqual(removed, { namespaces: [`${name}-n0`], links: [`${name}-b`] });
    assert.deepEqual(labObjects(`${name}-`), []);
  } finally {
    spawnSync('ip', ['netns', 'del', `${name}-n0`]);
    spawnSync('ip', ['link', 'del', `${name}-b`]);
  }
});
