// The container images' Dockerfiles (no Docker engine here): what they COPY exists and is not
// ignored, what they RUN exists and is executable, everything the build needs is copied, the
// entrypoint is the CLI, the user is the unprivileged uid the Kubernetes manifests run as, and
// the exposed ports are the ones the manifests probe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../src/util/package-root.js';
import { renderK8s, HTTP_PORT, GRPC_PORT } from '../../src/deploy/k8s.js';
import { readFrontendConfig } from '../../src/serve/config.js';

const root = packageRoot();

interface Instruction {
  op: string;
  args: string;
}

/** Dockerfile instructions, continuation lines joined, comments dropped. */
function instructions(path: string): Instruction[] {
  const text = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => !/^\s*#/.test(l))
    .join('\n')
    .replace(/\\\n/g, ' ');
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => {
      const m = /^(\w+)\s+(.*)$/.exec(l);
      assert.ok(m !== null, `${path}: cannot read '${l}'`);
      return { op: m[1].toUpperCase(), args: m[2] };
    });
}

const ignored = readFileSync(join(root, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l !== '' && !l.startsWith('#'));
const executable = (p: string) => (statSync(p).mode & 0o111) !== 0;

for (const file of ['Dockerfile', 'Dockerfile.cuda']) {
  test(`deploy/docker/${file}: COPY sources exist and are not ignored; RUN scripts exist; the build's inputs are all copied; CLI entrypoint; non-root uid as in the manifests; the manifests' ports`, () => {
    const ins = instructions(join(root, 'deploy', 'docker', file));
    const copied = new Set<string>();
    for (const c of ins.filter((i) => i.op === 'COPY' && !i.args.startsWith('--from='))) {
      const parts = c.args.split(/\s+/);
      const sources = parts.slice(0, -1);
      for (const s of sources) {
        assert.ok(existsSync(join(root, s)), `${file}: COPY ${s}: no such file in the repository`);
        assert.ok(!ignored.includes(s.split('/')[0]), `${file}: COPY ${s} is excluded by .dockerignore`);
        copied.add(s);
      }
    }
    // what scripts/setup needs to build: npm ci (package files), the addon (binding.gyp, native/), tsc (tsconfig's include)
    const tsconfig = JSON.parse(readFileSync(join(root, 'tsconfig.json'), 'utf8')) as { include: string[] };
    const needed = [
      'package.json',
      'package-lock.json',
      'binding.gyp',
      'tsconfig.json',
      'bin',
      'scripts',
      'native',
      'models',
      ...tsconfig.include.map((g) => g.split('/')[0]),
    ];
    for (const n of needed) assert.ok(copied.has(n), `${file}: the build needs ${n}, which is not copied`);
    for (const n of needed) assert.ok(!ignored.includes(n), `.dockerignore excludes ${n}, which the build needs`);
    // RUN ./scripts/...: each exists and is executable
    const runs = ins
      .filter((i) => i.op === 'RUN')
      .map((i) => i.args)
      .join(' ; ');
    const scripts = [...runs.matchAll(/\.\/(scripts\/[\w.-]+)/g)].map((m) => m[1]);
    assert.ok(scripts.includes('scripts/setup'), `${file}: does not run scripts/setup`);
    for (const s of scripts) {
      assert.ok(existsSync(join(root, s)), `${file}: RUN ${s}: missing`);
      assert.ok(executable(join(root, s)), `${file}: ${s} is not executable`);
    }
    // the CLI as entrypoint
    const entry = ins.filter((i) => i.op === 'ENTRYPOINT').at(-1);
    assert.ok(entry !== undefined);
    const argv = JSON.parse(entry.args) as string[];
    assert.equal(argv[0], '/opt/coded-inference/bin/coded');
    const workdir = ins.filter((i) => i.op === 'WORKDIR').at(-1)?.args;
    assert.equal(workdir, '/opt/coded-inference');
    assert.ok(executable(join(root, 'bin', 'coded')));
    // an unprivileged numeric user, the one the manifests run as (runAsNonRoot needs a numeric uid)
    const user = ins.filter((i) => i.op === 'USER').at(-1)?.args ?? 'root';
    const uid = Number(user.split(':')[0]);
    assert.ok(Number.isInteger(uid) && uid > 0, `${file}: USER ${user} is not a numeric non-root user`);
    assert.ok(runs.includes(`--uid ${uid}`), `${file}: the user ${uid} is not created`);
    const { files } = renderK8s({
      config: readFrontendConfig(join(root, 'deploy', 'examples', 'demo-equal-resources.json')),
      image: 'x',
      namespace: 'default',
      models: { base: 'noop:4' },
    });
    for (const o of [...files.values()].flat().filter((x) => x.kind === 'Deployment')) {
      const sc = (o.spec as { template: { spec: { securityContext: { runAsUser: number; runAsNonRoot: boolean } } } }).template.spec
        .securityContext;
      assert.equal(sc.runAsUser, uid, `${o.metadata.name} runs as ${sc.runAsUser}, the image's user is ${uid}`);
      assert.equal(sc.runAsNonRoot, true);
    }
    const exposed = ins.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map(Number));
    assert.deepEqual(exposed.sort(), [HTTP_PORT, GRPC_PORT].sort());
    if (file === 'Dockerfile') {
      assert.match(ins[0].args, /bookworm/, 'the CPU image is Debian bookworm');
    } else {
      // libtorch = torch's own, with its ABI, set where scripts/setup builds the addon
      const setupRun = ins.find((i) => i.op === 'RUN' && i.args.includes('./scripts/setup'))!.args;
      assert.match(setupRun, /export LIBTORCH="\$\(python3 -c 'import torch, os; print\(os\.path\.dirname\(torch\.__file__\)\)'\)"/);
      assert.match(setupRun, /LIBTORCH_CXX11_ABI=.*_GLIBCXX_USE_CXX11_ABI/);
      assert.match(ins.find((i) => i.op === 'ARG')!.args, /^PYTORCH_IMAGE=pytorch\/pytorch:[\w.]+-cuda[\w.]+-cudnn\d+-runtime$/);
    }
  });
}
