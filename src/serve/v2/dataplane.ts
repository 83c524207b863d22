// The Open Inference Protocol (KServe V2), part 2 of 4: the data plane shared by both
// transports. Request validation that does not depend on how the request arrived (inputs
// against the model's metadata, finite values, versions, the JSON bounds checked before a
// parse) and the model metadata document. ./rest.ts and ./grpc.ts parse their wire formats
// into an InferRequest and check it here.
import { DEFAULT_LIMITS, ServeError, badRequest, type ModelMeta, type TensorMeta, type V2Limits } from './types.js';

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
      if (c === 0x5c)
        i++; // backslash: skip the escaped byte
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > maxDepth)
        throw badRequest(
          `request JSON is nested deeper than ${maxDepth} levels (the limit; a tensor needs one level per dimension at most)`,
        );
      if (c === 0x5b) elements++;
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c && ++elements > maxElements) {
      throw badRequest(
        `request JSON holds more than ${maxElements} values (the limit for JSON tensors): send large tensors as binary data (the binary tensor data extension: binary_data_size and Inference-Header-Content-Length) or over gRPC as raw_input_contents`,
      );
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

/** Refuse NaN / infinite input values. */
export function checkFinite(name: string, data: Float32Array): void {
  const i = firstNonFinite(data);
  if (i >= 0)
    throw badRequest(
      `input '${name}' holds ${data[i]} at flat index ${i}: inputs must be finite FP32 numbers (JSON numbers beyond +-3.4e38 overflow FP32)`,
    );
}

export const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

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
    throw badRequest(
      wanted.length === 1
        ? `model '${meta.name}' takes exactly one input ('${meta.input.name}'), got ${inputs.length}`
        : `model '${meta.name}' takes ${wanted.length} inputs (${names}), got ${inputs.length}`,
    );
  }
  const order: number[] = [];
  for (const w of wanted) {
    const i = inputs.findIndex((t) => t.name === w.name);
    if (i < 0) {
      const unknown = inputs.find((t) => !wanted.some((x) => x.name === t.name));
      throw badRequest(
        unknown !== undefined
          ? `unknown input '${unknown.name}': model '${meta.name}' takes ${names}`
          : `input '${w.name}' is missing: model '${meta.name}' takes ${names}`,
      );
    }
    if (order.includes(i) || inputs.filter((t) => t.name === w.name).length > 1)
      throw badRequest(`input '${w.name}' is given more than once`);
    order.push(i);
    const t = inputs[i];
    if (t.datatype !== 'FP32') throw badRequest(`input '${t.name}' must have datatype FP32, got '${t.datatype}'`);
    if (t.shape.length === w.shape.length + 1 && t.shape[0] === 0)
      throw badRequest(
        `input '${t.name}' has batch 0 (shape [${t.shape.join(', ')}]): send at least one sample, shape [1, ${w.shape.join(', ')}] or more`,
      );
    const want = [-1, ...w.shape];
    const shapeOk = t.shape.length === want.length && t.shape.every((d, j) => Number.isInteger(d) && (j === 0 ? d >= 1 : d === want[j]));
    if (!shapeOk) throw badRequest(`input '${t.name}' must have shape [batch, ${w.shape.join(', ')}], got [${t.shape.join(', ')}]`);
    if (t.shape[0] > meta.maxBatch) throw badRequest(`batch ${t.shape[0]} exceeds this server's limit of ${meta.maxBatch}`);
    if (t.shape[0] !== inputs[order[0]].shape[0])
      throw badRequest(
        `input '${t.name}' has batch ${t.shape[0]}, input '${meta.input.name}' has ${inputs[order[0]].shape[0]}: every input needs the same batch`,
      );
    const n = prod(t.shape);
    if (t.length !== n)
      throw badRequest(`input '${t.name}' of shape [${t.shape.join(', ')}] needs ${n} values (${4 * n} bytes as binary), got ${t.length}`);
  }
  return order;
}

const KiB = 1024;
const MiB = 1024 * KiB;
/** room for everything in a request besides its tensors' values (names, shapes, parameters, framing) */
const ENVELOPE_BYTES = 64 * KiB;

export interface MessageLimits {
  /** bytes of the largest legal request's values as FP32 */
  tensorBytes: number;
  /** largest gRPC message and binary REST body (bytes) */
  maxMessageBytes: number;
  /** values a JSON body may hold (the JSON value limit, or fewer when the model needs fewer) */
  jsonValues: number;
  /** largest JSON body its values can need (bytes) */
  maxJsonBytes: number;
  /** the REST body limit: the larger of maxMessageBytes and maxJsonBytes */
  maxBodyBytes: number;
}

export const MESSAGE_FLOOR_BYTES = MiB + ENVELOPE_BYTES;
export const MESSAGE_CAP_BYTES = 16 * MiB;

/**
 * How large one request to `meta` may be, from the model: its largest legal request is every
 * input (main and side) at the largest batch, in FP32 binary (`tensorBytes`). A gRPC message
 * and a binary REST body may be twice that plus 64 KiB (room for typed contents' packing and
 * parameters), at least 1 MiB + 64 KiB, at most 16 MiB; a JSON body as much as its values can
 * need (32 bytes a value, at most the JSON value limit, plus 64 KiB), within the same bounds.
 * One function for both transports: the gRPC server's receive limit and the REST body limit.
 */
export function messageLimits(meta: ModelMeta, limits: V2Limits = DEFAULT_LIMITS): MessageLimits {
  const values = modelInputs(meta).reduce((s, t) => s + meta.maxBatch * prod(t.shape), 0);
  const tensorBytes = 4 * values;
  const clamp = (n: number) => Math.min(MESSAGE_CAP_BYTES, Math.max(MESSAGE_FLOOR_BYTES, n));
  const maxMessageBytes = clamp(2 * tensorBytes + ENVELOPE_BYTES);
  const jsonValues = Math.min(limits.maxJsonElements, values + 4096);
  const maxJsonBytes = jsonValues * 32 + ENVELOPE_BYTES;
  return { tensorBytes, maxMessageBytes, jsonValues, maxJsonBytes, maxBodyBytes: Math.max(maxMessageBytes, clamp(maxJsonBytes)) };
}

export interface OversizeContext {
  /** the request's size, when known */
  bytes?: number;
  limits?: V2Limits;
  /** the limit was set by the server's configuration (maxBodyBytes), not derived from the model (messageLimits) */
  configured?: boolean;
}

/**
 * What a client is told when its request is over the size limit (gRPC RESOURCE_EXHAUSTED, REST
 * 413): the limit, the model, why, and what to do.
 */
export function oversizeMessage(meta: ModelMeta, limitBytes: number, ctx: OversizeContext = {}): string {
  const { bytes, limits = DEFAULT_LIMITS, configured = false } = ctx;
  const inputs = modelInputs(meta)
    .map((t) => `[${t.shape.join(', ')}]`)
    .join(' + ');
  const got = bytes === undefined ? 'is larger than' : `of ${bytes} bytes is larger than`;
  const head = `request ${got} this server's limit of ${limitBytes} bytes for model '${meta.name}'`;
  const largest = `batch ${meta.maxBatch} of ${inputs} FP32 values`;
  const derived = messageLimits(meta, limits);
  if (!configured)
    return `${head} (set from its largest request: ${largest}): send smaller batches, at most ${meta.maxBatch} samples per request`;
  // samples whose values fit in the limit as binary FP32 data (the request's header aside; JSON
  // takes up to 8 times more)
  const fits = Math.floor(limitBytes / (derived.tensorBytes / meta.maxBatch));
  const fix =
    fits >= meta.maxBatch
      ? `send smaller batches, at most ${meta.maxBatch} samples per request`
      : fits >= 1
        ? `send smaller batches (at most about ${fits} samples fit as binary tensor data, fewer as JSON), or ask the operator to raise maxBodyBytes`
        : 'not even one sample fits: ask the operator to raise maxBodyBytes';
  return `${head} (set by the server's configuration, maxBodyBytes; the model's largest request, ${largest}, is ${derived.tensorBytes} bytes): ${fix}`;
}

/** The model metadata document (REST GET /v2/models/{m}, gRPC ModelMetadata). */
export function metadataJson(meta: ModelMeta) {
  return {
    name: meta.name,
    versions: meta.versions,
    platform: meta.platform,
    inputs: modelInputs(meta).map((t) => ({ name: t.name, datatype: t.datatype, shape: [-1, ...t.shape] })),
    outputs: [{ name: meta.output.name, datatype: meta.output.datatype, shape: [-1, ...meta.output.shape] }],
    ...(meta.parameters === undefined ? {} : { parameters: meta.parameters }),
  };
}

/** A model version in a request: '' means the server's choice; any other must be one the model has. */
export function checkVersion(meta: ModelMeta, version: string | undefined): void {
  if (version !== undefined && version !== '' && !meta.versions.includes(version))
    throw new ServeError('not-found', `model '${meta.name}' has no version '${version}' (versions: ${meta.versions.join(', ')})`);
}
