// The Open Inference Protocol (KServe V2), part 3 of 4: the REST endpoints. JSON tensors and
// Triton's binary tensor data extension parsed into an InferRequest (validated in
// ./dataplane.ts), responses built back, errors as HTTP statuses, and the routes themselves as
// a fastify plugin (v2Rest) that model instances and the frontend register.
import type { FastifyInstance, FastifyPluginCallback, FastifyReply, FastifyRequest } from 'fastify';
import type { IncomingMessage } from 'node:http';
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
  type V2Model,
} from './types.js';
import { checkJsonBounds, checkFinite, checkInputs, firstNonFinite, messageLimits, metadataJson, oversizeMessage } from './dataplane.js';

/** Fastify options for a V2 REST server: the body limit and the timeouts that cut off slow senders. */
export function v2FastifyOptions(bodyLimit: number, limits: V2Limits = DEFAULT_LIMITS) {
  return {
    logger: false,
    bodyLimit,
    // time to receive a whole request, headers included (Node checks it every connectionsCheckingInterval)
    requestTimeout: limits.requestTimeoutMs,
    connectionTimeout: limits.idleTimeoutMs,
    keepAliveTimeout: limits.keepAliveTimeoutMs,
    http: {
      connectionsCheckingInterval: Math.max(50, Math.min(1000, limits.requestTimeoutMs / 4)),
      headersTimeout: limits.requestTimeoutMs,
    },
  } as const;
}

const HTTP_STATUS: Record<ServeErrorKind, number> = {
  invalid: 400,
  'not-found': 404,
  overloaded: 429,
  unavailable: 503,
  deadline: 504,
  internal: 500,
};

export function httpStatusOf(e: unknown): number {
  return e instanceof ServeError ? HTTP_STATUS[e.kind] : 500;
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
    if (depth >= maxDepth)
      throw badRequest(
        `input '${name}': "data" is nested ${depth + 1} levels deep, more than its shape has dimensions (${maxDepth}); give it flat (row-major) or nested as the shape`,
      );
    for (const x of v) flattenNumbers(name, x, out, maxDepth, depth + 1);
  } else {
    const what = v === null ? 'null' : Array.isArray(v) ? 'an array' : typeof v === 'object' ? 'an object' : `a ${typeof v}`;
    throw badRequest(`input '${name}': "data" must hold numbers (flat, or nested arrays as the shape), found ${what}`);
  }
}

/** Parse a REST infer body; `headerLength` is the Inference-Header-Content-Length header when binary data follow the JSON. */
export function parseRestInfer(
  meta: ModelMeta,
  body: Buffer,
  headerLength: string | undefined,
  limits: V2Limits = DEFAULT_LIMITS,
): { req: InferRequest; binaryOutput: boolean } {
  let jsonEnd = body.length;
  if (headerLength !== undefined) {
    // a decimal byte count (Number() would also take '0x6a', '1e2', ' 12 ')
    const n = /^[0-9]{1,15}$/.test(headerLength) ? Number(headerLength) : NaN;
    if (!Number.isInteger(n) || n > body.length)
      throw badRequest(
        `Inference-Header-Content-Length '${headerLength}' is not a decimal integer between 0 and the body length ${body.length}`,
      );
    jsonEnd = n;
  }
  // the JSON may hold at most what the largest batch of every input needs (plus room for shapes and names)
  checkJsonBounds(body, 0, jsonEnd, limits.maxJsonDepth, messageLimits(meta, limits).jsonValues);
  let doc: unknown;
  try {
    doc = JSON.parse(body.subarray(0, jsonEnd).toString('utf8'));
  } catch (e) {
    throw badRequest(`request body is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw badRequest('request body must be a JSON object with "inputs"');
  const d = doc as { id?: unknown; inputs?: unknown; outputs?: unknown; parameters?: Record<string, unknown> };
  if (!Array.isArray(d.inputs)) throw badRequest('request needs an "inputs" array');
  if (d.id !== undefined && typeof d.id !== 'string')
    throw badRequest(`"id" must be a string (the V2 protocol's $string), got ${JSON.stringify(d.id)}: send "id": "${String(d.id)}"`);
  if (d.outputs !== undefined && !Array.isArray(d.outputs))
    throw badRequest(
      `"outputs" must be an array of requested outputs like [{"name": "${meta.output.name}"}], got ${JSON.stringify(d.outputs)}`,
    );
  if (d.parameters !== undefined && (typeof d.parameters !== 'object' || d.parameters === null || Array.isArray(d.parameters)))
    throw badRequest('"parameters" must be a JSON object');
  let offset = jsonEnd;
  const parsed: { name: string; datatype: string; shape: number[]; data: Float32Array }[] = [];
  for (const raw of d.inputs as RestInput[]) {
    if (typeof raw !== 'object' || raw === null) throw badRequest('each input must be an object with name, datatype, shape, data');
    if (typeof raw.name !== 'string') throw badRequest('input needs a string "name"');
    if (typeof raw.datatype !== 'string') throw badRequest(`input '${raw.name}' needs a string "datatype"`);
    if (!Array.isArray(raw.shape) || !raw.shape.every((x) => typeof x === 'number'))
      throw badRequest(`input '${raw.name}' needs a numeric "shape" array`);
    const shape = raw.shape as number[];
    const bin = raw.parameters?.binary_data_size;
    let data: Float32Array;
    if (bin !== undefined && raw.data !== undefined)
      throw badRequest(
        `input '${raw.name}' has both "data" and a binary_data_size parameter: give its values one way (the binary tensor data extension forbids both)`,
      );
    if (bin !== undefined) {
      if (typeof bin !== 'number' || !Number.isInteger(bin) || bin < 0)
        throw badRequest(`input '${raw.name}': binary_data_size must be a non-negative integer`);
      if (offset + bin > body.length)
        throw badRequest(`input '${raw.name}': binary_data_size ${bin} runs past the end of the body (${body.length - offset} bytes left)`);
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
  if (offset !== body.length)
    throw badRequest(`${body.length - offset} bytes after the JSON header and binary inputs are not claimed by any binary_data_size`);
  const order = checkInputs(
    meta,
    parsed.map((p) => ({ ...p, length: p.data.length })),
  );
  let binaryOutput = d.parameters?.binary_data_output === true;
  if (Array.isArray(d.outputs)) {
    for (const o of d.outputs as { name?: unknown; parameters?: Record<string, unknown> }[]) {
      if (typeof o !== 'object' || o === null || Array.isArray(o))
        throw badRequest(`each requested output must be an object like {"name": "${meta.output.name}"}, got ${JSON.stringify(o)}`);
      if (o.name !== meta.output.name)
        throw badRequest(`unknown requested output '${String(o.name)}': model '${meta.name}' returns '${meta.output.name}'`);
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
      if (i >= 0)
        throw new ServeError(
          'internal',
          `output '${o.name}' holds ${o.data[i]} at flat index ${i}, which JSON cannot carry; request binary output ("parameters": {"binary_data_output": true}) to receive it`,
        );
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

export function sendError(reply: FastifyReply, e: unknown): FastifyReply {
  // Retry-After is in whole seconds (RFC 9110 10.2.3)
  if (e instanceof ServeError && e.retryAfterMs !== undefined)
    reply.header('retry-after', String(Math.max(1, Math.ceil(e.retryAfterMs / 1000))));
  return reply.code(httpStatusOf(e)).send({ error: (e as Error).message });
}

/** Bytes of a refused upload read and dropped before its connection is closed instead. */
export const DISCARD_LIMIT_BYTES = 64 << 20;

/**
 * After an upload is refused before its body was read: the rest of the body is read and dropped,
 * so that the client, still sending, gets to read the answer (closing the connection at once makes
 * the client's writes fail, EPIPE / ECONNRESET, and many HTTP clients then report that instead of
 * the answer: 2 of 10 16 MB uploads with fetch). More than DISCARD_LIMIT_BYTES closes the
 * connection; a client that sends too slowly is cut off by the server's request timeout.
 */
export function discardRest(raw: IncomingMessage): void {
  let seen = 0;
  raw.on('data', (chunk: Buffer) => {
    seen += chunk.length;
    if (seen > DISCARD_LIMIT_BYTES) raw.socket.destroy();
  });
}

/**
 * Mount the V2 REST routes on a fastify instance (KServe's Open Inference Protocol REST API,
 * https://kserve.github.io/website/docs/concepts/architecture/data-plane/v2-protocol, and
 * Triton's binary tensor data extension). Bodies are taken as raw buffers (so the binary
 * extension and malformed JSON are handled here, with 400s); a body over `bodyLimit` (see
 * messageLimits in ./dataplane.ts) is answered 413 naming the limit, the model and the fix. Health endpoints answer with the status code only and an empty body: 200 for
 * true, 400 for false (the spec: "a 200 status code indicates true and a 4xx status code
 * indicates false ... the body should be empty"; Triton answers 400). Every model route also
 * exists as /v2/models/{m}/versions/{v}/...; a version the model does not have is a 404.
 */
export function mountV2Rest(
  app: FastifyInstance,
  model: V2Model,
  bodyLimit: number,
  limits: V2Limits = DEFAULT_LIMITS,
  limitConfigured = false,
): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit }, (_req, body, done) => done(null, body));
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, req, reply) => {
    const code = err.statusCode ?? 500;
    if (code === 413 || err.code === 'FST_ERR_CTP_BODY_TOO_LARGE') {
      const len = Number(req.headers['content-length']);
      // fastify asked for the connection to be closed (it refuses from the Content-Length, unread): read the rest instead
      discardRest(req.raw);
      reply.removeHeader('connection');
      return reply.code(413).send({
        error: oversizeMessage(model.meta, bodyLimit, {
          ...(Number.isFinite(len) && len > 0 ? { bytes: len } : {}),
          limits,
          configured: limitConfigured,
        }),
      });
    }
    return reply.code(code >= 400 && code < 500 ? 400 : code).send({ error: err.message });
  });
  app.setNotFoundHandler((req, reply) => reply.code(404).send({ error: `no route ${req.method} ${req.url}` }));
  type ModelParams = { Params: { model: string; version?: string } };
  const checkModel = (req: FastifyRequest<ModelParams>) => {
    if (req.params.model !== model.meta.name)
      throw new ServeError('not-found', `unknown model '${req.params.model}' (this server serves '${model.meta.name}')`);
    const v = req.params.version;
    if (v !== undefined && !model.meta.versions.includes(v))
      throw new ServeError('not-found', `model '${model.meta.name}' has no version '${v}' (versions: ${model.meta.versions.join(', ')})`);
  };
  const health = (reply: FastifyReply, ok: boolean) => reply.code(ok ? 200 : 400).send();
  // The most JSON an infer request can need: every value of the largest batch (at most the JSON value
  // limit) at 32 bytes, plus 64 KiB for names, shapes and parameters. A larger JSON body is refused from
  // its Content-Length before it is read (reading and copying 16 MB costs the event loop ~100 ms of CPU).
  const { jsonValues, maxJsonBytes } = messageLimits(model.meta, limits);
  const refuseLargeJson = (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
    const len = Number(req.headers['content-length']);
    if (req.headers['inference-header-content-length'] === undefined && Number.isFinite(len) && len > maxJsonBytes) {
      discardRest(req.raw);
      void reply.code(400).send({
        error: `request JSON of ${len} bytes is larger than the ${maxJsonBytes} bytes its values can need (at most ${jsonValues} values, the limit for JSON tensors): send large tensors as binary data (the binary tensor data extension: binary_data_size and Inference-Header-Content-Length) or over gRPC as raw_input_contents`,
      });
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

export interface V2RestOptions {
  model: V2Model;
  /** largest request body (bytes) */
  bodyLimit: number;
  limits?: V2Limits;
  /** bodyLimit was set by the server's configuration (maxBodyBytes), not derived from the model: errors say so */
  limitConfigured?: boolean;
}

/**
 * The V2 REST routes as a fastify plugin: `await app.register(v2Rest, { model, bodyLimit, limits })`.
 * Not encapsulated (like fastify-plugin's plugins): the raw-buffer body parser and the error and
 * not-found handlers apply to the whole server, so routes a server adds after registering it
 * (the frontend's /metrics and Clipper-style /{app}/predict) see the same bodies and errors.
 */
export const v2Rest: FastifyPluginCallback<V2RestOptions> = (app, o, done) => {
  mountV2Rest(app, o.model, o.bodyLimit, o.limits ?? DEFAULT_LIMITS, o.limitConfigured ?? false);
  done();
};
(v2Rest as unknown as Record<symbol, boolean>)[Symbol.for('skip-override')] = true;
