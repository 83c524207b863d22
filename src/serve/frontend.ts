// The coded-serving frontend: V2 REST, V2 gRPC and Clipper-style POST /{app}/predict in
// front of instance pools, with Prometheus metrics. Each sample of a request is one query;
// what happens to a query (coding groups, deadlines, reconstruction, the fallback, hedged
// requests, the SLO) is decided by the serving policy in ./policy.ts, on the system clock and
// V2 gRPC instances here, and on a virtual clock with simulated instances in the tests and the
// planner (src/plan). Every accepted query is answered exactly once; the pending-query bound
// and the pool queue bounds give 429 / RESOURCE_EXHAUSTED beyond them.
import Fastify, { type FastifyInstance } from 'fastify';
import type * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import '../codes/index.js';
import { codeFromConfig } from '../codes/registry.js';
import { loadCodeCheckpoint } from '../codes/checkpoint.js';
import type { Code, CodeConfig } from '../codes/code.js';
import { setNumThreads } from '../engine/runtime.js';
import { policySettings, type FrontendConfig, type PolicySettings } from './config.js';
import { Pool } from './pool.js';
import { Discovery } from './discovery.js';
import { FrontendMetrics } from './frontend-metrics.js';
import { V2GrpcClient } from './client.js';
import { systemClock, type Clock } from './clock.js';
import { instanceConnector, type InstanceClient } from './instance-client.js';
import { V2RestClient } from './rest-client.js';
import { tensorCodec } from './group-codec.js';
import { ServingPolicy, type QueryResult, type PolicyCounts } from './policy.js';
import type { AdmissionOptions } from './admission.js';
import {
  ServeError,
  badRequest,
  DEFAULT_LIMITS,
  type V2Limits,
  type InferRequest,
  type InferResponse,
  type ModelMeta,
  type ParamValue,
  type V2Model,
} from './v2/types.js';
import { checkJsonBounds, firstNonFinite, messageLimits } from './v2/dataplane.js';
import { v2Rest, v2FastifyOptions, sendError } from './v2/rest.js';
import { startV2Grpc, stopGrpc, fromGrpcParams } from './v2/grpc.js';

export type { QueryResult } from './policy.js';

export interface FrontendOptions {
  config: FrontendConfig;
  logger?: Logger;
  /** how long start() waits for a base instance to answer metadata (default 30 s) */
  startTimeoutMs?: number;
  /** tests: instances other than V2 gRPC, another clock */
  connect?: (address: string) => InstanceClient;
  clock?: Clock;
}

export class Frontend implements V2Model {
  meta!: ModelMeta;
  readonly mode: FrontendConfig['mode'];
  readonly code: Code | null;
  private readonly pools = new Map<string, Pool>();
  private readonly log: Logger;
  private http: FastifyInstance | null = null;
  private grpcServer: grpc.Server | null = null;
  httpPort = -1;
  grpcPort = -1;
  private policy: ServingPolicy | null = null;
  private closing = false;
  private queryCounter = 0;
  readonly sloMs: number;
  readonly decodeDeadlineMs: number;
  private defaultOutput: Float32Array | null = null;
  /** resolves dns:/// instance entries, before start and every discovery.intervalMs */
  readonly discovery: Discovery;
  /** bounds on one request's work */
  readonly limits: V2Limits;
  /** admission control's settings (null: off) */
  readonly admission: AdmissionOptions | null;

  /** the serving policy's settings from the config (./config.ts policySettings) */
  readonly settings: PolicySettings;
  /** Prometheus metrics (./frontend-metrics.ts), served at /metrics */
  readonly metrics: FrontendMetrics;

  constructor(private readonly o: FrontendOptions) {
    const c = o.config;
    this.mode = c.mode;
    this.log = o.logger ?? pino({ level: c.logLevel ?? 'info' });
    this.settings = policySettings(c);
    this.sloMs = this.settings.sloMs;
    if (c.mode === 'replication') this.code = codeFromConfig({ family: 'replication', k: 1, r: 1 });
    else if (c.mode === 'coded') {
      if (c.codeCheckpoint !== undefined) {
        // the code alone: no base model, parity tensors (if any) freed with the other extras
        this.code = loadCodeCheckpoint(c.codeCheckpoint, { base: false, parity: 'none' }).code;
      } else this.code = codeFromConfig(c.code as CodeConfig);
    } else this.code = null;
    // encode/decode are tiny tensor ops on the event loop: one libtorch thread avoids
    // intra-op thread pools spinning against the instances for the CPU
    if (this.code !== null) setNumThreads(1);
    this.decodeDeadlineMs = this.settings.decodeDeadlineMs;
    this.limits = { ...DEFAULT_LIMITS, ...c.limits };
    this.admission = this.settings.admission;

    const self = this;
    this.metrics = new FrontendMetrics({ pools: () => self.pools, pending: () => self.pendingQueries });
    this.discovery = new Discovery({
      intervalMs: c.discovery?.intervalMs ?? 5000,
      ...(c.discovery?.servers !== undefined ? { servers: c.discovery.servers } : {}),
      ...(c.discovery?.timeoutMs !== undefined ? { timeoutMs: c.discovery.timeoutMs } : {}),
      clock: o.clock ?? systemClock,
      log: this.log,
      events: this.metrics.discovery,
    });
  }

  /** The metrics' registry (prom-client). */
  get registry() {
    return this.metrics.registry;
  }

  static async start(o: FrontendOptions): Promise<Frontend> {
    const f = new Frontend(o);
    try {
      await f.listen();
    } catch (e) {
      await f.close();
      throw e;
    }
    return f;
  }

  private makePool(name: string, p: { model: string; instances: string[]; protocol?: 'grpc' | 'rest' }, inputName: string): Pool {
    const c = this.o.config;
    // DNS entries: the pool starts empty and discovery fills it (see listen)
    const pool = new Pool({
      name,
      model: p.model,
      addresses: p.instances.filter((e) => !e.startsWith('dns:')),
      inputName,
      policy: c.dispatch ?? 'single-queue',
      concurrency: c.instanceConcurrency ?? 1,
      maxQueue: c.maxPoolQueue ?? 8192,
      healthIntervalMs: c.health?.intervalMs ?? 250,
      healthTimeoutMs: c.health?.timeoutMs ?? 250,
      healthFailures: c.health?.failures ?? 2,
      log: this.log,
      connect: this.o.connect ?? instanceConnector(p.protocol ?? 'grpc'),
      ...(this.o.clock !== undefined ? { clock: this.o.clock } : {}),
      onRequest: (pool) => this.metrics.request(pool),
      ...(this.admission !== null ? { serviceClipMs: this.admission.maxPredictedLatencyMs, serviceMaxAgeMs: 5000 } : {}),
    });
    this.discovery.watch(pool, p.instances);
    return pool;
  }

  /** Learn the served shapes from a base instance (retrying until one answers). */
  private async learnMeta(): Promise<ModelMeta> {
    const c = this.o.config;
    const deadline = Date.now() + (this.o.startTimeoutMs ?? 30_000);
    let last = '';
    while (Date.now() < deadline && !this.closing) {
      let addrs: string[] = [];
      try {
        addrs = await this.discovery.resolve(c.pools.base.instances);
        if (addrs.length === 0) last = `${c.pools.base.instances.join(', ')}: no instances found`;
      } catch (e) {
        last = (e as Error).message;
      }
      for (const addr of addrs) {
        try {
          const m = await remoteMetadata(addr, c.pools.base.model, c.pools.base.protocol ?? 'grpc');
          const params = m.parameters;
          const inp = m.inputs[0];
          const out = m.outputs[0];
          if (inp === undefined || out === undefined) throw new Error('metadata without inputs/outputs');
          return {
            name: c.name,
            platform: `coded-frontend(${this.mode}${this.code ? `, ${this.code.name}` : ''})`,
            versions: ['1'],
            input: { name: inp.name, datatype: 'FP32', shape: inp.shape.slice(1).map(Number) },
            output: { name: out.name, datatype: 'FP32', shape: out.shape.slice(1).map(Number) },
            maxBatch: c.maxBatch ?? 64,
            // the base instance's preprocessing (what clients send) passes through
            ...(params?.preprocessing === undefined ? {} : { parameters: { preprocessing: params.preprocessing } }),
          };
        } catch (e) {
          last = `${addr}: ${(e as Error).message}`;
        }
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`no base instance answered ModelMetadata for '${c.pools.base.model}' (last error: ${last})`);
  }

  private async listen(): Promise<void> {
    const c = this.o.config;
    this.meta = await this.learnMeta();
    const inputName = this.meta.input.name;
    this.pools.set('base', this.makePool('base', c.pools.base, inputName));
    (c.pools.parity ?? []).forEach((p, j) => this.pools.set(`parity:${j}`, this.makePool(`parity:${j}`, p, inputName)));
    for (const [name, list] of Object.entries(c.pools.workers ?? {}))
      list.forEach((p, j) => this.pools.set(`worker:${name}:${j}`, this.makePool(`worker:${name}:${j}`, p, inputName)));
    const outSize = this.meta.output.shape.reduce((a, b) => a * b, 1);
    if (c.defaultOutput !== undefined && c.defaultOutput.length !== outSize)
      throw new Error(`defaultOutput has ${c.defaultOutput.length} values; the model returns ${outSize}`);
    this.defaultOutput = c.defaultOutput ? Float32Array.from(c.defaultOutput) : new Float32Array(outSize);
    const mode = this.mode;
    const codeName = this.code?.name ?? '';
    this.policy = new ServingPolicy({
      ...this.settings,
      clock: this.o.clock ?? systemClock,
      log: this.log,
      pools: this.pools,
      // the policy checks that every coded query has a pool
      codec: this.code === null ? null : tensorCodec(this.code, this.meta.input.shape, this.meta.output.shape),
      inputShape: this.meta.input.shape,
      defaultOutput: this.defaultOutput,
      events: { ...this.metrics.policyEvents(mode, codeName), slowQuery: (story) => this.log.warn({ slowQuery: story }, 'slow query') },
    });
    await this.discovery.refresh();
    await Promise.all([...this.pools.values()].map((p) => p.startHealth()));
    this.discovery.start();

    const host = c.host ?? '127.0.0.1';
    // request size limits follow the model's largest legal request (unless maxBodyBytes says otherwise)
    const sizes = messageLimits(this.meta, this.limits);
    const bodyLimit = c.maxBodyBytes ?? sizes.maxBodyBytes;
    if (c.httpPort !== undefined) {
      const app = Fastify(v2FastifyOptions(bodyLimit, this.limits));
      await app.register(v2Rest, { model: this, bodyLimit, limits: this.limits, limitConfigured: c.maxBodyBytes !== undefined });
      app.get('/metrics', async (_req, reply) => reply.type(this.registry.contentType).send(await this.registry.metrics()));
      app.post<{ Params: { app: string } }>('/:app/predict', async (req, reply) => {
        try {
          return await this.clipperPredict(req.params.app, req.body);
        } catch (e) {
          return sendError(reply, e);
        }
      });
      await app.listen({ host, port: c.httpPort });
      const addr = app.server.address();
      this.httpPort = typeof addr === 'object' && addr !== null ? addr.port : -1;
      this.http = app;
    }
    if (c.grpcPort !== undefined) {
      const g = await startV2Grpc(
        this,
        host,
        c.grpcPort,
        c.maxBodyBytes ?? sizes.maxMessageBytes,
        this.limits,
        c.maxBodyBytes !== undefined,
      );
      this.grpcServer = g.server;
      this.grpcPort = g.port;
    }
    this.log.info(
      {
        name: c.name,
        mode: this.mode,
        code: this.code?.name,
        http: this.httpPort,
        grpc: this.grpcPort,
        sloMs: this.sloMs,
        decodeDeadlineMs: this.decodeDeadlineMs,
        pools: Object.fromEntries([...this.pools].map(([k, p]) => [k, p.addresses])),
      },
      'frontend ready',
    );
  }

  private inputSize(): number {
    return this.meta.input.shape.reduce((a, b) => a * b, 1);
  }

  live(): boolean {
    return !this.closing;
  }
  ready(): boolean {
    if (this.closing) return false;
    const base = this.pools.get('base');
    return base !== undefined && base.healthyCount > 0;
  }

  // -------------------------------------------------------------------------
  // requests

  async infer(req: InferRequest): Promise<InferResponse> {
    const x = req.inputs[0];
    const batch = x.shape[0];
    const per = this.inputSize();
    const samples = Array.from({ length: batch }, (_, b) => x.data.subarray(b * per, (b + 1) * per));
    const results = await Promise.all(this.submit(samples));
    const outSize = this.defaultOutput!.length;
    const out = new Float32Array(batch * outSize);
    results.forEach((r, b) => out.set(r.data, b * outSize));
    const rec = results.map((r) => r.reconstructed);
    const def = results.map((r) => r.defaulted);
    const copy = results.map((r) => r.hedged);
    const parameters: Record<string, ParamValue> = { reconstructed: rec.some(Boolean), default: def.some(Boolean), mode: this.mode };
    if (rec.some(Boolean)) parameters.code = this.code!.name;
    // answered by a hedged or fallback copy of the query (an original answer, computed twice)
    if (copy.some(Boolean)) parameters.copy = true;
    if (batch > 1) {
      parameters.reconstructed_samples = rec.map((v) => (v ? '1' : '0')).join('');
      parameters.default_samples = def.map((v) => (v ? '1' : '0')).join('');
      if (copy.some(Boolean)) parameters.copy_samples = copy.map((v) => (v ? '1' : '0')).join('');
    }
    return { id: req.id, outputs: [{ name: this.meta.output.name, shape: [batch, ...this.meta.output.shape], data: out }], parameters };
  }

  /** Clipper-style predict: {"input": [...]} (one query) or {"input_batch": [[...], ...]}. */
  private async clipperPredict(app: string, body: unknown): Promise<Record<string, unknown>> {
    const want = this.o.config.app ?? this.o.config.name;
    if (app !== want) throw new ServeError('not-found', `unknown application '${app}' (this frontend serves '${want}')`);
    if (!Buffer.isBuffer(body)) throw badRequest('request body is empty');
    const per0 = this.inputSize();
    checkJsonBounds(body, 0, body.length, this.limits.maxJsonDepth, Math.min(this.limits.maxJsonElements, this.meta.maxBatch * per0 + 64));
    let doc: { input?: unknown; input_batch?: unknown };
    try {
      doc = JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw badRequest(`request body is not valid JSON: ${(e as Error).message}`);
    }
    if (typeof doc !== 'object' || doc === null) throw badRequest('body must be {"input": [...]} or {"input_batch": [[...], ...]}');
    const per = this.inputSize();
    const toSample = (v: unknown): Float32Array => {
      if (!Array.isArray(v) || !v.every((n) => typeof n === 'number')) throw badRequest('each input must be a flat array of numbers');
      if (v.length !== per)
        throw badRequest(`each input needs ${per} numbers (shape [${this.meta.input.shape.join(', ')}]), got ${v.length}`);
      const x = Float32Array.from(v as number[]);
      const bad = firstNonFinite(x);
      if (bad >= 0) throw badRequest(`input holds ${x[bad]} at index ${bad}: inputs must be finite FP32 numbers`);
      return x;
    };
    const batched = doc.input_batch !== undefined;
    const raw = batched ? doc.input_batch : doc.input;
    if (raw === undefined) throw badRequest('body must be {"input": [...]} or {"input_batch": [[...], ...]}');
    if (batched && (!Array.isArray(raw) || raw.length === 0 || raw.length > this.meta.maxBatch))
      throw badRequest(`input_batch must hold 1..${this.meta.maxBatch} inputs`);
    const samples = batched ? (raw as unknown[]).map(toSample) : [toSample(raw)];
    const qid = this.queryCounter;
    const results = await Promise.all(this.submit(samples));
    const one = (r: QueryResult) => ({
      output: Array.from(r.data),
      default: r.defaulted,
      reconstructed: r.reconstructed,
      ...(r.reconstructed ? { code: this.code!.name } : {}),
    });
    return batched ? { query_id: qid, batch_predictions: results.map(one) } : { query_id: qid, ...one(results[0]) };
  }

  /** Accept queries (all or none: 429 when over a bound) and return one promise per query. */
  submit(samples: Float32Array[]): Promise<QueryResult>[] {
    if (this.closing || this.policy === null) throw new ServeError('unavailable', 'frontend is shutting down');
    const settle: { resolve: (r: QueryResult) => void; reject: (e: Error) => void }[] = [];
    const promises = samples.map(() => new Promise<QueryResult>((resolve, reject) => settle.push({ resolve, reject })));
    this.policy.submit(samples, (i, r) => (r instanceof Error ? settle[i].reject(r) : settle[i].resolve(r)));
    this.queryCounter += samples.length;
    return promises;
  }

  /** Counts by outcome (and copies, tasks), for tests and reports. */
  get counts(): PolicyCounts {
    return (
      this.policy?.counts ?? {
        original: 0,
        reconstructed: 0,
        default: 0,
        error: 0,
        rejected: 0,
        hedgedAnswers: 0,
        copies: 0,
        copiesDenied: 0,
        tasks: 0,
      }
    );
  }

  /** Pool statistics for reports. */
  poolStats(): Record<string, { healthy: number; queued: number; inflight: number; served: number[] }> {
    return Object.fromEntries(
      [...this.pools].map(([k, p]) => [
        k,
        { healthy: p.healthyCount, queued: p.queued, inflight: p.inflight, served: p.instances.map((i) => i.served) },
      ]),
    );
  }

  get pendingQueries(): number {
    return this.policy?.pending ?? 0;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const tasks: Promise<unknown>[] = [];
    if (this.http !== null) tasks.push(this.http.close());
    if (this.grpcServer !== null) tasks.push(stopGrpc(this.grpcServer));
    // answer whatever is still open: exactly one response each
    this.policy?.close();
    this.discovery.close();
    for (const p of this.pools.values()) p.close();
    await Promise.all(tasks);
  }
}

/** A base instance's model metadata over the pool's protocol, its parameters as plain values (gRPC's unwrapped). */
async function remoteMetadata(address: string, model: string, protocol: 'grpc' | 'rest') {
  if (protocol === 'rest') {
    const c = new V2RestClient(address);
    try {
      return await c.modelMetadata(model, 1000);
    } finally {
      c.close();
    }
  }
  const c = new V2GrpcClient(address);
  try {
    const m = await c.modelMetadata(model, 1000);
    return { ...m, parameters: m.parameters === undefined ? undefined : fromGrpcParams(m.parameters) };
  } finally {
    c.close();
  }
}
