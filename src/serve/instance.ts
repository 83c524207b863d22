// A model instance: one model behind the Open Inference Protocol (REST + gRPC), forward
// passes on a worker thread (AsyncForward) so the event loop keeps answering health checks
// and rejecting bad requests while the model computes; fault injection for experiments.
import Fastify, { type FastifyInstance } from 'fastify';
import type * as grpc from '@grpc/grpc-js';
import { pino, type Logger } from 'pino';
import { performance } from 'node:perf_hooks';
import { FaultInjector, NO_FAULTS, type FaultSpec } from './faults.js';
import type { ServedModel } from './served-model.js';
import { preprocessingParameter } from '../data/preprocessing.js';
import {
  ServeError,
  DEFAULT_LIMITS,
  type V2Limits,
  type InferRequest,
  type InferResponse,
  type ModelMeta,
  type V2Model,
} from './v2/types.js';
import { v2Rest, v2FastifyOptions } from './v2/rest.js';
import { messageLimits } from './v2/dataplane.js';
import { startV2Grpc, stopGrpc } from './v2/grpc.js';

export interface InstanceOptions {
  model: ServedModel;
  host?: string;
  /** REST port (0 = any free port, null = no REST) */
  httpPort?: number | null;
  /** gRPC port (0 = any free port, null = no gRPC) */
  grpcPort?: number | null;
  device?: string;
  threads?: number;
  faults?: FaultSpec;
  /** largest batch per request (default 256) */
  maxBatch?: number;
  /** largest request body / gRPC message in bytes (default: from the model, messageLimits in ./v2/dataplane.ts) */
  maxBodyBytes?: number;
  /** bounds on one request's work (default DEFAULT_LIMITS from ./v2/types.ts) */
  limits?: Partial<V2Limits>;
  logger?: Logger;
  /** what crash-after-N does (default: exit the process at once with status 3) */
  onCrash?: () => void;
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class InstanceServer implements V2Model {
  readonly meta: ModelMeta;
  private readonly faults: FaultInjector;
  private readonly log: Logger;
  private http: FastifyInstance | null = null;
  private grpcServer: grpc.Server | null = null;
  private isReady = false;
  private closing = false;
  httpPort = -1;
  grpcPort = -1;
  /** requests answered successfully */
  served = 0;

  private constructor(private readonly opts: InstanceOptions) {
    const m = opts.model;
    this.meta = {
      name: m.name,
      platform: m.platform,
      versions: ['1'],
      input: { name: 'input', datatype: 'FP32', shape: m.inputShape },
      ...(m.sideInputs.length > 0
        ? { sideInputs: m.sideInputs.map((t) => ({ name: t.name, datatype: 'FP32' as const, shape: t.shape })) }
        : {}),
      output: { name: 'output', datatype: 'FP32', shape: m.outputShape },
      maxBatch: opts.maxBatch ?? 256,
      ...(m.preprocessing === undefined ? {} : { parameters: { preprocessing: preprocessingParameter(m.preprocessing) } }),
    };
    this.faults = new FaultInjector(opts.faults ?? NO_FAULTS);
    this.log = opts.logger ?? pino({ level: 'silent' });
  }

  static async start(opts: InstanceOptions): Promise<InstanceServer> {
    const s = new InstanceServer(opts);
    try {
      await s.listen();
    } catch (e) {
      await s.close();
      throw e;
    }
    return s;
  }

  private async listen(): Promise<void> {
    const o = this.opts;
    const host = o.host ?? '127.0.0.1';
    const limits: V2Limits = { ...DEFAULT_LIMITS, ...o.limits };
    await o.model.load(o.device ?? 'cpu', o.threads ?? 1);
    // TorchScript and ONNX files say their output shape (and ONNX its input shape) only once loaded
    this.meta.input.shape = o.model.inputShape;
    this.meta.output.shape = o.model.outputShape;
    // request size limits follow the model's largest legal request (unless maxBodyBytes says otherwise)
    const sizes = messageLimits(this.meta, limits);
    const bodyLimit = o.maxBodyBytes ?? sizes.maxBodyBytes;
    const messageLimit = o.maxBodyBytes ?? sizes.maxMessageBytes;
    if (o.httpPort !== null) {
      const app = Fastify(v2FastifyOptions(bodyLimit, limits));
      await app.register(v2Rest, { model: this, bodyLimit, limits, limitConfigured: o.maxBodyBytes !== undefined });
      await app.listen({ host, port: o.httpPort ?? 0 });
      const addr = app.server.address();
      this.httpPort = typeof addr === 'object' && addr !== null ? addr.port : -1;
      this.http = app;
    }
    if (o.grpcPort !== null) {
      const g = await startV2Grpc(this, host, o.grpcPort ?? 0, messageLimit, limits, o.maxBodyBytes !== undefined);
      this.grpcServer = g.server;
      this.grpcPort = g.port;
    }
    this.isReady = true;
    this.log.info(
      {
        model: this.meta.name,
        description: o.model.description,
        http: this.httpPort,
        grpc: this.grpcPort,
        faults: this.faults.active ? this.faults.spec : undefined,
      },
      'instance ready',
    );
  }

  live(): boolean {
    return !this.closing;
  }
  ready(): boolean {
    return this.isReady && !this.closing;
  }

  async infer(req: InferRequest): Promise<InferResponse> {
    if (!this.ready()) throw new ServeError('unavailable', 'instance is not ready');
    const f = this.faults.next();
    if (f.crash) {
      this.log.warn({ after: this.faults.spec.crashAfter }, 'crash-after-N reached: exiting');
      (this.opts.onCrash ?? (() => process.exit(3)))();
      throw new ServeError('unavailable', 'instance crashed (injected)');
    }
    if (f.delayMs > 0) await sleep(f.delayMs);
    if (f.fail) throw new ServeError('unavailable', 'injected failure');
    const x = req.inputs[0];
    const batch = x.shape[0];
    let y: Float32Array;
    const t0 = performance.now();
    try {
      y = await this.opts.model.forward(x.data, batch, req.inputs.length > 1 ? req.inputs.slice(1).map((t) => t.data) : undefined);
    } catch (e) {
      throw new ServeError('internal', `forward pass failed: ${(e as Error).message}`);
    }
    // a slow period: the compute took computeFactor times as long
    if (f.computeFactor > 1) await sleep((f.computeFactor - 1) * (performance.now() - t0));
    this.served++;
    return { id: req.id, outputs: [{ name: this.meta.output.name, shape: [batch, ...this.meta.output.shape], data: y }], parameters: {} };
  }

  async close(): Promise<void> {
    this.closing = true;
    const tasks: Promise<unknown>[] = [];
    if (this.http !== null) tasks.push(this.http.close());
    if (this.grpcServer !== null) tasks.push(stopGrpc(this.grpcServer));
    await Promise.all(tasks);
    this.http = null;
    this.grpcServer = null;
    await this.opts.model.close();
  }
}
