// `coded deploy k8s`: the rendered manifests round-trip through the YAML parser and validate
// against the Kubernetes API schemas (kubernetes-models: validators generated from the
// official OpenAPI document of Kubernetes 1.27.1: types, required fields, enums, formats; the
// renderer's objects are typed with the same package's API types, so an unknown field is a
// compile error); probes point at routes the instance and the frontend really serve; the
// ConfigMap's config names the headless Services rendered beside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments, parse as parseYaml } from 'yaml';
import { pino } from 'pino';
import { Deployment } from 'kubernetes-models/apps/v1/Deployment';
import { Service } from 'kubernetes-models/v1/Service';
import { ConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { packageRoot } from '../../src/util/package-root.js';
import { validateFrontendConfig, readFrontendConfig } from '../../src/serve/config.js';
import { renderK8s, probePaths, type K8sObject } from '../../src/deploy/k8s.js';
import { toYaml } from '../../src/deploy/yaml.js';
import { InstanceServer } from '../../src/serve/instance.js';
import { servedModelFrom } from '../../src/serve/served-model.js';
import { Frontend } from '../../src/serve/frontend.js';
import { parseDnsEntry } from '../../src/serve/discovery.js';

const root = packageRoot();
const cli = join(root, 'dist', 'src', 'cli', 'main.js');
const demoCoded = join(root, 'deploy', 'examples', 'demo-coded.json');
const demoEqual = join(root, 'deploy', 'examples', 'demo-equal-resources.json');

function run(args: string[]) {
  return spawnSync(process.execPath, [cli, 'deploy', 'k8s', ...args], { encoding: 'utf8' });
}

/** Every YAML document in DIR's manifests (not kustomization.yaml), parsed. */
function readManifests(dir: string): { file: string; obj: K8sObject }[] {
  const out: { file: string; obj: K8sObject }[] = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml')) {
    for (const d of parseAllDocuments(readFileSync(join(dir, f), 'utf8'))) {
      assert.deepEqual(d.errors, [], `${f}: YAML errors`);
      out.push({ file: f, obj: d.toJS() as K8sObject });
    }
  }
  return out;
}

/** Validate against the Kubernetes API schema of the object's kind; returns the error or null. */
function schemaError(o: K8sObject): string | null {
  const byKind: Record<string, (x: never) => { validate(): void }> = {
    'apps/v1 Deployment': (x) => new Deployment(x),
    'v1 Service': (x) => new Service(x),
    'v1 ConfigMap': (x) => new ConfigMap(x),
  };
  const make = byKind[`${o.apiVersion} ${o.kind}`];
  if (make === undefined) return `unexpected kind ${o.apiVersion} ${o.kind}`;
  try {
    make(o as never).validate();
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}

const demoModels = [
  '--model',
  'base=models/fashion-mnist-base-mlp.safetensors',
  '--model',
  'parity:0=models/fashion-mnist-base-mlp-concat-k2.safetensors',
];

for (const [label, config, extra] of [
  ['coded (4 base + 2 parity, GPU pods)', demoCoded, [...demoModels, '--gpu', '1']],
  ['equal-resources (6 base, CPU pods)', demoEqual, ['--model', 'base=models/fashion-mnist-base-mlp.safetensors']],
] as const) {
  test(`deploy k8s, the demo's ${label}: schema-valid manifests that round-trip through YAML; the ConfigMap's config uses the headless Services' DNS names`, () => {
    const out = mkdtempSync(join(tmpdir(), 'coded-k8s-'));
    try {
      const r = run(['--config', config, '--out', out, '--namespace', 'serving', ...extra]);
      assert.equal(r.status, 0, r.stderr);
      const docs = readManifests(out);
      const kinds = docs.map((d) => `${d.obj.kind}/${d.obj.metadata.name}`).sort();
      const src = readFrontendConfig(config);
      const poolSlugs = src.mode === 'coded' ? ['base', 'parity-0'] : ['base'];
      const prefix = src.name;
      assert.deepEqual(
        kinds,
        [
          `ConfigMap/${prefix}-frontend`,
          `Deployment/${prefix}-frontend`,
          ...poolSlugs.map((s) => `Deployment/${prefix}-${s}`),
          `Service/${prefix}-frontend`,
          ...poolSlugs.map((s) => `Service/${prefix}-${s}`),
        ].sort(),
      );
      for (const d of docs) assert.equal(schemaError(d.obj), null, `${d.file} ${d.obj.kind}/${d.obj.metadata.name}`);
      // YAML round trip: what was written parses back to what was rendered
      for (const d of docs) assert.deepEqual(parseYaml(toYaml([d.obj])), d.obj);
      const kust = parseYaml(readFileSync(join(out, 'kustomization.yaml'), 'utf8')) as { resources: string[] };
      assert.deepEqual([...kust.resources].sort(), [...new Set(docs.map((d) => d.file))].sort());

      // replicas as the config lists them; GPUs requested when asked for
      const dep = (slug: string) =>
        docs.find((d) => d.obj.kind === 'Deployment' && d.obj.metadata.name === `${prefix}-${slug}`)!.obj as unknown as {
          spec: {
            replicas: number;
            template: {
              spec: { containers: { args: string[]; resources: { requests: Record<string, string>; limits: Record<string, string> } }[] };
            };
          };
        };
      assert.equal(dep('base').spec.replicas, src.pools.base.instances.length);
      const ct = dep('base').spec.template.spec.containers[0];
      if (src.mode === 'coded') {
        assert.equal(dep('parity-0').spec.replicas, 2);
        assert.equal(ct.resources.requests['nvidia.com/gpu'], '1');
        assert.equal(ct.resources.limits['nvidia.com/gpu'], '1');
        assert.deepEqual(ct.args.slice(ct.args.indexOf('--device'), ct.args.indexOf('--device') + 2), ['--device', 'cuda']);
        const pargs = dep('parity-0').spec.template.spec.containers[0].args;
        assert.deepEqual(
          pargs.slice(pargs.indexOf('--parity-index'), pargs.indexOf('--parity-index') + 2),
          ['--parity-index', '0'],
          'a parity-code checkpoint serves its parity model 0',
        );
      } else {
        assert.equal(ct.resources.requests['nvidia.com/gpu'], undefined);
        assert.ok(ct.args.includes('cpu'));
      }

      // the frontend's config: valid, same settings, pools = headless Services that exist here, on the pods' gRPC port
      const cm = docs.find((d) => d.obj.kind === 'ConfigMap')!.obj as unknown as { data: Record<string, string> };
      const deployed = validateFrontendConfig(JSON.parse(cm.data['frontend.json']));
      assert.equal(deployed.mode, src.mode);
      assert.equal(deployed.sloMs, src.sloMs);
      const entries = [deployed.pools.base, ...(deployed.pools.parity ?? [])].map((p) => p.instances);
      for (const list of entries) {
        assert.equal(list.length, 1);
        const t = parseDnsEntry(list[0]);
        const [svcName, ns] = t.name.split('.');
        const svc = docs.find((d) => d.obj.kind === 'Service' && d.obj.metadata.name === svcName)?.obj as unknown as
          | {
              metadata: { namespace: string };
              spec: { clusterIP: string; selector: Record<string, string>; ports: { targetPort: string }[] };
            }
          | undefined;
        assert.ok(svc !== undefined, `no Service ${svcName}`);
        assert.equal(ns, 'serving');
        assert.equal(svc.metadata.namespace, 'serving');
        assert.equal(svc.spec.clusterIP, 'None', 'a headless Service (one A record per ready pod)');
        // the Service selects exactly the pods of its Deployment
        const d = dep(svcName.slice(prefix.length + 1)) as unknown as {
          spec: { template: { metadata: { labels: Record<string, string> } }; selector: { matchLabels: Record<string, string> } };
        };
        for (const [k, v] of Object.entries(svc.spec.selector)) assert.equal(d.spec.template.metadata.labels[k], v);
        assert.equal(t.port, 8001, "the DNS entry names the pods' gRPC container port");
      }
      // Prometheus scrapes the frontend's /metrics
      const fe = docs.find((d) => d.obj.kind === 'Deployment' && d.obj.metadata.name === `${prefix}-frontend`)!.obj as unknown as {
        spec: { template: { metadata: { annotations: Record<string, string> } } };
      };
      assert.equal(fe.spec.template.metadata.annotations['prometheus.io/scrape'], 'true');
      assert.equal(fe.spec.template.metadata.annotations['prometheus.io/path'], '/metrics');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
}

test('deploy k8s: the schema check rejects a broken manifest (it can fail)', () => {
  const { files } = renderK8s({
    config: readFrontendConfig(demoEqual),
    image: 'x',
    namespace: 'default',
    models: { base: 'models/fashion-mnist-base-mlp.safetensors' },
  });
  const dep = structuredClone(files.get('pool-base.yaml')![0]) as unknown as {
    spec: { replicas: unknown; template: { spec: { containers: Record<string, unknown>[] } } };
  };
  assert.equal(schemaError(dep as unknown as K8sObject), null);
  dep.spec.replicas = 'six';
  assert.match(schemaError(dep as unknown as K8sObject) ?? '', /replicas/);
  dep.spec.replicas = 6;
  delete dep.spec.template.spec.containers[0].name;
  assert.match(schemaError(dep as unknown as K8sObject) ?? '', /name/);
});

test('deploy k8s: every probe points at a route the instance and the frontend really serve (200), and a wrong model name would not be ready', async () => {
  const cfg = readFrontendConfig(demoCoded);
  const { files } = renderK8s({ config: cfg, image: 'x', namespace: 'default', models: { base: 'noop:4', 'parity:0': 'noop:4' } });
  const silent = pino({ level: 'silent' });
  const all = [...files.values()].flat();
  const probes = probePaths(all);
  assert.ok(probes.length >= 9, `probes: ${probes.length}`);
  // instances: each pool's model served by a real instance (REST), as the pods run it
  const base = await InstanceServer.start({ model: servedModelFrom('noop:4', 'base'), httpPort: 0, grpcPort: 0 });
  const parity = await InstanceServer.start({ model: servedModelFrom('noop:4', 'parity'), httpPort: 0, grpcPort: 0 });
  let fe: Frontend | null = null;
  try {
    fe = await Frontend.start({
      config: validateFrontendConfig({
        name: 'fashion',
        mode: 'none',
        httpPort: 0,
        pools: { base: { model: 'base', instances: [`127.0.0.1:${base.grpcPort}`] } },
      }),
      logger: silent,
    });
    const portFor = (object: string) =>
      object.endsWith('-frontend') ? fe!.httpPort : object.endsWith('-base') ? base.httpPort : parity.httpPort;
    for (const p of probes) {
      const r = await fetch(`http://127.0.0.1:${portFor(p.object)}${p.path}`);
      await r.arrayBuffer();
      assert.equal(r.status, 200, `${p.object} ${p.container} ${p.probe} GET ${p.path}`);
    }
    const wrong = await fetch(`http://127.0.0.1:${base.httpPort}/v2/models/parity/ready`);
    await wrong.arrayBuffer();
    assert.notEqual(wrong.status, 200);
  } finally {
    await fe?.close();
    await base.close();
    await parity.close();
  }
});

test('deploy k8s: --kserve and --triton point pools at existing pods (a headless Service selecting them, no Deployment); missing --model is a usage error naming the pool', () => {
  const out = mkdtempSync(join(tmpdir(), 'coded-k8s-'));
  try {
    const r = run([
      '--config',
      demoCoded,
      '--out',
      out,
      '--kserve',
      'base=models/fmnist-base:8081',
      '--triton',
      'parity:0=app=triton-parity,tier=gpu',
      '--json',
    ]);
    assert.equal(r.status, 0, r.stderr);
    const summary = JSON.parse(r.stdout) as { pools: Record<string, string> };
    assert.equal(summary.pools.base, 'dns:///fashion-base.models.svc.cluster.local:8081');
    assert.equal(summary.pools['parity:0'], 'dns:///fashion-parity-0.default.svc.cluster.local:8001');
    const docs = readManifests(out);
    for (const d of docs) assert.equal(schemaError(d.obj), null, `${d.file} ${d.obj.kind}/${d.obj.metadata.name}`);
    assert.deepEqual(
      docs.filter((d) => d.obj.kind === 'Deployment').map((d) => d.obj.metadata.name),
      ['fashion-frontend'],
    );
    const svc = (n: string) =>
      docs.find((d) => d.obj.kind === 'Service' && d.obj.metadata.name === n)!.obj as unknown as {
        metadata: { namespace: string };
        spec: { clusterIP: string; selector: Record<string, string>; ports: { port: number }[] };
      };
    assert.deepEqual(svc('fashion-base').spec.selector, { 'serving.kserve.io/inferenceservice': 'fmnist-base' });
    assert.equal(svc('fashion-base').metadata.namespace, 'models');
    assert.equal(svc('fashion-base').spec.clusterIP, 'None');
    assert.deepEqual(svc('fashion-parity-0').spec.selector, { app: 'triton-parity', tier: 'gpu' });
    assert.equal(svc('fashion-parity-0').spec.ports[0].port, 8001);

    const missing = run(['--config', demoCoded, '--out', out, '--model', 'base=models/fashion-mnist-base-mlp.safetensors']);
    assert.equal(missing.status, 2);
    assert.match(missing.stderr, /pool parity:0 \(model 'parity'\).*--model parity:0=/);
    const unknown = run(['--config', demoCoded, '--out', out, ...demoModels, '--replicas', 'parity:3=2']);
    assert.equal(unknown.status, 2);
    assert.match(unknown.stderr, /--replicas names pool 'parity:3'.*base, parity:0/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
