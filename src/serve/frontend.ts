// The coded-serving frontend. Queries arrive over V2 REST, V2 gRPC or Clipper-style
// POST /{app}/predict; each sample of a request is one query. Modes:
//   none / equal-resources  every query goes to the base pool once (equal-resources is the
//                           same machinery with the extra instances listed as base replicas);
//   replication             the replication code (k = 1, r = 1): two copies, first one wins;
//   coded                   any code from src/codes (the same implementation training and
//                           evaluation use): groups of k queries are encoded with code.encode,
//                           each coded query goes to the pool its WorkerFunction names, and
//                           code.decode reconstructs outputs that are late or lost.
//
// Coding groups: queries join the open group in arrival order; a group is closed when it has
// k queries, or maxWaitMs after its first query arrived. With systematic codes each original
// is dispatched to the base pool the moment it arrives; only the parity queries wait for the
// group to close (then it is encoded). A group closed early is padded by
// repeating its own queries (X_1, X_2, X_1, ...): the padding copies are computed like any
// other query and their outputs are discarded, so a partial group is protected exactly like a
// full one (at the cost of the padding's base-model work) and no output is ever guessed.
// With parityDelayMs the padding copies are redundancy too: they go out with the delayed
// parity queries, and only if an original is still missing (otherwise a partial group would
// double the base pool's load, and with it the base instances' exposure to stragglers).
//
// Deadlines, per query, measured from its arrival: after decodeDeadlineMs its original output
// is "late", and as soon as the code can decode from what has arrived (or at once if an
// instance failed the query) the reconstruction is returned, marked reconstructed: true with
// the code's name; if the original arrives first it wins. At sloMs a query with neither gets
// the default output (marked default: true) or an error, as configured. Every accepted query
// is answered exactly once; the pending-query bound and the pool queue bounds give 429 /
// RESOURCE_EXHAUSTED beyond them.
import Fastify, { type FastifyInstance } from 'fastify';
import type * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { Registry, Histogram, Counter, Gauge } from 'prom-client';
import '../codes/index.js';
import { codeFromConfig, loadCode } from '../codes/registry.js';
import type { Code, CodeConfig, WorkerFunction } from '../codes/code.js';
import { workerSignatures, type WorkerSignature } from '../codes/worker-signature.js';
import { tensor } from '../engine/tensor.js';
import { tidy } from '../engine/scope.js';
import { setNumThreads } from '../engine/runtime.js';
import type { FrontendConfig } from './config.js';
import { Pool, type Task } from './pool.js';
import { V2GrpcClient } from './client.js';
import {
  ServeError, badRequest, httpStatusOf, mountV2Rest, startV2Grpc, stopGrpc,
  type InferRequest, type InferResponse, type ModelMeta, type ParamValue, type V2Model,
} from './v2.js';

export interface QueryResult {
  data: Float32Array;
  reconstructed: boolean;
  defaulted: boolean;
}

interface Query {
  data: Float32Array;
  arrival: number;
  answered: boolean;
  /** set once answered */
  result: QueryResult | null;
  settle: (r: QueryResult | Error) => void;
  sloTimer: NodeJS.Timeout | null;
  group: Group | null;
}

interface Group {
  queries: Query[];
  /** for each of the k slots, the query it carries (padding repeats queries) */
  slotQuery: Query[];
  outputs: (Float32Array | null)[];
  failed: boolean[];
  tasks: (Task | null)[];
  deadline: number;
  timer: NodeJS.Timeout | null;
  /** the coded queries were encoded and sent (or found unnecessary) */
  paritySent: boolean;
  /** padding slots [from, k) not dispatched yet (hedged: they go out with the parity) */
  paddingFrom: number | null;
  parityTimer: NodeJS.Timeout | null;
  closed: boolean;
}

const poolKey = (fn: WorkerFunction) => (fn.kind === 'base' ? 'base' : fn.kind === 'parity' ? `parity:${fn.index}` : `worker:${fn.name}:${fn.index}`);

export interface FrontendOptions {
  config: FrontendConfig;
  logger?: Logger;
  /** how long start() waits for a base instance to answer metadata (default 30 s) */
  startTimeoutMs?: number;
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
  private openGroup: Group | null = null;
  /** accepted and unanswered queries */
  private readonly live_ = new Set<Query>();
  private openTimer: NodeJS.Timeout | null = null;
  private pending = 0;
  private closing = false;
  private queryCounter = 0;
  readonly sloMs: number;
  readonly decodeDeadlineMs: number;
  private readonly c: Required<Pick<FrontendConfig, 'maxWaitMs' | 'onMiss' | 'maxPendingQueries' | 'maxAttempts' | 'parityDelayMs'>>;
  private defaultOutput: Float32Array | null = null;
  /** the code's family-specific workers (names of their side inputs) */
  private readonly signatures: WorkerSignature[];

  readonly registry = new Registry();
  private readonly mLatency: Histogram<'mode' | 'outcome'>;
  private readonly mOutcomes: Counter<'mode' | 'outcome' | 'code'>;
  private readonly mRejected: Counter<'mode' | 'reason'>;
  private readonly mEncode: Histogram<'code'>;
  private readonly mDecode: Histogram<'code'>;
  private readonly mTaskFailures: Counter<'pool'>;
  private readonly mParitySkipped: Counter<'code'>;
  /** counts by outcome, for tests and reports */
  readonly counts = { original: 0, reconstructed: 0, default: 0, error: 0, rejected: 0 };

  constructor(private readonly o: FrontendOptions) {
    const c = o.config;
    this.mode = c.mode;
    this.log = o.logger ?? pino({ level: c.logLevel ?? 'info' });
    this.sloMs = c.sloMs ?? 1000;
    this.c = { maxWaitMs: c.maxWaitMs ?? 5, onMiss: c.onMiss ?? 'default', maxPendingQueries: c.maxPendingQueries ?? 4096, maxAttempts: c.maxAttempts ?? 2, parityDelayMs: c.parityDelayMs ?? 0 };
    if (c.mode === 'replication') this.code = codeFromConfig({ family: 'replication', k: 1, r: 1 });
    else if (c.mode === 'coded') {
      if (c.codeCheckpoint !== undefined) {
        const l = loadCode(c.codeCheckpoint);
        for (const t of l.extra.values()) t.dispose();
        this.code = l.code;
      } else this.code = codeFromConfig(c.code as CodeConfig);
    } else this.code = null;
    this.signatures = this.code === null ? [] : workerSignatures(this.code.config() as { family: string } & Record<string, unknown>);
    // encode/decode are tiny tensor ops on the event loop: one libtorch thread avoids
    // intra-op thread pools spinning against the instances for the CPU
    if (this.code !== null) setNumThreads(1);
    // replication: first copy wins, no waiting for the original
    this.decodeDeadlineMs = c.mode === 'replication' ? 0 : (c.decodeDeadlineMs ?? this.sloMs * 0.02);

    const reg = this.registry;
    const buckets = [0.0002, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5];
    this.mLatency = new Histogram({ name: 'coded_query_latency_seconds', help: 'query latency from arrival to answer', labelNames: ['mode', 'outcome'], buckets, registers: [reg] });
    this.mOutcomes = new Counter({ name: 'coded_queries_total', help: 'answered queries by outcome (original, reconstructed, default, error)', labelNames: ['mode', 'outcome', 'code'], registers: [reg] });
    this.mRejected = new Counter({ name: 'coded_rejected_total', help: 'queries refused (overload) or invalid', labelNames: ['mode', 'reason'], registers: [reg] });
    this.mEncode = new Histogram({ name: 'coded_encode_seconds', help: 'time to encode one coding group', labelNames: ['code'], buckets: [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3], registers: [reg] });
    this.mDecode = new Histogram({ name: 'coded_decode_seconds', help: 'time to decode one coding group', labelNames: ['code'], buckets: [1e-5, 2e-5, 5e-5, 1e-4, 2e-4, 5e-4, 1e-3, 5e-3], registers: [reg] });
    this.mParitySkipped = new Counter({ name: 'coded_parity_skipped_total', help: 'coding groups whose parity queries were not sent: every original answered within parityDelayMs', labelNames: ['code'], registers: [reg] });
    this.mTaskFailures = new Counter({ name: 'coded_task_failures_total', help: 'instance requests that failed', labelNames: ['pool'], registers: [reg] });
    const self = this;
    new Gauge({
      name: 'coded_pool_queue_depth', help: 'tasks waiting per pool', labelNames: ['pool'], registers: [reg],
      collect() {
        for (const [k, p] of self.pools) this.set({ pool: k }, p.queued);
      },
    });
    new Gauge({
      name: 'coded_pool_healthy_instances', help: 'healthy instances per pool', labelNames: ['pool'], registers: [reg],
      collect() {
        for (const [k, p] of self.pools) this.set({ pool: k }, p.healthyCount);
      },
    });
    new Gauge({ name: 'coded_pending_queries', help: 'accepted queries not yet answered', registers: [reg], collect() { this.set(self.pending); } });
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

  private makePool(name: string, p: { model: string; instances: string[] }, inputName: string): Pool {
    const c = this.o.config;
    return new Pool({
      name, model: p.model, addresses: p.instances, inputName,
      policy: c.dispatch ?? 'single-queue',
      concurrency: c.instanceConcurrency ?? 1,
      maxQueue: c.maxPoolQueue ?? 8192,
      healthIntervalMs: c.health?.intervalMs ?? 250,
      healthTimeoutMs: c.health?.timeoutMs ?? 250,
      healthFailures: c.health?.failures ?? 2,
      log: this.log,
    });
  }

  /** Learn the served shapes from a base instance (retrying until one answers). */
  private async learnMeta(): Promise<ModelMeta> {
    const c = this.o.config;
    const deadline = Date.now() + (this.o.startTimeoutMs ?? 30_000);
    let last = '';
    while (Date.now() < deadline && !this.closing) {
      for (const addr of c.pools.base.instances) {
        const cl = new V2GrpcClient(addr);
        try {
          const m = await cl.modelMetadata(c.pools.base.model, 1000);
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
          };
        } catch (e) {
          last = `${addr}: ${(e as Error).message}`;
        } finally {
          cl.close();
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
    for (const [name, list] of Object.entries(c.pools.workers ?? {})) list.forEach((p, j) => this.pools.set(`worker:${name}:${j}`, this.makePool(`worker:${name}:${j}`, p, inputName)));
    if (this.code !== null) {
      // every coded query must have a pool: check with a dummy encode
      const probe = tidy(() => this.code!.encode(tensor(new Float32Array(this.code!.k * this.inputSize()), [1, this.code!.k, ...this.meta.input.shape])).map((q) => poolKey(q.fn)));
      for (const k of probe) if (!this.pools.has(k)) throw new Error(`code ${this.code.name} sends coded queries to pool '${k}', which the config does not define (pools: ${[...this.pools.keys()].join(', ')})`);
    }
    const outSize = this.meta.output.shape.reduce((a, b) => a * b, 1);
    if (c.defaultOutput !== undefined && c.defaultOutput.length !== outSize) throw new Error(`defaultOutput has ${c.defaultOutput.length} values; the model returns ${outSize}`);
    this.defaultOutput = c.defaultOutput ? Float32Array.from(c.defaultOutput) : new Float32Array(outSize);
    await Promise.all([...this.pools.values()].map((p) => p.startHealth()));

    const host = c.host ?? '127.0.0.1';
    const limit = c.maxBodyBytes ?? 16 * 1024 * 1024;
    if (c.httpPort !== undefined) {
      const app = Fastify({ logger: false, bodyLimit: limit, keepAliveTimeout: 60_000 });
      mountV2Rest(app, this, limit);
      app.get('/metrics', async (_req, reply) => reply.type(this.registry.contentType).send(await this.registry.metrics()));
      app.post<{ Params: { app: string } }>('/:app/predict', async (req, reply) => {
        try {
          return await this.clipperPredict(req.params.app, req.body);
        } catch (e) {
          return reply.code(httpStatusOf(e)).send({ error: (e as Error).message });
        }
      });
      await app.listen({ host, port: c.httpPort });
      const addr = app.server.address();
      this.httpPort = typeof addr === 'object' && addr !== null ? addr.port : -1;
      this.http = app;
    }
    if (c.grpcPort !== undefined) {
      const g = await startV2Grpc(this, host, c.grpcPort, limit);
      this.grpcServer = g.server;
      this.grpcPort = g.port;
    }
    this.log.info({ name: c.name, mode: this.mode, code: this.code?.name, http: this.httpPort, grpc: this.grpcPort, sloMs: this.sloMs, decodeDeadlineMs: this.decodeDeadlineMs, pools: Object.fromEntries([...this.pools].map(([k, p]) => [k, p.o.addresses])) }, 'frontend ready');
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
    const parameters: Record<string, ParamValue> = { reconstructed: rec.some(Boolean), default: def.some(Boolean), mode: this.mode };
    if (rec.some(Boolean)) parameters.code = this.code!.name;
    if (batch > 1) {
      parameters.reconstructed_samples = rec.map((v) => (v ? '1' : '0')).join('');
      parameters.default_samples = def.map((v) => (v ? '1' : '0')).join('');
    }
    return { id: req.id, outputs: [{ name: this.meta.output.name, shape: [batch, ...this.meta.output.shape], data: out }], parameters };
  }

  /** Clipper-style predict: {"input": [...]} (one query) or {"input_batch": [[...], ...]}. */
  private async clipperPredict(app: string, body: unknown): Promise<Record<string, unknown>> {
    const want = this.o.config.app ?? this.o.config.name;
    if (app !== want) throw new ServeError('not-found', `unknown application '${app}' (this frontend serves '${want}')`);
    if (!Buffer.isBuffer(body)) throw badRequest('request body is empty');
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
      if (v.length !== per) throw badRequest(`each input needs ${per} numbers (shape [${this.meta.input.shape.join(', ')}]), got ${v.length}`);
      return Float32Array.from(v as number[]);
    };
    const batched = doc.input_batch !== undefined;
    const raw = batched ? doc.input_batch : doc.input;
    if (raw === undefined) throw badRequest('body must be {"input": [...]} or {"input_batch": [[...], ...]}');
    if (batched && (!Array.isArray(raw) || raw.length === 0 || raw.length > this.meta.maxBatch)) throw badRequest(`input_batch must hold 1..${this.meta.maxBatch} inputs`);
    const samples = batched ? (raw as unknown[]).map(toSample) : [toSample(raw)];
    const qid = this.queryCounter;
    const results = await Promise.all(this.submit(samples));
    const one = (r: QueryResult) => ({ output: Array.from(r.data), default: r.defaulted, reconstructed: r.reconstructed, ...(r.reconstructed ? { code: this.code!.name } : {}) });
    return batched ? { query_id: qid, batch_predictions: results.map(one) } : { query_id: qid, ...one(results[0]) };
  }

  /** Accept queries (all or none: 429 when over a bound) and return one promise per query. */
  submit(samples: Float32Array[]): Promise<QueryResult>[] {
    if (this.closing) throw new ServeError('unavailable', 'frontend is shutting down');
    const n = samples.length;
    if (this.pending + n > this.c.maxPendingQueries) {
      this.counts.rejected += n;
      this.mRejected.inc({ mode: this.mode, reason: 'pending' }, n);
      throw new ServeError('overloaded', `overloaded: ${this.pending} queries pending (limit ${this.c.maxPendingQueries}); retry later`);
    }
    const tasksPerQuery = this.code === null ? 1 : Math.ceil(this.code.n / this.code.k) + 1;
    for (const p of this.pools.values()) {
      if (!p.hasRoom(n * tasksPerQuery)) {
        this.counts.rejected += n;
        this.mRejected.inc({ mode: this.mode, reason: 'queue' }, n);
        throw new ServeError('overloaded', `overloaded: pool ${p.o.name} queue is full; retry later`);
      }
    }
    const now = Date.now();
    return samples.map((data) => {
      this.queryCounter++;
      this.pending++;
      return new Promise<QueryResult>((resolve, reject) => {
        const q: Query = {
          data, arrival: now, answered: false, result: null, sloTimer: null, group: null,
          settle: (r) => {
            if (q.answered) return;
            q.answered = true;
            this.pending--;
            this.live_.delete(q);
            if (q.sloTimer !== null) clearTimeout(q.sloTimer);
            const secs = (Date.now() - q.arrival) / 1000;
            if (r instanceof Error) {
              this.counts.error++;
              this.mOutcomes.inc({ mode: this.mode, outcome: 'error', code: '' });
              this.mLatency.observe({ mode: this.mode, outcome: 'error' }, secs);
              reject(r);
              return;
            }
            q.result = r;
            const outcome = r.defaulted ? 'default' : r.reconstructed ? 'reconstructed' : 'original';
            this.counts[outcome]++;
            this.mOutcomes.inc({ mode: this.mode, outcome, code: r.reconstructed ? this.code!.name : '' });
            this.mLatency.observe({ mode: this.mode, outcome }, secs);
            resolve(r);
          },
        };
        this.live_.add(q);
        q.sloTimer = setTimeout(() => this.miss(q), this.sloMs);
        if (this.code === null) this.dispatchUncoded(q);
        else this.enqueueCoded(q);
      });
    });
  }

  private miss(q: Query): void {
    if (q.answered) return;
    if (this.c.onMiss === 'error') q.settle(new ServeError('deadline', `no output within the SLO of ${this.sloMs} ms`));
    else q.settle({ data: this.defaultOutput!.slice(), reconstructed: false, defaulted: true });
    if (q.group !== null) this.cancelIfDone(q.group);
  }

  private taskFor(
    pool: Pool, data: Float32Array, expiresAt: number, done: (out: Float32Array) => void, failed: (e: Error) => void, isNeeded: () => boolean,
    input?: { shape: number[]; side?: Task['side'] },
  ): Task {
    const t: Task = {
      data, shape: input?.shape ?? this.meta.input.shape, expiresAt, attempts: 0, cancelled: false,
      ...(input?.side !== undefined ? { side: input.side } : {}),
      done,
      fail: (e, retryable) => {
        this.mTaskFailures.inc({ pool: pool.o.name });
        if (retryable && t.attempts < this.c.maxAttempts && Date.now() < expiresAt && isNeeded() && !this.closing) {
          try {
            pool.submit(t);
            return;
          } catch {
            // queue full: give up on this task
          }
        }
        failed(e);
      },
    };
    return t;
  }

  private dispatchUncoded(q: Query): void {
    const pool = this.pools.get('base')!;
    const t = this.taskFor(
      pool, q.data, q.arrival + this.sloMs,
      (out) => q.settle({ data: out, reconstructed: false, defaulted: false }),
      // out of attempts: the SLO timer answers the query (default output or error)
      (e) => this.log.debug({ error: e.message }, 'query failed; the SLO timer will answer it'),
      () => !q.answered,
    );
    pool.submit(t);
  }

  // -------------------------------------------------------------------------
  // coding groups

  private enqueueCoded(q: Query): void {
    const code = this.code!;
    let g = this.openGroup;
    if (g === null) {
      g = {
        queries: [], slotQuery: [], outputs: Array(code.n).fill(null), failed: Array(code.n).fill(false), tasks: Array(code.n).fill(null),
        deadline: q.arrival + this.decodeDeadlineMs, timer: null, paritySent: false, paddingFrom: null, parityTimer: null, closed: false,
      };
      this.openGroup = g;
      const group = g;
      this.openTimer = setTimeout(() => this.closeGroup(group), this.c.maxWaitMs);
      const wait = g.deadline - Date.now();
      g.timer = setTimeout(() => this.tryDecode(group), Math.max(0, wait));
    }
    q.group = g;
    g.queries.push(q);
    const slot = g.slotQuery.length;
    g.slotQuery.push(q);
    // systematic codes pass originals through unchanged: dispatch each at once, so only the
    // parity queries wait for the group to fill
    if (code.systematic) this.dispatchSlot(g, slot, 'base', q.data, q.arrival + this.sloMs);
    if (g.queries.length >= code.k) this.closeGroup(g);
  }

  private dispatchSlot(g: Group, i: number, key: string, data: Float32Array, expiresAt: number, input?: { shape: number[]; side?: Task['side'] }): void {
    const pool = this.pools.get(key)!;
    const t = this.taskFor(
      pool, data, expiresAt,
      (out) => this.slotArrived(g, i, out),
      () => {
        g.failed[i] = true;
        this.tryDecode(g);
      },
      () => !g.closed,
      input,
    );
    g.tasks[i] = t;
    try {
      pool.submit(t);
    } catch (e) {
      g.failed[i] = true;
      this.log.warn({ pool: key, error: (e as Error).message }, 'coded query not dispatched');
    }
  }

  private closeGroup(g: Group): void {
    if (this.openGroup !== g) return;
    this.openGroup = null;
    if (this.openTimer !== null) {
      clearTimeout(this.openTimer);
      this.openTimer = null;
    }
    const code = this.code!;
    const real = g.queries.length;
    const delay = this.c.parityDelayMs;
    const hedged = code.systematic && delay > 0;
    // pad a partial group by repeating its own queries; padding copies are computed like any
    // query (hedged: later, with the parity queries, see dispatchPadding)
    for (let i = real; i < code.k; i++) g.slotQuery.push(g.queries[i % real]);
    if (real < code.k && code.systematic) {
      g.paddingFrom = real;
      if (!hedged) this.dispatchPadding(g);
    }
    // encode and send the coded queries after this turn of the event loop, so that the
    // originals just dispatched go out first and encoding never delays them; with
    // parityDelayMs (systematic codes only) after that delay, unless every original is back
    if (hedged) g.parityTimer = setTimeout(() => this.encodeGroup(g), delay);
    else setImmediate(() => this.encodeGroup(g));
  }

  private encodeGroup(g: Group): void {
    if (g.closed || g.paritySent) return;
    if (g.parityTimer !== null) {
      clearTimeout(g.parityTimer);
      g.parityTimer = null;
    }
    const code = this.code!;
    // every original already answered: the parity queries would protect nothing
    if (code.systematic && g.queries.every((q) => q.answered)) return this.cancelIfDone(g);
    g.paritySent = true;
    this.dispatchPadding(g);
    let coded: { key: string; data: Float32Array; shape?: number[]; side?: Task['side'] }[];
    const t0 = process.hrtime.bigint();
    try {
      const per = this.inputSize();
      const x = new Float32Array(code.k * per);
      g.slotQuery.forEach((q, i) => x.set(q.data, i * per));
      coded = tidy(() =>
        code.encode(tensor(x, [1, code.k, ...this.meta.input.shape])).map((cq, i) => {
          if (code.systematic && i < code.k) return { key: 'base', data: new Float32Array(0) }; // already dispatched
          const main = { key: poolKey(cq.fn), data: cq.inputs[0].contiguous().dataFloat32(), shape: cq.inputs[0].shape.slice(1) };
          if (cq.inputs.length === 1) return main;
          // side inputs go by the names the worker instance expects (src/codes/worker-signature.ts)
          const fn = cq.fn;
          const sig = fn.kind === 'worker' ? this.signatures.find((s) => s.name === fn.name && s.index === fn.index) : undefined;
          if (sig === undefined || sig.sideInputs.length !== cq.inputs.length - 1) throw new Error(`${code.name}: coded query ${i} has ${cq.inputs.length - 1} side input(s) that no worker signature names`);
          return { ...main, side: cq.inputs.slice(1).map((t, j) => ({ name: sig.sideInputs[j].name, data: t.contiguous().dataFloat32(), shape: t.shape.slice(1) })) };
        }),
      );
    } catch (e) {
      this.log.error({ error: (e as Error).message }, 'encode failed; the group runs without redundancy');
      if (!code.systematic) {
        g.closed = true;
        for (const q of g.queries) {
          q.group = null;
          this.dispatchUncoded(q);
        }
      }
      return;
    }
    this.mEncode.observe({ code: code.name }, Number(process.hrtime.bigint() - t0) / 1e9);
    const expiresAt = Math.max(...g.queries.map((q) => q.arrival)) + this.sloMs;
    coded.forEach(({ key, data, shape, side }, i) => {
      if (code.systematic && i < code.k) return;
      this.dispatchSlot(g, i, key, data, expiresAt, { shape: shape ?? this.meta.input.shape, side });
    });
    this.tryDecode(g);
  }

  /** Send a partial group's padding copies (systematic codes) if they have not gone out yet. */
  private dispatchPadding(g: Group): void {
    if (g.paddingFrom === null) return;
    const from = g.paddingFrom;
    g.paddingFrom = null;
    for (let i = from; i < this.code!.k; i++) {
      const q = g.slotQuery[i];
      this.dispatchSlot(g, i, 'base', q.data, q.arrival + this.sloMs);
    }
  }

  private slotArrived(g: Group, i: number, out: Float32Array): void {
    if (g.closed) return;
    g.outputs[i] = out;
    const code = this.code!;
    if (code.systematic && i < code.k) {
      const q = g.slotQuery[i];
      if (!q.answered) q.settle({ data: out, reconstructed: false, defaulted: false });
    }
    this.tryDecode(g);
  }

  /** Decode if some query is still unanswered, it is late or failed, and the code can decode. */
  private tryDecode(g: Group): void {
    if (g.closed) return;
    const code = this.code!;
    const unanswered = g.queries.filter((q) => !q.answered);
    if (unanswered.length === 0) return this.cancelIfDone(g);
    const late = Date.now() >= g.deadline;
    const anyFailed = g.slotQuery.some((q, i) => !q.answered && g.failed[i]);
    if (code.systematic && !late && !anyFailed) return;
    // approximate codes (Berrut): decode early only once every output that can still come is in
    if (!code.systematic && code.approximateDecoding === true && !late && g.outputs.some((o, i) => o === null && !g.failed[i])) return;
    // late or failed (an original's instance failed it) before a delayed parity went out: send it
    // now, whatever parityDelayMs says (encodeGroup decodes when it can)
    if (!g.paritySent && this.openGroup !== g) return this.encodeGroup(g);
    const avail = g.outputs.map((o) => o !== null);
    if (!code.canDecode(avail)) return;
    const t0 = process.hrtime.bigint();
    let decoded: { data: Float32Array[]; reconstructed: boolean[] };
    try {
      decoded = tidy(() => {
        const d = code.decode(g.outputs.map((o) => (o === null ? null : tensor(o, [1, ...this.meta.output.shape]))));
        return { data: d.outputs.map((t) => t.contiguous().dataFloat32()), reconstructed: d.reconstructed };
      });
    } catch (e) {
      this.log.error({ error: (e as Error).message, available: avail }, 'decode failed');
      return;
    }
    this.mDecode.observe({ code: code.name }, Number(process.hrtime.bigint() - t0) / 1e9);
    g.slotQuery.forEach((q, i) => {
      if (!q.answered) q.settle({ data: decoded.data[i], reconstructed: decoded.reconstructed[i], defaulted: false });
    });
    this.cancelIfDone(g);
  }

  /** When every query of the group is answered, drop its queued coded queries (best-effort cancellation). */
  private cancelIfDone(g: Group): void {
    if (g.closed || this.openGroup === g || g.queries.some((q) => !q.answered)) return;
    g.closed = true;
    if (g.timer !== null) clearTimeout(g.timer);
    if (g.parityTimer !== null) clearTimeout(g.parityTimer);
    if (!g.paritySent) this.mParitySkipped.inc({ code: this.code!.name });
    for (const t of g.tasks) if (t !== null) t.cancelled = true;
  }

  /** Pool statistics for reports. */
  poolStats(): Record<string, { healthy: number; queued: number; inflight: number; served: number[] }> {
    return Object.fromEntries([...this.pools].map(([k, p]) => [k, { healthy: p.healthyCount, queued: p.queued, inflight: p.inflight, served: p.instances.map((i) => i.served) }]));
  }

  get pendingQueries(): number {
    return this.pending;
  }

  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    if (this.openTimer !== null) clearTimeout(this.openTimer);
    const tasks: Promise<unknown>[] = [];
    if (this.http !== null) tasks.push(this.http.close());
    if (this.grpcServer !== null) tasks.push(stopGrpc(this.grpcServer));
    for (const p of this.pools.values()) p.close();
    // answer whatever is still open: exactly one response each
    for (const q of [...this.live_]) q.settle(new ServeError('unavailable', 'frontend is shutting down'));
    this.openGroup = null;
    await Promise.all(tasks);
  }
}
