// The Open Inference Protocol (KServe V2), part 1 of 4: its types. What a request and a response
// carry (FP32 tensors, parameters), what a served model is (V2Model: an instance's model or the
// frontend's coded model), errors with a protocol status (ServeError, mapped to HTTP codes in
// ./rest.ts and gRPC codes in ./grpc.ts) and the bounds on what one request may cost. Like
// KServe's protocol package: types here, request validation in ./dataplane.ts, the REST
// endpoints in ./rest.ts (a fastify plugin), the gRPC servicer in ./grpc.ts. Nothing in this
// directory knows about coding.

export const SERVER_NAME = 'coded-inference';
export const SERVER_VERSION = '0.1.0';
export const EXTENSIONS = ['binary_tensor_data'];

// ---------------------------------------------------------------------------
// errors with a protocol status

export type ServeErrorKind = 'invalid' | 'not-found' | 'overloaded' | 'unavailable' | 'deadline' | 'internal';

export class ServeError extends Error {
  /** overloaded: when the client may try again (ms; sent as Retry-After / grpc-retry-pushback-ms) */
  constructor(
    readonly kind: ServeErrorKind,
    message: string,
    readonly retryAfterMs?: number,
  ) {
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
