// The Open Inference Protocol (KServe V2), part 4 of 4: gRPC (Triton's grpc_service.proto, in
// src/serve/proto). The service definition and its client class, wire-format checks made before
// protobufjs decodes anything, typed and raw contents parsed into an InferRequest (validated in
// ./dataplane.ts), responses built back, errors as gRPC statuses, and the server with its
// flow-control window and slow-stream cut-off.
import { join } from 'node:path';
import { constants as http2Constants, type Http2Stream } from 'node:http2';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { packageRoot } from '../../util/package-root.js';
import {
  SERVER_NAME,
  SERVER_VERSION,
  EXTENSIONS,
  ServeError,
  badRequest,
  DEFAULT_LIMITS,
  type ServeErrorKind,
  type V2Limits,
  type InferRequest,
  type InferResponse,
  type ModelMeta,
  type ParamValue,
  type V2Model,
} from './types.js';
import { checkFinite, checkInputs, checkVersion, metadataJson, oversizeMessage } from './dataplane.js';

const GRPC_STATUS: Record<ServeErrorKind, grpc.status> = {
  invalid: grpc.status.INVALID_ARGUMENT,
  'not-found': grpc.status.NOT_FOUND,
  overloaded: grpc.status.RESOURCE_EXHAUSTED,
  unavailable: grpc.status.UNAVAILABLE,
  deadline: grpc.status.DEADLINE_EXCEEDED,
  internal: grpc.status.INTERNAL,
};

export function grpcStatusOf(e: unknown): grpc.status {
  return e instanceof ServeError ? GRPC_STATUS[e.kind] : grpc.status.INTERNAL;
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

// ---------------------------------------------------------------------------
// gRPC

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
  inputs: {
    name: string;
    datatype: string;
    shape: number[];
    parameters: Record<string, GrpcParam>;
    contents: { fp32_contents: number[] } | null;
  }[];
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
    } else throw new Error(`invalid wire type ${wt} for field ${field}`);
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
            return {
              [MALFORMED]: `typed contents carry ${Math.round(typed)} values, more than the limit of ${limits.maxTypedElements}: send large tensors as raw_input_contents (little-endian bytes, one entry per input)`,
            } as Malformed;
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

const TYPED_FIELDS = [
  'bool_contents',
  'int_contents',
  'int64_contents',
  'uint_contents',
  'uint64_contents',
  'fp32_contents',
  'fp64_contents',
  'bytes_contents',
] as const;

/**
 * Parse a gRPC ModelInfer request (Triton's grpc_service.proto): inputs as typed contents (FP32 in
 * fp32_contents) or as raw_input_contents, one entry per input — never both ("if this field is
 * specified then InferInputTensor::contents must not be specified for any input tensor").
 */
export function parseGrpcInfer(meta: ModelMeta, r: GrpcInferRequest): { req: InferRequest; raw: boolean } {
  if (r.model_name !== meta.name) throw new ServeError('not-found', `unknown model '${r.model_name}' (this server serves '${meta.name}')`);
  checkVersion(meta, r.model_version);
  const raw = r.raw_input_contents.length > 0;
  if (raw && r.raw_input_contents.length !== r.inputs.length)
    throw badRequest(`raw_input_contents has ${r.raw_input_contents.length} entries for ${r.inputs.length} inputs`);
  const parsed = r.inputs.map((t, i) => {
    const c = (t.contents ?? {}) as Partial<Record<(typeof TYPED_FIELDS)[number], unknown[]>>;
    const filled = TYPED_FIELDS.filter((f) => (c[f]?.length ?? 0) > 0);
    let data: Float32Array;
    if (raw) {
      if (filled.length > 0)
        throw badRequest(
          `input '${t.name}' has typed contents (${filled.join(', ')}) and the request has raw_input_contents: give the values one way (the protocol forbids both)`,
        );
      const b = r.raw_input_contents[i];
      if (b.length % 4 !== 0) throw badRequest(`input '${t.name}': ${b.length} raw bytes are not a whole number of FP32 values`);
      data = floatsFromBytes(b);
    } else {
      const wrong = filled.filter((f) => f !== 'fp32_contents');
      if (wrong.length > 0 && t.datatype === 'FP32')
        throw badRequest(
          `input '${t.name}' (FP32) carries its values in ${wrong.join(', ')}: FP32 values go in contents.fp32_contents (or as raw_input_contents)`,
        );
      data = Float32Array.from(t.contents?.fp32_contents ?? []);
    }
    return { name: t.name, datatype: t.datatype, shape: t.shape.map(Number), data };
  });
  const order = checkInputs(
    meta,
    parsed.map((p) => ({ ...p, length: p.data.length })),
  );
  for (const p of parsed) checkFinite(p.name, p.data);
  for (const o of r.outputs)
    if (o.name !== meta.output.name)
      throw badRequest(`unknown requested output '${o.name}': model '${meta.name}' returns '${meta.output.name}'`);
  return { req: { id: r.id, inputs: order.map((i) => parsed[i]).map((p) => ({ name: p.name, shape: p.shape, data: p.data })) }, raw };
}

export function buildGrpcResponse(meta: ModelMeta, res: InferResponse, raw: boolean): GrpcInferResponse {
  return {
    model_name: meta.name,
    model_version: meta.versions[0],
    id: res.id,
    parameters: toGrpcParams(res.parameters),
    outputs: res.outputs.map((o) =>
      raw
        ? { name: o.name, datatype: 'FP32', shape: o.shape }
        : { name: o.name, datatype: 'FP32', shape: o.shape, contents: { fp32_contents: Array.from(o.data) } },
    ),
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
  const servers = (
    server as unknown as {
      http2Servers?: Map<{ on(ev: 'session', f: (s: { setLocalWindowSize?: (n: number) => void }) => void): void }, unknown>;
    }
  ).http2Servers;
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

/**
 * Reset (RST_STREAM CANCEL) every gRPC stream whose request has not arrived whole within
 * `ms`: a client that opens a call and sends its message slowly, or never finishes it, would
 * otherwise hold the stream and the buffered bytes for as long as the connection lives (grpc-js
 * has no such timeout; this listens on the HTTP/2 servers it created, not public API).
 */
function cutSlowStreams(server: grpc.Server, ms: number): void {
  const servers = (server as unknown as { http2Servers?: Map<{ on(ev: 'stream', f: (s: Http2Stream) => void): void }, unknown> })
    .http2Servers;
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

/** grpc-js's own statuses for a message over grpc.max_receive_message_length (RESOURCE_EXHAUSTED) */
const GRPC_JS_OVERSIZE = /^Received message (?:larger than max \((\d+) vs\.? \d+\)|that decompresses to a size larger than \d+)/;

/**
 * The status message for a request over the receive limit: grpc-js says "Received message
 * larger than max (N vs. M)" (and, compressed, "... decompresses to a size larger than M"),
 * which names neither the model nor what to do; ours does. Null for any other message.
 */
export function rewriteOversize(
  details: string,
  meta: ModelMeta,
  limitBytes: number,
  ctx: { limits?: V2Limits; configured?: boolean } = {},
): string | null {
  const m = GRPC_JS_OVERSIZE.exec(details);
  if (m === null) return null;
  return oversizeMessage(meta, limitBytes, { ...ctx, ...(m[1] === undefined ? {} : { bytes: Number(m[1]) }) });
}

/**
 * Make grpc-js's RESOURCE_EXHAUSTED for an oversized request say what rewriteOversize says.
 * grpc-js sends that status from inside its stream handling, past any server interceptor: this
 * rewrites the grpc-message of the (trailers-only) response on the HTTP/2 streams of the servers
 * it created (not public API; if they are missing the message stays grpc-js's own).
 */
function explainOversize(server: grpc.Server, meta: ModelMeta, limitBytes: number, ctx: { limits: V2Limits; configured: boolean }): void {
  type Headers = Record<string, unknown>;
  type Stream = { respond(h: Headers, o?: unknown): void; sendTrailers(h: Headers): void };
  const servers = (server as unknown as { http2Servers?: Map<{ on(ev: 'stream', f: (s: Stream) => void): void }, unknown> }).http2Servers;
  if (!(servers instanceof Map)) return;
  const rewrite = (h: Headers): Headers => {
    if (Number(h['grpc-status']) !== grpc.status.RESOURCE_EXHAUSTED || typeof h['grpc-message'] !== 'string') return h;
    let details: string;
    try {
      details = decodeURI(h['grpc-message']);
    } catch {
      return h;
    }
    const better = rewriteOversize(details, meta, limitBytes, ctx);
    return better === null ? h : { ...h, 'grpc-message': encodeURI(better) };
  };
  for (const h of servers.keys()) {
    h.on('stream', (stream) => {
      const respond = stream.respond.bind(stream);
      const sendTrailers = stream.sendTrailers.bind(stream);
      stream.respond = (headers, o) => respond(rewrite(headers), o);
      stream.sendTrailers = (headers) => sendTrailers(rewrite(headers));
    });
  }
}

/**
 * Start a gRPC server for the model on host:port (0 = any free port); returns it and the bound
 * port. `maxMessageBytes`: the receive limit (see messageLimits in ./dataplane.ts); a larger
 * request is refused with RESOURCE_EXHAUSTED naming the limit and the model.
 */
export async function startV2Grpc(
  model: V2Model,
  host: string,
  port: number,
  maxMessageBytes: number,
  limits: V2Limits = DEFAULT_LIMITS,
  /** maxMessageBytes was set by the server's configuration (maxBodyBytes), not derived from the model */
  limitConfigured = false,
): Promise<{ server: grpc.Server; port: number }> {
  const server = new grpc.Server({
    'grpc.max_receive_message_length': maxMessageBytes,
    'grpc.max_send_message_length': -1,
    // ping idle clients to find dead connections; close connections idle for 5 minutes
    'grpc.keepalive_time_ms': 60_000,
    'grpc.keepalive_timeout_ms': 20_000,
    'grpc.max_connection_idle_ms': 300_000,
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
  explainOversize(server, meta, maxMessageBytes, { limits, configured: limitConfigured });
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
