// The Open Inference Protocol (KServe V2) layer shared by model instances and the frontend:
// request parsing and validation (JSON tensors, the binary tensor extension, gRPC typed and
// raw contents), response building, the REST routes and the gRPC service implementation.
// Both servers implement V2Model; this file knows nothing about coding.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { constants as http2Constants, type Http2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

export const SERVER_NAME = 'coded-inference';
export const SERVER_VERSION = '0.1.0';
export const EXTENSIONS = ['binary_tensor_data'];

// ---------------------------------------------------------------------------
// errors with a protocol status

export type ServeErrorKind = 'invalid' | 'not-found' | 'overloaded' | 'unavailable' | 'deadline' | 'internal';

export class ServeError extends Error {
  /** overloaded: when the client may try again (ms; sent as Retry-After / grpc-retry-pushback-ms) */
  constructor(readonly kind: ServeErrorKind, message: string, readonly retryAfterMs?: number) {
    super(message);
    this.name = 'ServeError';
  }
}

export const badRequest = (m: string) => new ServeError('invalid', m);

// ---------------------------------------------------------------------------
// bounds on what one request may cost (issue 15): no single request may hold the event loop
// long enough to delay other queries, nor hold a connection and its buffers forever

export interface V2Limits {
  /** deepest JSON nesting a REST body may have (objects and arrays) */
  maxJsonDepth: number;
  /** most values (array elements) a JSON body may hold; larger tensors go as binary data / raw contents */
  maxJsonElements: number;
  /** most values a gRPC request may carry in typed contents (fp32_contents, ...); larger tensors go as raw_input_contents */
  maxTypedElements: number;
  /** a request must have arrived whole (headers and body, or a gRPC message) within this (ms) */
  requestTimeoutMs: number;
  /** an HTTP connection with no traffic for this long is closed (ms) */
  idleTimeoutMs: number;
  /** an idle HTTP keep-alive connection is closed after this (ms) */
  keepAliveTimeoutMs: number;
}

export const DEFAULT_LIMITS: V2Limits = {
  maxJsonDepth: 32,
  maxJsonElements: 1 << 18,
  maxTypedElements: 1 << 18,
  requestTimeoutMs: 30_000,
  idleTimeoutMs: 60_000,
  keepAliveTimeoutMs: 10_000,
};

/** Fastify options for a V2 REST server: the body limit and the timeouts that cut off slow senders. */
export function v2FastifyOptions(bodyLimit: number, limits: V2Limits = DEFAULT_LIMITS) {
  return {
    logger: false,
    bodyLimit,
    // time to receive a whole request, headers included (Node checks it every connectionsCheckingInterval)
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: { connectionsCheckingInterval: Math.max(50, Math.min(1000, limits.requestTimeoutMs / 4)), headersTimeout: limits.requestTimeoutMs },
  } as const;
}

/**
 * One pass over a JSON text (bytes [start, end)) that refuses, before JSON.parse builds
 * anything, nesting deeper than maxDepth and more than maxElements array elements (commas
 * outside strings, plus one per non-empty array: an upper bound on the numbers it can hold).
 */
export function checkJsonBounds(b: Buffer, start: number, end: number, maxDepth: number, maxElements: number): void {
  let depth = 0;
  let elements = 0;
  let inString = false;
  for (let i = start; i < end; i++) {
    const c = b[i];
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth) throw badRequest(`request JSON is nested deeper than ${maxDepth} levels (the limit; a tensor needs one level per dimension at most)`);
      if (c === 0x5b) elements++;
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c && ++elements > maxElements) {
      throw badRequest(`request JSON holds more than ${maxElements} values (the limit for JSON tensors): send large tensors as binary data (the binary tensor data extension: binary_data_size and Inference-Header-Content-Length) or over gRPC as raw_input_contents`);
    }
  }
}

/** Index of the first NaN or infinite value, or -1. */
export function firstNonFinite(a: Float32Array): number {
  for (let i = 0; i < a.length; i++) {
    const v = a[i];
    // v - v is NaN exactly for NaN and +-Infinity
    if (v - v !== 0) return i;
  }
  return -1;
}

function checkFinite(name: string, data: Float32Array): void {
  const i = firstNonFinite(data);
  if (i >= 0) throw badRequest(`input '${name}' holds ${data[i]} at flat index ${i}: inputs must be finite FP32 numbers (JSON numbers beyond +-3.4e38 overflow FP32)`);
}

const HTTP_STATUS: Record<ServeErrorKind, number> = { invalid: 400, 'not-found': 404, overloaded: 429, unavailable: 503, deadline: 504, internal: 500 };
const GRPC_STATUS: Record<ServeErrorKind, grpc.status> = {
  invalid: grpc.status.INVALID_ARGUMENT,
  'not-found': grpc.status.NOT_FOUND,
  overloaded: grpc.status.RESOURCE_EXHAUSTED,
  unavailable: grpc.status.UNAVAILABLE,
  deadline: grpc.status.DEADLINE_EXCEEDED,
  internal: grpc.status.INTERNAL,
};

export function httpStatusOf(e: unknown): number {
  return e instanceof ServeError ? HTTP_STATUS[e.kind] : 500;
}
export function grpcStatusOf(e: unknown): grpc.status {
  return e instanceof ServeError ? GRPC_STATUS[e.kind] : grpc.status.INTERNAL;
}

// ---------------------------------------------------------------------------
// tensors and models

/** A float32 tensor on the wire (the only datatype our models take and return). */
export interface WireTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export type ParamValue = string | number | boolean;

export interface InferRequest {
  id: string;
  inputs: WireTensor[];
}

export interface InferResponse {
  id: string;
  outputs: WireTensor[];
  parameters: Record<string, ParamValue>;
}

export interface TensorMeta {
  name: string;
  datatype: 'FP32';
  /** per-sample shape (without the batch dimension) */
  shape: number[];
}

export interface ModelMeta {
  name: string;
  platform: string;
  versions: string[];
  input: TensorMeta;
  /** further inputs the model needs with the main one (e.g. a Lagrange H_S worker's coefficient maps); same batch */
  sideInputs?: TensorMeta[];
  output: TensorMeta;
  /** largest batch one request may carry */
  maxBatch: number;
  /** published in the model metadata (e.g. preprocessing: what clients send; docs/SERVING.md) */
  parameters?: Record<string, ParamValue>;
}

/** What the V2 layer serves: one model (an instance's model, or the frontend's coded model). */
export interface V2Model {
  meta: ModelMeta;
  live(): boolean;
  ready(): boolean;
  /** inputs already validated against meta and in its order: the main input, then the side inputs (FP32, [B, ...shape]) */
  infer(req: InferRequest): Promise<InferResponse>;
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

/** Every input the model takes, the main one first. */
export const modelInputs = (meta: ModelMeta): TensorMeta[] => [meta.input, ...(meta.sideInputs ?? [])];

/**
 * Validate a request's inputs against the model: each of its FP32 inputs (the main one and any
 * side inputs, in any order, by name) shaped [B, ...shape] with one B, 1 <= B <= maxBatch.
 * Returns the positions of the request's inputs in the model's order (main input first).
 */
export function checkInputs(meta: ModelMeta, inputs: { name: string; datatype: string; shape: number[]; length: number }[]): number[] {
  const wanted = modelInputs(meta);
  const names = wanted.map((w) => `'${w.name}'`).join(', ');
  if (inputs.length !== wanted.length) {
    throw badRequest(wanted.length === 1 ? `model '${meta.name}' takes exactly one input ('${meta.input.name}'), got ${inputs.length}` : `model '${meta.name}' takes ${wanted.length} inputs (${names}), got ${inputs.length}`);
  }
  const order: number[] = [];
  for (const w of wanted) {
    const i = inputs.findIndex((t) => t.name === w.name);
    if (i < 0) {
      const unknown = inputs.find((t) => !wanted.some((x) => x.name === t.name));
      throw badRequest(unknown !== undefined ? `unknown input '${unknown.name}': model '${meta.name}' takes ${names}` : `input '${w.name}' is missing: model '${meta.name}' takes ${names}`);
    }
    if (order.includes(i) || inputs.filter((t) => t.name === w.name).length > 1) throw badRequest(`input '${w.name}' is given more than once`);
    order.push(i);
    const t = inputs[i];
    if (t.datatype !== 'FP32') throw badRequest(`input '${t.name}' must have datatype FP32, got '${t.datatype}'`);
    if (t.shape.length === w.shape.length + 1 && t.shape[0] === 0) throw badRequest(`input '${t.name}' has batch 0 (shape [${t.shape.join(', ')}]): send at least one sample, shape [1, ${w.shape.join(', ')}] or more`);
    const want = [-1, ...w.shape];
    const shapeOk = t.shape.length === want.length && t.shape.every((d, j) => Number.isInteger(d) && (j === 0 ? d >= 1 : d === want[j]));
    if (!shapeOk) throw badRequest(`input '${t.name}' must have shape [batch, ${w.shape.join(', ')}], got [${t.shape.join(', ')}]`);
    if (t.shape[0] > meta.maxBatch) throw badRequest(`batch ${t.shape[0]} exceeds this server's limit of ${meta.maxBatch}`);
    if (t.shape[0] !== inputs[order[0]].shape[0]) throw badRequest(`input '${t.name}' has batch ${t.shape[0]}, input '${meta.input.name}' has ${inputs[order[0]].shape[0]}: every input needs the same batch`);
    const n = prod(t.shape);
    if (t.length !== n) throw badRequest(`input '${t.name}' of shape [${t.shape.join(', ')}] needs ${n} values (${4 * n} bytes as binary), got ${t.length}`);
  }
  return order;
}

// ---------------------------------------------------------------------------
// REST: JSON tensors and the binary tensor data extension

interface RestInput {
  name?: unknown;
  datatype?: unknown;
  shape?: unknown;
  data?: unknown;
  parameters?: Record<string, unknown>;
}

/** The numbers of a JSON tensor's "data": flat, or nested as deep as its shape (at most maxDepth levels). */
function flattenNumbers(name: string, v: unknown, out: number[], maxDepth: number, depth = 0): void {
  if (typeof v === 'number') out.push(v);
  else if (Array.isArray(v)) {
    if (depth >= maxDepth) throw badRequest(`input '${name}': "data" is nested ${depth + 1} levels deep, more than its shape has dimensions (${maxDepth}); give it flat (row-major) or nested as the shape`);
    for (const x of v) flattenNumbers(name, x, out, maxDepth, depth + 1);
  } else {
    const what = v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
    throw badRequest(`input '${name}': "data" must hold numbers (flat, or nested arrays as the shape), found ${what}`);
  }
}

/** Parse a REST infer body; `headerLength` is the Inference-Header-Content-Length header when binary data follow the JSON. */
export function parseRestInfer(meta: ModelMeta, body: Buffer, headerLength: string | undefined, limits: V2Limits = DEFAULT_LIMITS): { req: InferRequest; binaryOutput: boolean } {
  let jsonEnd = body.length;
  if (headerLength !== undefined) {
    // a decimal byte count (Number() would also take '0x6a', '1e2', ' 12 ')
    const n = /^[0-9]{1,15}$/.test(headerLength) ? Number(headerLength) : NaN;
    if (!Number.isInteger(n) || n > body.length) throw badRequest(`Inference-Header-Content-Length '${headerLength}' is not a decimal integer between 0 and the body length ${body.length}`);
    jsonEnd = n;
  }
  // the JSON may hold at most what the largest batch of every input needs (plus room for shapes and names)
  const modelValues = modelInputs(meta).reduce((s, t) => s + meta.maxBatch * prod(t.shape), 0);
  checkJsonBounds(body, 0, jsonEnd, limits.maxJsonDepth, Math.min(limits.maxJsonElements, modelValues + 4096));
  let doc: unknown;
  try {
    doc = JSON.parse(body.subarray(0, jsonEnd).toString('utf8'));
  } catch (e) {
    throw badRequest(`request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badRequest('request body must be a JSON object with "inputs"');
  const d = doc as { id?: unknown; inputs?: unknown; outputs?: unknown; parameters?: Record<string, unknown> };
  if (!Array.isArray(d.inputs)) throw badRequest('request needs an "inputs" array');
  if (d.id !== undefined && typeof d.id !== 'string') throw badRequest(`"id" must be a string (the V2 protocol's $string), got ${JSON.stringify(d.id)}: send "id": "${String(d.id)}"`);
  if (d.outputs !== undefined && !Array.isArray(d.outputs)) throw badRequest(`"outputs" must be an array of requested outputs like [{"name": "${meta.output.name}"}], got ${JSON.stringify(d.outputs)}`);
  if (d.parameters !== undefined && (typeof d.parameters !== 'object' || d.parameters === null || Array.isArray(d.parameters))) throw badRequest('"parameters" must be a JSON object');
  let offset = jsonEnd;
  const parsed: { name: string; datatype: string; shape: number[]; data: Float32Array }[] = [];
  for (const raw of d.inputs as RestInput[]) {
    if (typeof raw !== 'object' || raw === null) throw badRequest('each input must be an object with name, datatype, shape, data');
    if (typeof raw.name !== 'string') throw badRequest('input needs a string "name"');
    if (typeof raw.datatype !== 'string') throw badRequest(`input '${raw.name}' needs a string "datatype"`);
    if (!Array.isArray(raw.shape) || !raw.shape.every((x) => typeof x === 'number')) throw badRequest(`input '${raw.name}' needs a numeric "shape" array`);
    const shape = raw.shape as number[];
    const bin = raw.parameters?.binary_data_size;
    let data: Float32Array;
    if (bin !== undefined && raw.data !== undefined) throw badRequest(`input '${raw.name}' has both "data" and a binary_data_size parameter: give its values one way (the binary tensor data extension forbids both)`);
    if (bin !== undefined) {
      if (typeof bin !== 'number' || !Number.isInteger(bin) || bin < 0) throw badRequest(`input '${raw.name}': binary_data_size must be a non-negative integer`);
      if (offset + bin > body.length) throw badRequest(`input '${raw.name}': binary_data_size ${bin} runs past the end of the body (${body.length - offset} bytes left)`);
      if (bin % 4 !== 0) throw badRequest(`input '${raw.name}': binary_data_size ${bin} is not a whole number of FP32 values`);
      // copy: the body buffer may not be 4-byte aligned
      data = new Float32Array(bin / 4);
      new Uint8Array(data.buffer).set(body.subarray(offset, offset + bin));
      offset += bin;
    } else {
      if (raw.data === undefined) throw badRequest(`input '${raw.name}' has neither "data" nor a binary_data_size parameter`);
      const nums: number[] = [];
      flattenNumbers(raw.name, raw.data, nums, Math.max(1, shape.length));
      data = Float32Array.from(nums);
    }
    checkFinite(raw.name, data);
    parsed.push({ name: raw.name, datatype: raw.datatype, shape, data });
  }
  if (offset !== body.length) throw badRequest(`${body.length - offset} bytes after the JSON header and binary inputs are not claimed by any binary_data_size`);
  const order = checkInputs(meta, parsed.map((p) => ({ ...p, length: p.data.length })));
  let binaryOutput = d.parameters?.binary_data_output === true;
  if (Array.isArray(d.outputs)) {
    for (const o of d.outputs as { name?: unknown; parameters?: Record<string, unknown> }[]) {
      if (typeof o !== 'object' || o === null || Array.isArray(o)) throw badRequest(`each requested output must be an object like {"name": "${meta.output.name}"}, got ${JSON.stringify(o)}`);
      if (o.name !== meta.output.name) throw badRequest(`unknown requested output '${String(o.name)}': model '${meta.name}' returns '${meta.output.name}'`);
      if (o.parameters?.binary_data === true) binaryOutput = true;
      if (o.parameters?.binary_data === false) binaryOutput = false;
    }
  }
  const id = d.id ?? '';
  return { req: { id, inputs: order.map((i) => parsed[i]).map((p) => ({ name: p.name, shape: p.shape, data: p.data })) }, binaryOutput };
}

/** Build a REST infer response body (JSON, or JSON header + binary outputs). */
export function buildRestResponse(meta: ModelMeta, res: InferResponse, binary: boolean): { body: Buffer | string; headerLength?: number } {
  if (!binary) {
    for (const o of res.outputs) {
      const i = firstNonFinite(o.data);
      // JSON has no NaN / Infinity (JSON.stringify would write null): refuse rather than answer something that is not a tensor
      if (i >= 0) throw new ServeError('internal', `output '${o.name}' holds ${o.data[i]} at flat index ${i}, which JSON cannot carry; request binary output ("parameters": {"binary_data_output": true}) to receive it`);
    }
  }
  const outputs = res.outputs.map((o) =>
    binary
      ? { name: o.name, datatype: 'FP32', shape: o.shape, parameters: { binary_data_size: o.data.byteLength } }
      : { name: o.name, datatype: 'FP32', shape: o.shape, data: Array.from(o.data) },
  );
  const json = JSON.stringify({ model_name: meta.name, model_version: meta.versions[0], id: res.id, parameters: res.parameters, outputs });
  if (!binary) return { body: json };
  const head = Buffer.from(json, 'utf8');
  const parts = [head, ...res.outputs.map((o) => Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength))];
  return { body: Buffer.concat(parts), headerLength: head.length };
}

function metadataJson(meta: ModelMeta) {
  return {
    name: meta.name,
    versions: meta.versions,
    platform: meta.platform,
    inputs: modelInputs(meta).map((t) => ({ name: t.name, datatype: t.datatype, shape: [-1, ...t.shape] })),
    outputs: [{ name: meta.output.name, datatype: meta.output.datatype, shape: [-1, ...meta.output.shape] }],
    ...(meta.parameters === undefined ? {} : { parameters: meta.parameters }),
  };
}

export function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  // Retry-After is in whole seconds (RFC 9110 10.2.3)
  if (e instanceof ServeError && e.retryAfterMs !== undefined) reply.header('retry-after', String(Math.max(1, Math.ceil(e.retryAfterMs / 1000))));
  return reply.code(httpStatusOf(e)).send({ error: (e as Error).message });
}

/** A gRPC error status; overload refusals carry grpc-retry-pushback-ms (gRFC A6) in the trailers. */
export function grpcError(e: unknown): Partial<grpc.StatusObject> {
  const out: Partial<grpc.StatusObject> = { code: grpcStatusOf(e), details: (e as Error).message };
  if (e instanceof ServeError && e.retryAfterMs !== undefined) {
    const md = new grpc.Metadata();
    md.set('grpc-retry-pushback-ms', String(Math.round(e.retryAfterMs)));
    out.metadata = md;
  }
  return out;
}

/**
 * Mount the V2 REST routes on a fastify instance (KServe's Open Inference Protocol REST API,
 * https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol, and
 * Triton's binary tensor data extension). Bodies are taken as raw buffers (so the binary
 * extension and malformed JSON are handled here, with 400s); oversize bodies are answered 400
 * as well. Health endpoints answer with the status code only and an empty body: 200 for
 * true, 400 for false (the spec: "a 200 status code indicates true and a 4xx status code
 * indicates false ... the body should be empty"; Triton answers 400). Every model route also
 * exists as /v2/models/{m}/versions/{v}/...; a version the model does not have is a 404.
 */
export function mountV2Rest(app: FastifyInstance, model: V2Model, bodyLimit: number, limits: V2Limits = DEFAULT_LIMITS): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const code = err.statusCode ?? 500;
    if (code === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(400).send({ error: `request body too large (limit ${bodyLimit} bytes)` });
    return reply.code(code >= 400 && code < 500 ? 400 : code).send({ error: err.message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url}` }));
  type ModelParams = { Params: { model: string; version?: string } };
  const checkModel = (req: FastifyRequest<ModelParams>) => {
    if (req.params.model !== model.meta.name) throw new ServeError('not-found', `unknown model '${req.params.model}' (this server serves '${model.meta.name}')`);
    const v = req.params.version;
    if (v !== undefined && !model.meta.versions.includes(v)) throw new ServeError('not-found', `model '${model.meta.name}' has no version '${v}' (versions: ${model.meta.versions.join(', ')})`);
  };
  const health = (reply: FastifyReply, ok: boolean) => reply.code(ok ? 200 : 400).send();
  // The most JSON an infer request can need: every value of the largest batch (at most the JSON value
  // limit) at 32 bytes, plus 64 KiB for names, shapes and parameters. A larger JSON body is refused from
  // its Content-Length before it is read (reading and copying 16 MB costs the event loop ~100 ms of CPU).
  const jsonValues = Math.min(limits.maxJsonElements, modelInputs(model.meta).reduce((s, t) => s + model.meta.maxBatch * prod(t.shape), 0) + 4096);
  const maxJsonBytes = jsonValues * 32 + 65536;
  const refuseLargeJson = (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const len = Number(req.headers['content-length']);
    if (req.headers['inference-header-content-length'] === undefined && Number.isFinite(len) && len > maxJsonBytes) {
      void reply.code(400).header('connection', 'close').send({ error: `request JSON of ${len} bytes is larger than the ${maxJsonBytes} bytes its values can need (at most ${jsonValues} values, the limit for JSON tensors): send large tensors as binary data (the binary tensor data extension: binary_data_size and Inference-Header-Content-Length) or over gRPC as raw_input_contents` });
      return;
    }
    done();
  };
  const serverMetadata = async () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS });
  app.get('/v2', serverMetadata);
  app.get('/v2/', serverMetadata);
  app.get('/v2/health/live', async (_req, reply) => health(reply, model.live()));
  app.get('/v2/health/ready', async (_req, reply) => health(reply, model.ready()));
  const metadata = async (req: FastifyRequest<ModelParams>, reply: FastifyReply) => {
    try {
      checkModel(req);
      return metadataJson(model.meta);
    } catch (e) {
      return sendError(reply, e);
    }
  };
  const ready = async (req: FastifyRequest<ModelParams>, reply: FastifyReply) => {
    try {
      checkModel(req);
      return health(reply, model.ready());
    } catch (e) {
      return sendError(reply, e);
    }
  };
  const infer = async (req: FastifyRequest<ModelParams>, reply: FastifyReply) => {
    try {
      checkModel(req);
      if (!Buffer.isBuffer(req.body)) throw badRequest('request body is empty');
      const hl = req.headers['inference-header-content-length'];
      const { req: ir, binaryOutput } = parseRestInfer(model.meta, req.body, Array.isArray(hl) ? hl[0] : hl, limits);
      const res = await model.infer(ir);
      const out = buildRestResponse(model.meta, res, binaryOutput);
      if (out.headerLength !== undefined) {
        return reply.header('inference-header-content-length', String(out.headerLength)).type('application/octet-stream').send(out.body);
      }
      return reply.type('application/json').send(out.body);
    } catch (e) {
      return sendError(reply, e);
    }
  };
  for (const base of ['/v2/models/:model', '/v2/models/:model/versions/:version']) {
    app.get<ModelParams>(base, metadata);
    app.get<ModelParams>(`${base}/ready`, ready);
    app.post<ModelParams>(`${base}/infer`, { onRequest: refuseLargeJson }, infer);
  }
}

// ---------------------------------------------------------------------------
// gRPC

/** The package root (holding package.json), from src/serve or dist/src/serve. */
export function packageRoot(): string {
  let d = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 5; i++) {
    if (existsSync(join(d, 'package.json')) && existsSync(join(d, 'src', 'serve', 'proto'))) return d;
    d = dirname(d);
  }
  throw new Error('coded-inference: cannot find the package root (with src/serve/proto) above ' + fileURLToPath(import.meta.url));
}

export const PROTO_PATH = () => join(packageRoot(), 'src', 'serve', 'proto', 'inference.proto');

const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true };

let cachedDef: grpc.ServiceDefinition | null = null;
/** The inference.GRPCInferenceService definition loaded from our .proto. */
export function inferenceService(): grpc.ServiceDefinition {
  if (cachedDef === null) {
    const pkg = protoLoader.loadSync(PROTO_PATH(), LOADER_OPTIONS);
    cachedDef = pkg['inference.GRPCInferenceService'] as grpc.ServiceDefinition;
  }
  return cachedDef;
}

export interface GrpcParam {
  bool_param?: boolean;
  int64_param?: number;
  string_param?: string;
  double_param?: number;
  parameter_choice?: string;
}
export interface GrpcInferRequest {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, GrpcParam>;
  inputs: { name: string; datatype: string; shape: number[]; parameters: Record<string, GrpcParam>; contents: { fp32_contents: number[] } | null }[];
  outputs: { name: string }[];
  raw_input_contents: Buffer[];
}
export interface GrpcInferResponse {
  model_name: string;
  model_version: string;
  id: string;
  parameters: Record<string, GrpcParam>;
  outputs: { name: string; datatype: string; shape: number[]; contents?: { fp32_contents: number[] } }[];
  raw_output_contents: Buffer[];
}

/**
 * Walk the top level of a protobuf message and throw if it is not well-formed wire format
 * (bad wire types, varints or lengths running past the end): the generated decoder is
 * lenient with truncated input, and a truncated request must not be served as if valid.
 */
export function checkWireFormat(b: Buffer): void {
  let i = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let n = 0; n < 10; n++) {
      if (i >= b.length) throw new Error('truncated varint');
      const c = b[i++];
      v += (c & 0x7f) * mul;
      if ((c & 0x80) === 0) return v;
      mul *= 128;
    }
    throw new Error('varint too long');
  };
  while (i < b.length) {
    const tag = varint();
    const field = Math.floor(tag / 8);
    const wt = tag & 7;
    if (field === 0) throw new Error('field number 0');
    if (wt === 0) varint();
    else if (wt === 1) i += 8;
    else if (wt === 5) i += 4;
    else if (wt === 2) {
      const len = varint();
      i += len;
    }
    else throw new Error(`invalid wire type ${wt} for field ${field}`);
    if (i > b.length) throw new Error(`field ${field} runs past the end of the message`);
  }
}

/** Call `f(field, wireType, start, end)` for each field of the message in b[from, to) (length-delimited: the payload's bounds). */
function eachField(b: Buffer, from: number, to: number, f: (field: number, wt: number, start: number, end: number) => void): void {
  let i = from;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let n = 0; n < 10 && i < to; n++) {
      const c = b[i++];
      v += (c & 0x7f) * mul;
      if ((c & 0x80) === 0) return v;
      mul *= 128;
    }
    throw new Error('bad varint');
  };
  while (i < to) {
    const tag = varint();
    const wt = tag & 7;
    const start = i;
    if (wt === 0) varint();
    else if (wt === 1) i += 8;
    else if (wt === 5) i += 4;
    else if (wt === 2) {
      const len = varint();
      f(Math.floor(tag / 8), wt, i, i + len);
      i += len;
      continue;
    } else throw new Error(`invalid wire type ${wt}`);
    f(Math.floor(tag / 8), wt, start, i);
  }
}

/**
 * Values a ModelInferRequest carries in typed contents (InferInputTensor.contents, field 5 of
 * inputs, field 5 of the request), counted on the wire before anything is decoded: protobufjs
 * would otherwise build a JS array of every one of them (4M floats: seconds of event loop).
 * Packed numbers count by their bytes (fp32 4, fp64 8, varints at least 1), other entries 1 each.
 */
export function typedValueCount(b: Buffer): number {
  let n = 0;
  eachField(b, 0, b.length, (field, wt, s, e) => {
    if (field !== 5 || wt !== 2) return;
    eachField(b, s, e, (f2, wt2, s2, e2) => {
      if (f2 !== 5 || wt2 !== 2) return;
      eachField(b, s2, e2, (f3, wt3, s3, e3) => {
        if (wt3 !== 2 || f3 === 8) n += 1;
        else n += f3 === 6 ? (e3 - s3) / 4 : f3 === 7 ? (e3 - s3) / 8 : e3 - s3;
      });
    });
  });
  return n;
}

const MALFORMED = Symbol('malformed');
type Malformed = { [MALFORMED]: string };

/**
 * The service definition with request deserialisers that never throw: a malformed protobuf
 * becomes a marker the handler answers with INVALID_ARGUMENT (grpc-js would say INTERNAL).
 */
function tolerantService(limits: V2Limits): grpc.ServiceDefinition {
  const def = inferenceService();
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    out[name] = {
      ...m,
      requestDeserialize: (b: Buffer) => {
        try {
          checkWireFormat(b);
        } catch (e) {
          return { [MALFORMED]: `malformed protobuf request: ${(e as Error).message}` } as Malformed;
        }
        if (name === 'ModelInfer') {
          let typed = 0;
          try {
            typed = typedValueCount(b);
          } catch (e) {
            return { [MALFORMED]: `malformed protobuf request: ${(e as Error).message}` } as Malformed;
          }
          if (typed > limits.maxTypedElements) {
            return { [MALFORMED]: `typed contents carry ${Math.round(typed)} values, more than the limit of ${limits.maxTypedElements}: send large tensors as raw_input_contents (little-endian bytes, one entry per input)` } as Malformed;
          }
        }
        try {
          return m.requestDeserialize(b);
        } catch (e) {
          return { [MALFORMED]: `malformed protobuf request: ${(e as Error).message}` } as Malformed;
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}

export function toGrpcParams(p: Record<string, ParamValue>): Record<string, GrpcParam> {
  const out: Record<string, GrpcParam> = {};
  for (const [k, v] of Object.entries(p)) {
    if (typeof v === 'boolean') out[k] = { bool_param: v };
    else if (typeof v === 'string') out[k] = { string_param: v };
    else if (Number.isInteger(v)) out[k] = { int64_param: v };
    else out[k] = { double_param: v };
  }
  return out;
}

export function fromGrpcParams(p: Record<string, GrpcParam> | undefined): Record<string, ParamValue> {
  const out: Record<string, ParamValue> = {};
  for (const [k, v] of Object.entries(p ?? {})) {
    const c = v.parameter_choice;
    if (c === 'bool_param') out[k] = v.bool_param!;
    else if (c === 'string_param') out[k] = v.string_param!;
    else if (c === 'int64_param') out[k] = Number(v.int64_param);
    else if (c === 'double_param') out[k] = v.double_param!;
  }
  return out;
}

/** Copy raw little-endian bytes into a Float32Array (Buffers from grpc may be unaligned). */
export function floatsFromBytes(b: Buffer): Float32Array {
  // a view when the bytes are 4-aligned (no copy of a 600 KB image per hop); a copy otherwise
  if (b.byteOffset % 4 === 0) return new Float32Array(b.buffer, b.byteOffset, b.length >> 2);
  const f = new Float32Array(b.length >> 2);
  new Uint8Array(f.buffer).set(b.subarray(0, f.length * 4));
  return f;
}

const TYPED_FIELDS = ['bool_contents', 'int_contents', 'int64_contents', 'uint_contents', 'uint64_contents', 'fp32_contents', 'fp64_contents', 'bytes_contents'] as const;

/** A model version in a request: '' means the server's choice; any other must be one the model has. */
export function checkVersion(meta: ModelMeta, version: string | undefined): void {
  if (version !== undefined && version !== '' && !meta.versions.includes(version)) throw new ServeError('not-found', `model '${meta.name}' has no version '${version}' (versions: ${meta.versions.join(', ')})`);
}

/**
 * Parse a gRPC ModelInfer request (Triton's grpc_service.proto): inputs as typed contents (FP32 in
 * fp32_contents) or as raw_input_contents, one entry per input — never both ("if this field is
 * specified then InferInputTensor::contents must not be specified for any input tensor").
 */
export function parseGrpcInfer(meta: ModelMeta, r: GrpcInferRequest): { req: InferRequest; raw: boolean } {
  if (r.model_name !== meta.name) throw new ServeError('not-found', `unknown model '${r.model_name}' (this server serves '${meta.name}')`);
  checkVersion(meta, r.model_version);
  const raw = r.raw_input_contents.length > 0;
  if (raw && r.raw_input_contents.length !== r.inputs.length) throw badRequest(`raw_input_contents has ${r.raw_input_contents.length} entries for ${r.inputs.length} inputs`);
  const parsed = r.inputs.map((t, i) => {
    const c = (t.contents ?? {}) as Partial<Record<(typeof TYPED_FIELDS)[number], unknown[]>>;
    const filled = TYPED_FIELDS.filter((f) => (c[f]?.length ?? 0) > 0);
    let data: Float32Array;
    if (raw) {
      if (filled.length > 0) throw badRequest(`input '${t.name}' has typed contents (${filled.join(', ')}) and the request has raw_input_contents: give the values one way (the protocol forbids both)`);
      const b = r.raw_input_contents[i];
      if (b.length % 4 !== 0) throw badRequest(`input '${t.name}': ${b.length} raw bytes are not a whole number of FP32 values`);
      data = floatsFromBytes(b);
    } else {
      const wrong = filled.filter((f) => f !== 'fp32_contents');
      if (wrong.length > 0 && t.datatype === 'FP32') throw badRequest(`input '${t.name}' (FP32) carries its values in ${wrong.join(', ')}: FP32 values go in contents.fp32_contents (or as raw_input_contents)`);
      data = Float32Array.from(t.contents?.fp32_contents ?? []);
    }
    return { name: t.name, datatype: t.datatype, shape: t.shape.map(Number), data };
  });
  const order = checkInputs(meta, parsed.map((p) => ({ ...p, length: p.data.length })));
  for (const p of parsed) checkFinite(p.name, p.data);
  for (const o of r.outputs) if (o.name !== meta.output.name) throw badRequest(`unknown requested output '${o.name}': model '${meta.name}' returns '${meta.output.name}'`);
  return { req: { id: r.id, inputs: order.map((i) => parsed[i]).map((p) => ({ name: p.name, shape: p.shape, data: p.data })) }, raw };
}

export function buildGrpcResponse(meta: ModelMeta, res: InferResponse, raw: boolean): GrpcInferResponse {
  return {
    model_name: meta.name,
    model_version: meta.versions[0],
    id: res.id,
    parameters: toGrpcParams(res.parameters),
    outputs: res.outputs.map((o) => (raw ? { name: o.name, datatype: 'FP32', shape: o.shape } : { name: o.name, datatype: 'FP32', shape: o.shape, contents: { fp32_contents: Array.from(o.data) } })),
    raw_output_contents: raw ? res.outputs.map((o) => Buffer.from(o.data.buffer, o.data.byteOffset, o.data.byteLength)) : [],
  };
}

type Unary = (call: grpc.ServerUnaryCall<unknown, unknown>, cb: grpc.sendUnaryData<unknown>) => void;

function unary<Req, Res>(fn: (req: Req) => Res | Promise<Res>): Unary {
  return (call, cb) => {
    const req = call.request as Req | Malformed;
    if (typeof req === 'object' && req !== null && MALFORMED in req) {
      cb({ code: grpc.status.INVALID_ARGUMENT, details: (req as Malformed)[MALFORMED] });
      return;
    }
    Promise.resolve()
      .then(() => fn(req as Req))
      .then(
        (res) => cb(null, res),
        (e: unknown) => cb(grpcError(e)),
      );
  };
}

/**
 * HTTP/2 flow-control window (bytes) for V2 gRPC connections, client and server side. HTTP/2's
 * default of 64 KiB makes a 600 KB request (one 3x224x224 FP32 image) wait for about ten
 * WINDOW_UPDATE round trips through the receiver's event loop; 16 MiB lets it flow at once.
 * CODED_GRPC_WINDOW overrides it (0: keep the HTTP/2 default).
 */
export function grpcFlowControlWindow(): number {
  const v = process.env.CODED_GRPC_WINDOW;
  const n = v === undefined || v === '' ? 16 * 1024 * 1024 : Number(v);
  return Number.isInteger(n) && n >= 0 ? Math.min(n, 2 ** 31 - 1) : 16 * 1024 * 1024;
}

/**
 * Give a grpc-js server a larger receive window. grpc-js has no server option for it yet (it has
 * `grpc-node.flow_control_window` for clients only): this sets the HTTP/2 settings it passes to
 * http2.createServer, and each new session's connection window, through grpc-js fields that are
 * not public API; if they are missing (another grpc-js version) it does nothing.
 */
function widenServerWindow(server: grpc.Server, bytes: number): void {
  if (bytes <= 65535) return;
  const s = server as unknown as { commonServerOptions?: { settings?: Record<string, unknown> } };
  if (s.commonServerOptions !== undefined) s.commonServerOptions.settings = { ...s.commonServerOptions.settings, initialWindowSize: bytes };
}

function widenSessionWindows(server: grpc.Server, bytes: number): void {
  if (bytes <= 65535) return;
  const servers = (server as unknown as { http2Servers?: Map<{ on(ev: 'session', f: (s: { setLocalWindowSize?: (n: number) => void }) => void): void }, unknown> }).http2Servers;
  if (!(servers instanceof Map)) return;
  for (const h of servers.keys()) {
    h.on('session', (session) => {
      try {
        session.setLocalWindowSize?.(bytes);
      } catch {
        // an old Node without setLocalWindowSize: keep the default window
      }
    });
  }
}

/** Start a gRPC server for the model on host:port (0 = any free port); returns it and the bound port. */
/**
 * Reset (RST_STREAM CANCEL) every gRPC stream whose request has not arrived whole within
 * `ms`: a client that opens a call and sends its message slowly, or never finishes it, would
 * otherwise hold the stream and the buffered bytes for as long as the connection lives (grpc-js
 * has no such timeout; this listens on the HTTP/2 servers it created, not public API).
 */
function cutSlowStreams(server: grpc.Server, ms: number): void {
  const servers = (server as unknown as { http2Servers?: Map<{ on(ev: 'stream', f: (s: Http2Stream) => void): void }, unknown> }).http2Servers;
  if (!(servers instanceof Map)) return;
  for (const h of servers.keys()) {
    h.on('stream', (stream) => {
      const t = setTimeout(() => {
        if (!stream.readableEnded && !stream.destroyed) stream.close(http2Constants.NGHTTP2_CANCEL);
      }, ms);
      t.unref();
      stream.once('end', () => clearTimeout(t));
      stream.once('close', () => clearTimeout(t));
    });
  }
}

export async function startV2Grpc(model: V2Model, host: string, port: number, maxMessageBytes: number, limits: V2Limits = DEFAULT_LIMITS): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxMessageBytes, 'grpc.max_send_message_length': -1,
    // ping idle clients to find dead connections; close connections idle for 5 minutes
    'grpc.keepalive_time_ms': 60_000, 'grpc.keepalive_timeout_ms': 20_000, 'grpc.max_connection_idle_ms': 300_000,
  });
  const windowBytes = grpcFlowControlWindow();
  widenServerWindow(server, windowBytes);
  const meta = model.meta;
  const notFound = (name: string) => {
    if (name !== meta.name) throw new ServeError('not-found', `unknown model '${name}' (this server serves '${meta.name}')`);
  };
  server.addService(tolerantService(limits), {
    ServerLive: unary(() => ({ live: model.live() })),
    ServerReady: unary(() => ({ ready: model.ready() })),
    ModelReady: unary((r: { name: string; version?: string }) => {
      notFound(r.name);
      checkVersion(meta, r.version);
      return { ready: model.ready() };
    }),
    ServerMetadata: unary(() => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS })),
    ModelMetadata: unary((r: { name: string; version?: string }) => {
      notFound(r.name);
      checkVersion(meta, r.version);
      const md = metadataJson(meta);
      return meta.parameters === undefined ? md : { ...md, parameters: toGrpcParams(meta.parameters) };
    }),
    ModelInfer: unary(async (r: GrpcInferRequest) => {
      const { req, raw } = parseGrpcInfer(meta, r);
      return buildGrpcResponse(meta, await model.infer(req), raw);
    }),
  } as unknown as grpc.UntypedServiceImplementation);
  const bound = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
  );
  widenSessionWindows(server, windowBytes);
  cutSlowStreams(server, limits.requestTimeoutMs);
  return { server, port: bound };
}

/** Stop a gRPC server: graceful for up to `graceMs`, then forced. */
export async function stopGrpc(server: grpc.Server, graceMs = 500): Promise<void> {
  await new Promise<void>((resolve) => {
    const t = setTimeout(() => {
      server.forceShutdown();
      resolve();
    }, graceMs);
    server.tryShutdown(() => {
      clearTimeout(t);
      resolve();
    });
  });
}

/** A typed client constructor for the V2 gRPC service. */
export function grpcClientClass(): grpc.ServiceClientConstructor {
  return grpc.makeGenericClientConstructor(inferenceService(), 'GRPCInferenceService');
}
