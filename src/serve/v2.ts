// The Open Inference Protocol (KServe V2) layer shared by model instances and the frontend:
// request parsing and validation (JSON tensors, the binary tensor extension, gRPC typed and
// raw contents), response building, the REST routes and the gRPC service implementation.
// Both servers implement V2Model; this file knows nothing about coding.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
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

function flattenNumbers(v: unknown, out: number[], depth = 0): void {
  if (typeof v === 'number') out.push(v);
  else if (Array.isArray(v) && depth < 16) for (const x of v) flattenNumbers(x, out, depth + 1);
  else throw badRequest(`tensor data must be (nested arrays of) numbers, found ${v === null ? 'null' : typeof v}`);
}

/** Parse a REST infer body; `headerLength` is the Inference-Header-Content-Length header when binary data follow the JSON. */
export function parseRestInfer(meta: ModelMeta, body: Buffer, headerLength: string | undefined): { req: InferRequest; binaryOutput: boolean } {
  let jsonEnd = body.length;
  if (headerLength !== undefined) {
    const n = Number(headerLength);
    if (!Number.isInteger(n) || n < 0 || n > body.length) throw badRequest(`Inference-Header-Content-Length '${headerLength}' is not an integer between 0 and the body length ${body.length}`);
    jsonEnd = n;
  }
  let doc: unknown;
  try {
    doc = JSON.parse(body.subarray(0, jsonEnd).toString('utf8'));
  } catch (e) {
    throw badRequest(`request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badRequest('request body must be a JSON object with "inputs"');
  const d = doc as { id?: unknown; inputs?: unknown; outputs?: unknown; parameters?: Record<string, unknown> };
  if (!Array.isArray(d.inputs)) throw badRequest('request needs an "inputs" array');
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
      flattenNumbers(raw.data, nums);
      data = Float32Array.from(nums);
    }
    parsed.push({ name: raw.name, datatype: raw.datatype, shape, data });
  }
  if (offset !== body.length) throw badRequest(`${body.length - offset} bytes after the JSON header and binary inputs are not claimed by any binary_data_size`);
  const order = checkInputs(meta, parsed.map((p) => ({ ...p, length: p.data.length })));
  let binaryOutput = d.parameters?.binary_data_output === true;
  if (Array.isArray(d.outputs)) {
    for (const o of d.outputs as { name?: unknown; parameters?: Record<string, unknown> }[]) {
      if (typeof o !== 'object' || o === null || o.name !== meta.output.name) throw badRequest(`unknown requested output '${String((o as { name?: unknown })?.name)}': model '${meta.name}' returns '${meta.output.name}'`);
      if (o.parameters?.binary_data === true) binaryOutput = true;
      if (o.parameters?.binary_data === false) binaryOutput = false;
    }
  }
  const id = typeof d.id === 'string' ? d.id : '';
  return { req: { id, inputs: order.map((i) => parsed[i]).map((p) => ({ name: p.name, shape: p.shape, data: p.data })) }, binaryOutput };
}

/** Build a REST infer response body (JSON, or JSON header + binary outputs). */
export function buildRestResponse(meta: ModelMeta, res: InferResponse, binary: boolean): { body: Buffer | string; headerLength?: number } {
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
 * Mount the V2 REST routes on a fastify instance. Bodies are taken as raw buffers (so the
 * binary extension and malformed JSON are handled here, with 400s); oversize bodies are
 * answered 400 as well.
 */
export function mountV2Rest(app: FastifyInstance, model: V2Model, bodyLimit: number): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const code = err.statusCode ?? 500;
    if (code === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return reply.code(400).send({ error: `request body too large (limit ${bodyLimit} bytes)` });
    return reply.code(code >= 400 && code < 500 ? 400 : code).send({ error: err.message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url}` }));
  const checkModel = (req: FastifyRequest<{ Params: { model: string } }>) => {
    if (req.params.model !== model.meta.name) throw new ServeError('not-found', `unknown model '${req.params.model}' (this server serves '${model.meta.name}')`);
  };
  app.get('/v2', async () => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS }));
  app.get('/v2/health/live', async (_req, reply) => reply.code(model.live() ? 200 : 503).send({ live: model.live() }));
  app.get('/v2/health/ready', async (_req, reply) => reply.code(model.ready() ? 200 : 503).send({ ready: model.ready() }));
  app.get<{ Params: { model: string } }>('/v2/models/:model', async (req, reply) => {
    try {
      checkModel(req);
      return metadataJson(model.meta);
    } catch (e) {
      return sendError(reply, e);
    }
  });
  app.get<{ Params: { model: string } }>('/v2/models/:model/ready', async (req, reply) => {
    try {
      checkModel(req);
      return reply.code(model.ready() ? 200 : 503).send({ name: model.meta.name, ready: model.ready() });
    } catch (e) {
      return sendError(reply, e);
    }
  });
  app.post<{ Params: { model: string } }>('/v2/models/:model/infer', async (req, reply) => {
    try {
      checkModel(req);
      if (!Buffer.isBuffer(req.body)) throw badRequest('request body is empty');
      const hl = req.headers['inference-header-content-length'];
      const { req: ir, binaryOutput } = parseRestInfer(model.meta, req.body, Array.isArray(hl) ? hl[0] : hl);
      const res = await model.infer(ir);
      const out = buildRestResponse(model.meta, res, binaryOutput);
      if (out.headerLength !== undefined) {
        return reply.header('inference-header-content-length', String(out.headerLength)).type('application/octet-stream').send(out.body);
      }
      return reply.type('application/json').send(out.body);
    } catch (e) {
      return sendError(reply, e);
    }
  });
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

const MALFORMED = Symbol('malformed');
type Malformed = { [MALFORMED]: string };

/**
 * The service definition with request deserialisers that never throw: a malformed protobuf
 * becomes a marker the handler answers with INVALID_ARGUMENT (grpc-js would say INTERNAL).
 */
function tolerantService(): grpc.ServiceDefinition {
  const def = inferenceService();
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    out[name] = {
      ...m,
      requestDeserialize: (b: Buffer) => {
        try {
          checkWireFormat(b);
          return m.requestDeserialize(b);
        } catch (e) {
          return { [MALFORMED]: (e as Error).message } as Malformed;
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

export function parseGrpcInfer(meta: ModelMeta, r: GrpcInferRequest): { req: InferRequest; raw: boolean } {
  if (r.model_name !== meta.name) throw new ServeError('not-found', `unknown model '${r.model_name}' (this server serves '${meta.name}')`);
  const raw = r.raw_input_contents.length > 0;
  if (raw && r.raw_input_contents.length !== r.inputs.length) throw badRequest(`raw_input_contents has ${r.raw_input_contents.length} entries for ${r.inputs.length} inputs`);
  const parsed = r.inputs.map((t, i) => {
    let data: Float32Array;
    if (raw) {
      const b = r.raw_input_contents[i];
      if (b.length % 4 !== 0) throw badRequest(`input '${t.name}': ${b.length} raw bytes are not a whole number of FP32 values`);
      data = floatsFromBytes(b);
    } else {
      data = Float32Array.from(t.contents?.fp32_contents ?? []);
    }
    return { name: t.name, datatype: t.datatype, shape: t.shape.map(Number), data };
  });
  const order = checkInputs(meta, parsed.map((p) => ({ ...p, length: p.data.length })));
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
      cb({ code: grpc.status.INVALID_ARGUMENT, details: `malformed protobuf request: ${(req as Malformed)[MALFORMED]}` });
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
export async function startV2Grpc(model: V2Model, host: string, port: number, maxMessageBytes: number): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': maxMessageBytes, 'grpc.max_send_message_length': -1 });
  const windowBytes = grpcFlowControlWindow();
  widenServerWindow(server, windowBytes);
  const meta = model.meta;
  const notFound = (name: string) => {
    if (name !== meta.name) throw new ServeError('not-found', `unknown model '${name}' (this server serves '${meta.name}')`);
  };
  server.addService(tolerantService(), {
    ServerLive: unary(() => ({ live: model.live() })),
    ServerReady: unary(() => ({ ready: model.ready() })),
    ModelReady: unary((r: { name: string }) => {
      notFound(r.name);
      return { ready: model.ready() };
    }),
    ServerMetadata: unary(() => ({ name: SERVER_NAME, version: SERVER_VERSION, extensions: EXTENSIONS })),
    ModelMetadata: unary((r: { name: string }) => {
      notFound(r.name);
      return metadataJson(meta);
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
