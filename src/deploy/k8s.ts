// Kubernetes manifests for a coded frontend and its instance pools, rendered from the same
// frontend config that `coded serve frontend` reads (`coded deploy k8s`). Plain objects here;
// the CLI writes them as YAML.
//
// Per pool (base, parity j, workers NAME i) served by our instances: a Deployment running
// `coded serve instance` (readiness on the V2 model-ready route, liveness on /v2/health/live,
// a startup probe for model loading, CPU / memory / nvidia.com/gpu requests, a preStop pause
// so the frontend drains the pod before it stops) and a headless Service: its DNS name resolves
// to one A record per ready pod, which the frontend's discovery follows (src/serve/discovery.ts).
// A pool may instead be served by existing pods that speak V2 gRPC: a KServe InferenceService's
// predictor pods or Triton pods; then only a headless Service selecting them is rendered.
// The frontend: a ConfigMap with the config rewritten to the Services' DNS names, a Deployment
// (probes on the frontend's own V2 health routes, Prometheus scrape annotations for /metrics)
// and a Service for clients.
import { createHash } from 'node:crypto';
// the Kubernetes API types (1.27, from its OpenAPI document): the objects below are typed with
// them, so a misspelt or misplaced field is a compile error (type-only: nothing at run time)
import type { IDeployment } from 'kubernetes-models/apps/v1/Deployment';
import type { IService } from 'kubernetes-models/v1/Service';
import type { IConfigMap } from 'kubernetes-models/v1/ConfigMap';
import { validateFrontendConfig, type FrontendConfig } from '../serve/config.js';

/** Ports of `coded serve instance` and of the frontend in the pods (the CLI's defaults). */
export const HTTP_PORT = 8000;
export const GRPC_PORT = 8001;
/** KServe model servers' gRPC port (the V2 gRPC endpoint of the predictor container) */
export const KSERVE_GRPC_PORT = 8081;
/** Triton's gRPC port */
export const TRITON_GRPC_PORT = 8001;
/** where the frontend's config is mounted */
export const CONFIG_DIR = '/etc/coded';
export const CONFIG_FILE = 'frontend.json';

/** A pool served by pods that already exist (KServe or Triton): selected by labels. */
export interface ExternalPool {
  kind: 'kserve' | 'triton';
  /** namespace of the pods (the Service goes there); default: the deployment's */
  namespace?: string;
  selector: Record<string, string>;
  /** their V2 gRPC port */
  port: number;
}

export interface K8sOptions {
  config: FrontendConfig;
  /** container image with the `coded` CLI as entrypoint */
  image: string;
  imagePullPolicy?: 'Always' | 'IfNotPresent' | 'Never';
  namespace: string;
  /** resource name prefix (default: the config's name) */
  prefix?: string;
  clusterDomain?: string;
  /** per pool key (base, parity:J, worker:NAME:I): what `coded serve instance --model` serves */
  models: Record<string, string>;
  /** per pool key: instance replicas (default: the number of entries the config lists) */
  replicas?: Record<string, number>;
  /** per pool key: existing KServe / Triton pods instead of our instances */
  external?: Record<string, ExternalPool>;
  /** per pool key: extra `coded serve instance` arguments */
  instanceArgs?: Record<string, string[]>;
  /** per pool key: pass --parity-index J (a parity-code checkpoint; the CLI decides from the checkpoint) */
  parityIndex?: Record<string, boolean>;
  /** GPUs per instance pod (0: CPU) */
  gpus?: number;
  /** libtorch threads per instance (OMP_NUM_THREADS and --threads) */
  threads?: number;
  instanceResources?: { cpu: string; memory: string };
  frontendResources?: { cpu: string; memory: string };
  frontendReplicas?: number;
  serviceType?: 'ClusterIP' | 'NodePort' | 'LoadBalancer';
  /** seconds a terminating instance keeps serving after leaving DNS (covers the frontend's re-resolution) */
  drainSeconds?: number;
}

export type K8sObject = Record<string, unknown> & {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
};

const k8sObject = (o: IDeployment | IService | IConfigMap): K8sObject => o as unknown as K8sObject;

export interface RenderedK8s {
  /** file name -> objects (one YAML document each) */
  files: Map<string, K8sObject[]>;
  /** the frontend config as deployed (in the ConfigMap) */
  config: FrontendConfig;
  /** pool key -> the DNS entry the frontend resolves */
  entries: Record<string, string>;
}

export interface PoolRef {
  key: string;
  /** DNS-label form of the key: base, parity-0, worker-h-1 */
  slug: string;
  model: string;
  /** instances the config lists */
  listed: number;
  parityIndex?: number;
  worker?: { name: string; index: number };
}

/** The pools of a config, by the keys the frontend uses ('base', 'parity:J', 'worker:NAME:I'). */
export function poolsOf(c: FrontendConfig): PoolRef[] {
  const out: PoolRef[] = [{ key: 'base', slug: 'base', model: c.pools.base.model, listed: c.pools.base.instances.length }];
  (c.pools.parity ?? []).forEach((p, j) =>
    out.push({ key: `parity:${j}`, slug: `parity-${j}`, model: p.model, listed: p.instances.length, parityIndex: j }),
  );
  for (const [name, list] of Object.entries(c.pools.workers ?? {})) {
    list.forEach((p, i) =>
      out.push({
        key: `worker:${name}:${i}`,
        slug: `worker-${dnsLabel(name)}-${i}`,
        model: p.model,
        listed: p.instances.length,
        worker: { name, index: i },
      }),
    );
  }
  return out;
}

/** A string as a DNS-1123 label part: lower case, [a-z0-9-], no leading / trailing '-'. */
export function dnsLabel(s: string): string {
  return s
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '');
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

function name(prefix: string, suffix: string): string {
  const n = `${prefix}-${suffix}`;
  if (n.length > 63 || !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(n))
    throw new Error(`resource name '${n}' is not a DNS-1123 label of at most 63 characters: choose a shorter --name`);
  return n;
}

export function renderK8s(o: K8sOptions): RenderedK8s {
  const c = o.config;
  const prefix = dnsLabel(o.prefix ?? c.name);
  if (prefix === '') throw new Error(`cannot make a resource name from '${o.prefix ?? c.name}': give --name`);
  const ns = o.namespace;
  if (!/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/.test(ns) || ns.length > 63) throw new Error(`namespace '${ns}' is not a DNS-1123 label`);
  const domain = o.clusterDomain ?? 'cluster.local';
  const gpus = o.gpus ?? 0;
  const threads = o.threads ?? 1;
  const inst = o.instanceResources ?? { cpu: '1', memory: '1Gi' };
  const feRes = o.frontendResources ?? { cpu: '1', memory: '512Mi' };
  const drain = o.drainSeconds ?? Math.ceil((c.discovery?.intervalMs ?? 5000) / 1000) + 5;
  const pools = poolsOf(c);
  const known = new Set(pools.map((p) => p.key));
  for (const [what, rec] of [
    ['--model', o.models],
    ['--replicas', o.replicas ?? {}],
    ['--kserve/--triton', o.external ?? {}],
    ['--instance-arg', o.instanceArgs ?? {}],
  ] as const) {
    for (const k of Object.keys(rec))
      if (!known.has(k)) throw new Error(`${what} names pool '${k}', which the config does not have (its pools: ${[...known].join(', ')})`);
  }
  const common = {
    'app.kubernetes.io/name': 'coded-inference',
    'app.kubernetes.io/instance': prefix,
    'app.kubernetes.io/managed-by': 'coded-deploy-k8s',
  };
  const files = new Map<string, K8sObject[]>();
  const entries: Record<string, string> = {};
  const meta = (n: string, labels: Record<string, string>, namespace = ns, annotations?: Record<string, string>) => ({
    name: n,
    namespace,
    labels,
    ...(annotations !== undefined ? { annotations } : {}),
  });
  const securityContext = { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] } };
  const podSecurity = { runAsNonRoot: true, runAsUser: 10001, runAsGroup: 10001, seccompProfile: { type: 'RuntimeDefault' as const } };

  for (const p of pools) {
    const svcName = name(prefix, p.slug);
    const ext = o.external?.[p.key];
    if (ext !== undefined) {
      const where = ext.namespace ?? ns;
      const labels = { ...common, 'app.kubernetes.io/component': `${ext.kind}-pool`, 'coded-inference/pool': p.slug };
      for (const [k, v] of Object.entries(ext.selector))
        if (!LABEL_VALUE.test(v) || v.length > 63)
          throw new Error(`pool ${p.key}: selector value '${v}' of '${k}' is not a valid label value`);
      const service: IService = {
        apiVersion: 'v1',
        kind: 'Service',
        metadata: meta(svcName, labels, where),
        spec: {
          clusterIP: 'None',
          selector: ext.selector,
          ports: [{ name: 'grpc', port: ext.port, targetPort: ext.port, protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' }],
        },
      };
      files.set(`pool-${p.slug}.yaml`, [k8sObject(service)]);
      entries[p.key] = `dns:///${svcName}.${where}.svc.${domain}:${ext.port}`;
      continue;
    }
    const spec = o.models[p.key];
    if (spec === undefined)
      throw new Error(
        `pool ${p.key} (model '${p.model}'): say what its instances serve with --model ${p.key}=CHECKPOINT (a path in the image, e.g. models/fashion-mnist-base-mlp.safetensors), or point it at existing pods with --kserve / --triton`,
      );
    const replicas = o.replicas?.[p.key] ?? p.listed;
    const labels = { ...common, 'app.kubernetes.io/component': 'instance', 'coded-inference/pool': p.slug };
    const args = [
      'serve',
      'instance',
      '--model',
      spec,
      '--name',
      p.model,
      ...(p.parityIndex !== undefined && o.parityIndex?.[p.key] === true ? ['--parity-index', String(p.parityIndex)] : []),
      ...(p.worker !== undefined ? ['--worker', `${p.worker.name}[${p.worker.index}]`] : []),
      '--host',
      '0.0.0.0',
      '--port',
      String(HTTP_PORT),
      '--grpc-port',
      String(GRPC_PORT),
      '--device',
      gpus > 0 ? 'cuda' : 'cpu',
      '--threads',
      String(threads),
      '--log-level',
      c.logLevel === 'silent' ? 'warn' : 'info',
      ...(o.instanceArgs?.[p.key] ?? []),
    ];
    const resources = {
      requests: { cpu: inst.cpu, memory: inst.memory, ...(gpus > 0 ? { 'nvidia.com/gpu': String(gpus) } : {}) },
      limits: { memory: inst.memory, ...(gpus > 0 ? { 'nvidia.com/gpu': String(gpus) } : {}) },
    };
    const deployment: IDeployment = {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta(svcName, labels),
      spec: {
        replicas,
        selector: { matchLabels: { 'app.kubernetes.io/instance': prefix, 'coded-inference/pool': p.slug } },
        // never fewer ready instances than asked for while rolling
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
        template: {
          metadata: { labels },
          spec: {
            securityContext: podSecurity,
            terminationGracePeriodSeconds: drain + 30,
            ...(gpus > 0 ? { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] } : {}),
            containers: [
              {
                name: 'instance',
                image: o.image,
                imagePullPolicy: o.imagePullPolicy ?? 'IfNotPresent',
                args,
                env: [{ name: 'OMP_NUM_THREADS', value: String(threads) }],
                ports: [
                  { name: 'http', containerPort: HTTP_PORT, protocol: 'TCP' },
                  { name: 'grpc', containerPort: GRPC_PORT, protocol: 'TCP' },
                ],
                // ready = the model is loaded and served (the frontend health-checks the same)
                readinessProbe: {
                  httpGet: { path: `/v2/models/${encodeURIComponent(p.model)}/ready`, port: 'http' },
                  periodSeconds: 5,
                  timeoutSeconds: 2,
                  failureThreshold: 2,
                },
                livenessProbe: {
                  httpGet: { path: '/v2/health/live', port: 'http' },
                  periodSeconds: 10,
                  timeoutSeconds: 5,
                  failureThreshold: 3,
                },
                // model loading (and CUDA start-up) may take a while: liveness waits for it
                startupProbe: {
                  httpGet: { path: '/v2/health/ready', port: 'http' },
                  periodSeconds: 5,
                  timeoutSeconds: 2,
                  failureThreshold: 60,
                },
                // a terminating pod leaves DNS at once; it keeps serving while the frontend drains it
                lifecycle: { preStop: { exec: { command: ['sleep', String(drain)] } } },
                resources,
                securityContext,
              },
            ],
          },
        },
      },
    };
    const service: IService = {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: meta(svcName, labels),
      spec: {
        // headless: the name resolves to one A record per ready pod
        clusterIP: 'None',
        publishNotReadyAddresses: false,
        selector: { 'app.kubernetes.io/instance': prefix, 'coded-inference/pool': p.slug },
        ports: [
          { name: 'grpc', port: GRPC_PORT, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' },
          { name: 'http', port: HTTP_PORT, targetPort: 'http', protocol: 'TCP' },
        ],
      },
    };
    files.set(`pool-${p.slug}.yaml`, [k8sObject(deployment), k8sObject(service)]);
    entries[p.key] = `dns:///${svcName}.${ns}.svc.${domain}:${GRPC_PORT}`;
  }

  // the frontend's config: the pools' DNS names, listening on all addresses at the usual ports
  const rewritten = structuredClone(c) as FrontendConfig;
  rewritten.host = '0.0.0.0';
  rewritten.httpPort = HTTP_PORT;
  rewritten.grpcPort = GRPC_PORT;
  rewritten.discovery = {
    intervalMs: c.discovery?.intervalMs ?? 5000,
    ...(c.discovery?.timeoutMs !== undefined ? { timeoutMs: c.discovery.timeoutMs } : {}),
    ...(c.discovery?.servers !== undefined ? { servers: c.discovery.servers } : {}),
  };
  rewritten.pools.base = { ...c.pools.base, instances: [entries.base] };
  if (c.pools.parity !== undefined) rewritten.pools.parity = c.pools.parity.map((p, j) => ({ ...p, instances: [entries[`parity:${j}`]] }));
  if (c.pools.workers !== undefined)
    rewritten.pools.workers = Object.fromEntries(
      Object.entries(c.pools.workers).map(([n, list]) => [n, list.map((p, i) => ({ ...p, instances: [entries[`worker:${n}:${i}`]] }))]),
    );
  const config = validateFrontendConfig(rewritten, 'the rewritten frontend config');
  const json = `${JSON.stringify(config, null, 2)}\n`;

  const feName = name(prefix, 'frontend');
  const feLabels = { ...common, 'app.kubernetes.io/component': 'frontend' };
  const feSelector = { 'app.kubernetes.io/instance': prefix, 'app.kubernetes.io/component': 'frontend' };
  const configMap: IConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: meta(feName, feLabels), data: { [CONFIG_FILE]: json } };
  files.set('frontend-config.yaml', [k8sObject(configMap)]);
  const feDeployment: IDeployment = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: meta(feName, feLabels),
    spec: {
      replicas: o.frontendReplicas ?? 1,
      selector: { matchLabels: feSelector },
      strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 0, maxSurge: 1 } },
      template: {
        metadata: {
          labels: feLabels,
          annotations: {
            'prometheus.io/scrape': 'true',
            'prometheus.io/port': String(HTTP_PORT),
            'prometheus.io/path': '/metrics',
            // a changed config rolls the frontend
            'coded-inference/config-sha256': createHash('sha256').update(json).digest('hex'),
          },
        },
        spec: {
          securityContext: podSecurity,
          containers: [
            {
              name: 'frontend',
              image: o.image,
              imagePullPolicy: o.imagePullPolicy ?? 'IfNotPresent',
              args: ['serve', 'frontend', '--config', `${CONFIG_DIR}/${CONFIG_FILE}`],
              env: [{ name: 'OMP_NUM_THREADS', value: '1' }],
              ports: [
                { name: 'http', containerPort: HTTP_PORT, protocol: 'TCP' },
                { name: 'grpc', containerPort: GRPC_PORT, protocol: 'TCP' },
              ],
              // ready = a base instance is healthy
              readinessProbe: {
                httpGet: { path: '/v2/health/ready', port: 'http' },
                periodSeconds: 5,
                timeoutSeconds: 2,
                failureThreshold: 2,
              },
              livenessProbe: {
                httpGet: { path: '/v2/health/live', port: 'http' },
                periodSeconds: 10,
                timeoutSeconds: 5,
                failureThreshold: 3,
              },
              // the frontend waits for a base instance's metadata before it listens
              startupProbe: {
                httpGet: { path: '/v2/health/live', port: 'http' },
                periodSeconds: 5,
                timeoutSeconds: 2,
                failureThreshold: 60,
              },
              resources: { requests: { cpu: feRes.cpu, memory: feRes.memory }, limits: { memory: feRes.memory } },
              securityContext,
              volumeMounts: [{ name: 'config', mountPath: CONFIG_DIR, readOnly: true }],
            },
          ],
          volumes: [{ name: 'config', configMap: { name: feName } }],
        },
      },
    },
  };
  const feService: IService = {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: meta(feName, feLabels),
    spec: {
      type: o.serviceType ?? 'ClusterIP',
      selector: feSelector,
      ports: [
        { name: 'http', port: HTTP_PORT, targetPort: 'http', protocol: 'TCP' },
        { name: 'grpc', port: GRPC_PORT, targetPort: 'grpc', protocol: 'TCP', appProtocol: 'kubernetes.io/h2c' },
      ],
    },
  };
  files.set('frontend.yaml', [k8sObject(feDeployment), k8sObject(feService)]);
  return { files, config, entries };
}

/** The HTTP GET paths of every probe in the manifests (for checks). */
export function probePaths(objects: K8sObject[]): { object: string; container: string; probe: string; path: string }[] {
  const out: { object: string; container: string; probe: string; path: string }[] = [];
  for (const o of objects) {
    const containers =
      (o.spec as { template?: { spec?: { containers?: Record<string, unknown>[] } } } | undefined)?.template?.spec?.containers ?? [];
    for (const ct of containers) {
      for (const probe of ['readinessProbe', 'livenessProbe', 'startupProbe']) {
        const path = (ct[probe] as { httpGet?: { path?: string } } | undefined)?.httpGet?.path;
        if (path !== undefined) out.push({ object: `${o.kind}/${o.metadata.name}`, container: String(ct.name), probe, path });
      }
    }
  }
  return out;
}
