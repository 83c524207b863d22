// `coded deploy k8s`: Kubernetes manifests from a frontend config (src/deploy/k8s.ts).
import { mkdirSync, existsSync } from 'node:fs';
import { join, isAbsolute } from 'node:path';
import { parse, intOption, choiceOption, UsageError } from '../args.js';

export const usage = `coded deploy k8s --config FRONTEND.json --out DIR [options]

Renders plain Kubernetes manifests (and a kustomization.yaml listing them) for the frontend
config FRONTEND.json: per pool (base, parity:J, worker:NAME:I) a Deployment of
\`coded serve instance\` pods with V2 health probes and resource requests, and a headless
Service whose DNS name the frontend resolves to find the pods (one A record per ready pod);
the frontend as a Deployment + Service + ConfigMap (the config rewritten to those DNS names),
with Prometheus scrape annotations for its /metrics. Apply with: kubectl apply -k DIR
A pool's instance count is the number of addresses the config lists, unless --replicas says.

Options:
  --config FILE          the frontend config (as for \`coded serve frontend\`)
  --out DIR              where to write the YAML files (created)
  --model POOL=SPEC      what POOL's instances serve: \`coded serve instance --model\` SPEC, a path
                         inside the image (e.g. base=models/fashion-mnist-base-mlp.safetensors);
                         required for every pool not served by --kserve / --triton. A parity
                         pool's checkpoint gets --parity-index J when it is a parity-code
                         checkpoint (read here when the path exists; otherwise assumed)
  --replicas POOL=N      instances of POOL (default: as many as the config lists)
  --kserve POOL=[NS/]ISVC[:PORT]
                         POOL is served by an existing KServe InferenceService's predictor pods
                         (label serving.kserve.io/inferenceservice=ISVC, V2 gRPC on PORT, default 8081)
  --triton POOL=[NS/]LABEL=VALUE[,LABEL=VALUE...][:PORT]
                         POOL is served by existing Triton pods with these labels (gRPC PORT, default 8001)
  --instance-arg POOL=ARG  an extra \`coded serve instance\` argument for POOL (repeat for several)
  --image IMAGE          container image with the coded CLI as entrypoint (default coded-inference:0.1.0,
                         built from deploy/docker/Dockerfile; deploy/docker/Dockerfile.cuda for GPUs)
  --image-pull-policy P  Always | IfNotPresent (default) | Never
  --namespace NS         (default default)
  --name NAME            resource name prefix (default: the config's name)
  --gpu N                GPUs per instance pod (nvidia.com/gpu; instances run with --device cuda; default 0)
  --threads N            libtorch threads per instance (default 1)
  --cpu Q --memory Q     requests per instance pod (default 1, 1Gi; memory is also the limit)
  --frontend-cpu Q --frontend-memory Q   the same for the frontend (default 1, 512Mi)
  --frontend-replicas N  (default 1)
  --service-type T       the frontend Service: ClusterIP (default) | NodePort | LoadBalancer
  --cluster-domain D     (default cluster.local)
  --json                 print what was written as JSON
  -h, --help`;

export async function deploy(argv: string[]): Promise<void> {
  const [what, ...rest] = argv;
  if (what === undefined || what === '--help' || what === '-h') return void console.log(usage);
  if (what === 'k8s') return k8s(rest);
  throw new UsageError(`unknown target '${what}' (k8s)\n\n${usage}`);
}

/** POOL=VALUE options into a record (the last one wins, except for lists). */
function byPool(values: string[] | undefined, flag: string): [string, string][] {
  return (values ?? []).map((v) => {
    const i = v.indexOf('=');
    if (i <= 0 || i === v.length - 1)
      throw new UsageError(`--${flag} takes POOL=VALUE (POOL: base, parity:J or worker:NAME:I), got '${v}'`);
    return [v.slice(0, i), v.slice(i + 1)];
  });
}

/** [NS/]REST[:PORT] */
function splitExternal(v: string, flag: string, defaultPort: number): { namespace?: string; rest: string; port: number } {
  let s = v;
  let port = defaultPort;
  const pm = /:(\d+)$/.exec(s);
  if (pm !== null) {
    port = Number(pm[1]);
    if (!(port >= 1 && port <= 65535)) throw new UsageError(`--${flag}: port ${pm[1]} is out of range`);
    s = s.slice(0, pm.index);
  }
  const slash = s.indexOf('/');
  const namespace = slash >= 0 ? s.slice(0, slash) : undefined;
  const rest = slash >= 0 ? s.slice(slash + 1) : s;
  if (rest === '' || namespace === '') throw new UsageError(`--${flag}: cannot read '${v}'`);
  return { ...(namespace !== undefined ? { namespace } : {}), rest, port };
}

const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
function quantity(v: string | undefined, flag: string, fallback: string): string {
  const q = v ?? fallback;
  if (!QUANTITY.test(q)) throw new UsageError(`--${flag} must be a Kubernetes quantity (e.g. 500m, 2, 1Gi), got '${q}'`);
  return q;
}

async function k8s(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      config: { type: 'string' },
      out: { type: 'string' },
      model: { type: 'string', multiple: true },
      replicas: { type: 'string', multiple: true },
      kserve: { type: 'string', multiple: true },
      triton: { type: 'string', multiple: true },
      'instance-arg': { type: 'string', multiple: true },
      image: { type: 'string' },
      'image-pull-policy': { type: 'string' },
      namespace: { type: 'string' },
      name: { type: 'string' },
      gpu: { type: 'string' },
      threads: { type: 'string' },
      cpu: { type: 'string' },
      memory: { type: 'string' },
      'frontend-cpu': { type: 'string' },
      'frontend-memory': { type: 'string' },
      'frontend-replicas': { type: 'string' },
      'service-type': { type: 'string' },
      'cluster-domain': { type: 'string' },
      json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  if (values.config === undefined) throw new UsageError(`--config is required\n\n${usage}`);
  if (values.out === undefined) throw new UsageError(`--out is required\n\n${usage}`);
  const { readFrontendConfig } = await import('../../serve/config.js');
  const { renderK8s, poolsOf, KSERVE_GRPC_PORT, TRITON_GRPC_PORT } = await import('../../deploy/k8s.js');
  const { writeManifests } = await import('../../deploy/yaml.js');
  const { readCheckpointMetadata } = await import('../../serve/served-model.js');
  const { packageRoot } = await import('../../util/package-root.js');
  const config = readFrontendConfig(values.config);
  const pools = poolsOf(config);

  const models = Object.fromEntries(byPool(values.model, 'model'));
  const replicas: Record<string, number> = {};
  for (const [k, v] of byPool(values.replicas, 'replicas')) replicas[k] = intOption(v, `replicas ${k}`, 1, { min: 0 });
  const instanceArgs: Record<string, string[]> = {};
  for (const [k, v] of byPool(values['instance-arg'], 'instance-arg')) (instanceArgs[k] ??= []).push(v);
  const external: Record<string, import('../../deploy/k8s.js').ExternalPool> = {};
  for (const [k, v] of byPool(values.kserve, 'kserve')) {
    const e = splitExternal(v, 'kserve', KSERVE_GRPC_PORT);
    external[k] = {
      kind: 'kserve',
      ...(e.namespace !== undefined ? { namespace: e.namespace } : {}),
      selector: { 'serving.kserve.io/inferenceservice': e.rest },
      port: e.port,
    };
  }
  for (const [k, v] of byPool(values.triton, 'triton')) {
    const e = splitExternal(v, 'triton', TRITON_GRPC_PORT);
    const selector: Record<string, string> = {};
    for (const pair of e.rest.split(',')) {
      const m = /^([A-Za-z0-9./_-]+)=([A-Za-z0-9._-]*)$/.exec(pair);
      if (m === null) throw new UsageError(`--triton ${k}=...: '${pair}' is not LABEL=VALUE`);
      selector[m[1]] = m[2];
    }
    external[k] = { kind: 'triton', ...(e.namespace !== undefined ? { namespace: e.namespace } : {}), selector, port: e.port };
  }
  for (const k of Object.keys(external))
    if (models[k] !== undefined) throw new UsageError(`pool ${k} has both --model and --kserve/--triton: choose one`);

  // parity pools: --parity-index when the checkpoint is a parity-code checkpoint
  const parityIndex: Record<string, boolean> = {};
  const notes: string[] = [];
  for (const p of pools) {
    const spec = models[p.key];
    if (p.parityIndex === undefined || spec === undefined) continue;
    if (/^(noop|linear|random):/.test(spec)) {
      parityIndex[p.key] = false;
      continue;
    }
    // the path in the image is relative to the package (its WORKDIR): look here and in this package
    const local = [spec, ...(isAbsolute(spec) ? [] : [join(packageRoot(), spec)])].find((f) => existsSync(f));
    if (local === undefined) {
      parityIndex[p.key] = true;
      notes.push(`${p.key}: ${spec} is not here to read; assumed a parity-code checkpoint (--parity-index ${p.parityIndex})`);
      continue;
    }
    const meta = readCheckpointMetadata(local) as { parity?: unknown };
    parityIndex[p.key] = meta.parity !== undefined;
  }

  const gpus = intOption(values.gpu, 'gpu', 0, { min: 0 });
  let rendered;
  try {
    rendered = renderK8s({
      config,
      image: values.image ?? 'coded-inference:0.1.0',
      imagePullPolicy: choiceOption(
        values['image-pull-policy'],
        'image-pull-policy',
        ['Always', 'IfNotPresent', 'Never'] as const,
        'IfNotPresent',
      ),
      namespace: values.namespace ?? 'default',
      ...(values.name !== undefined ? { prefix: values.name } : {}),
      clusterDomain: values['cluster-domain'] ?? 'cluster.local',
      models,
      replicas,
      external,
      instanceArgs,
      parityIndex,
      gpus,
      threads: intOption(values.threads, 'threads', 1),
      instanceResources: { cpu: quantity(values.cpu, 'cpu', '1'), memory: quantity(values.memory, 'memory', '1Gi') },
      frontendResources: {
        cpu: quantity(values['frontend-cpu'], 'frontend-cpu', '1'),
        memory: quantity(values['frontend-memory'], 'frontend-memory', '512Mi'),
      },
      frontendReplicas: intOption(values['frontend-replicas'], 'frontend-replicas', 1),
      serviceType: choiceOption(values['service-type'], 'service-type', ['ClusterIP', 'NodePort', 'LoadBalancer'] as const, 'ClusterIP'),
    });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  mkdirSync(values.out, { recursive: true });
  const written = writeManifests(values.out, rendered.files);
  const summary = { out: values.out, files: written, pools: rendered.entries, notes };
  if (values.json) return void console.log(JSON.stringify(summary, null, 2));
  for (const n of notes) console.log(`note: ${n}`);
  console.log(`wrote ${written.length} files to ${values.out}: ${written.join(', ')}`);
  for (const [k, e] of Object.entries(rendered.entries)) console.log(`  pool ${k}: ${e}`);
  console.log(`apply with: kubectl apply -k ${values.out}`);
}
