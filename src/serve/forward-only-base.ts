// Forward-only base models F: a running V2 server (`v2://HOST:PORT/MODEL` over gRPC,
// `http://HOST:PORT/v2/models/MODEL` over REST: Triton, KServe, our own `coded serve
// instance`) or an ONNX file (ONNX Runtime). They give outputs, not gradients: they serve to
// compute the targets of parity training (F's outputs on every input of the data, computed
// once, batched, retried with backoff), never to train through (learned codes need a
// differentiable F: a zoo checkpoint or a TorchScript file).
//
// Training and evaluation call F as a Module on rows of the data; `PrecomputedBase` answers
// them from the outputs computed beforehand, looked up by each row's bytes, and refuses rows
// it has not seen (e.g. augmented ones) with an error saying why.
import { createHash } from 'node:crypto';
import { V2GrpcClient } from './client.js';
import { tensor, type Tensor } from '../engine/tensor.js';
import { Module } from '../nn/module.js';
import { isOnnxPath } from '../models/file-kinds.js';
import { fileSha256, type BaseIdentity } from '../models/base-checkpoint.js';

export interface ForwardOnlySource {
  /** what it is, for messages: the URL or file */
  readonly address: string;
  /** 'v2-grpc' | 'v2-rest' | 'onnx' */
  readonly kind: string;
  /** connect / load; learns the per-example input shape and output shape */
  open(): Promise<{ inputShape: number[]; outputShape: number[] }>;
  /** [batch, ...inputShape] -> [batch, ...outputShape] (one attempt; callers retry) */
  forward(x: Float32Array, batch: number, inputShape: number[]): Promise<Float32Array>;
  close(): Promise<void>;
}

export class ForwardOnlyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ForwardOnlyError';
  }
}

/** Whether `--base` names a forward-only source (a V2 server URL or an ONNX file). */
export function isForwardOnlyBase(base: string): boolean {
  return isV2Url(base) || isOnnxPath(base);
}

export function isV2Url(s: string): boolean {
  return /^v2:\/\//i.test(s) || /^https?:\/\//i.test(s);
}

/** Why a forward-only F cannot be trained through, for `coded train learned` and `--parity-model base`. */
export function noGradientsMessage(base: string, what: string): string {
  const kind = isV2Url(base) ? 'a running V2 server' : 'an ONNX file';
  return (
    `${base} is ${kind}: it computes F's outputs but gives no gradients and no weights, so ${what}. ` +
    'Use a TorchScript export of the same model (torch.jit.trace + save, FILE.pt) or a zoo checkpoint; ' +
    '`coded train parity --base ' +
    base +
    ' --data ...` works with it (forward only)'
  );
}

/** Parse a V2 base address: v2://HOST:PORT/MODEL (gRPC) or http(s)://HOST:PORT/v2/models/MODEL[/versions/V] (REST). */
export function parseV2Url(url: string): { kind: 'v2-grpc' | 'v2-rest'; address: string; model: string; version?: string } {
  const g = /^v2:\/\/([^/\s]+:\d+)\/([^/\s]+)\/?$/i.exec(url);
  if (g !== null) return { kind: 'v2-grpc', address: g[1], model: decodeURIComponent(g[2]) };
  const r = /^(https?:\/\/[^/\s]+)\/v2\/models\/([^/\s]+)(?:\/versions\/([^/\s]+))?\/?$/i.exec(url);
  if (r !== null)
    return { kind: 'v2-rest', address: r[1], model: decodeURIComponent(r[2]), ...(r[3] === undefined ? {} : { version: r[3] }) };
  throw new ForwardOnlyError(`bad V2 base '${url}': use v2://HOST:PORT/MODEL (gRPC) or http://HOST:PORT/v2/models/MODEL (REST)`);
}

const prod = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

class V2GrpcSource implements ForwardOnlySource {
  readonly kind = 'v2-grpc';
  private client: V2GrpcClient | null = null;
  private inputName = 'input';
  constructor(
    readonly address: string,
    private readonly host: string,
    private readonly model: string,
    private readonly timeoutMs: number,
  ) {}
  async open() {
    this.client ??= new V2GrpcClient(this.host);
    const m = await this.client.modelMetadata(this.model, this.timeoutMs);
    if (m.inputs.length !== 1 || m.outputs.length < 1)
      throw new ForwardOnlyError(`${this.address}: model '${this.model}' takes ${m.inputs.length} inputs; a base model F takes one`);
    this.inputName = m.inputs[0].name;
    return { inputShape: m.inputs[0].shape.slice(1).map(Number), outputShape: m.outputs[0].shape.slice(1).map(Number) };
  }
  async forward(x: Float32Array, batch: number, inputShape: number[]) {
    this.client ??= new V2GrpcClient(this.host);
    return (await this.client.infer(this.model, this.inputName, x, [batch, ...inputShape], this.timeoutMs)).data;
  }
  async close() {
    this.client?.close();
    this.client = null;
  }
}

class V2RestSource implements ForwardOnlySource {
  readonly kind = 'v2-rest';
  private inputName = 'input';
  constructor(
    readonly address: string,
    private readonly timeoutMs: number,
  ) {}
  private async json(url: string, init?: RequestInit): Promise<unknown> {
    const r = await fetch(url, { ...init, signal: AbortSignal.timeout(this.timeoutMs) });
    const text = await r.text();
    if (!r.ok) {
      const e = new ForwardOnlyError(`HTTP ${r.status}: ${text.slice(0, 300)}`);
      (e as { status?: number }).status = r.status;
      throw e;
    }
    return JSON.parse(text);
  }
  async open() {
    const m = (await this.json(this.address)) as { inputs?: { name: string; shape: number[] }[]; outputs?: { shape: number[] }[] };
    if (!Array.isArray(m.inputs) || m.inputs.length !== 1 || !Array.isArray(m.outputs) || m.outputs.length < 1) {
      throw new ForwardOnlyError(
        `${this.address}: the model metadata does not describe one input and an output (got ${JSON.stringify(m).slice(0, 200)})`,
      );
    }
    this.inputName = m.inputs[0].name;
    return { inputShape: m.inputs[0].shape.slice(1).map(Number), outputShape: m.outputs[0].shape.slice(1).map(Number) };
  }
  async forward(x: Float32Array, batch: number, inputShape: number[]) {
    const body = JSON.stringify({
      inputs: [{ name: this.inputName, datatype: 'FP32', shape: [batch, ...inputShape], data: Array.from(x) }],
    });
    const r = (await this.json(`${this.address.replace(/\/$/, '')}/infer`, {
      method: 'POST',
      body,
      headers: { 'content-type': 'application/json' },
    })) as { outputs?: { data?: number[] }[] };
    const d = r.outputs?.[0]?.data;
    if (!Array.isArray(d)) throw new ForwardOnlyError(`${this.address}: the infer response has no outputs[0].data`);
    return Float32Array.from(d);
  }
  async close() {}
}

class OnnxSource implements ForwardOnlySource {
  readonly kind = 'onnx';
  private model: import('../models/onnx.js').OnnxModel | null = null;
  constructor(
    readonly address: string,
    private readonly inputShape?: number[],
  ) {}
  async open() {
    const { OnnxModel } = await import('../models/onnx.js');
    this.model = await OnnxModel.load(this.address, this.inputShape === undefined ? {} : { inputShape: this.inputShape });
    const probe = await this.model.run(new Float32Array(prod(this.model.inputShape)), 1);
    return { inputShape: this.model.inputShape, outputShape: this.model.outputShape ?? [probe.data.length] };
  }
  async forward(x: Float32Array, batch: number) {
    return (await this.model!.run(x, batch)).data.slice();
  }
  async close() {
    await this.model?.close();
    this.model = null;
  }
}

export interface SourceOptions {
  /** per request (default 30 s) */
  timeoutMs?: number;
  /** ONNX: per-example input shape for symbolic dimensions */
  inputShape?: number[];
}

export function forwardOnlySource(base: string, o: SourceOptions = {}): ForwardOnlySource {
  const timeoutMs = o.timeoutMs ?? 30_000;
  if (isOnnxPath(base) && !isV2Url(base)) return new OnnxSource(base, o.inputShape);
  const u = parseV2Url(base);
  if (u.kind === 'v2-grpc') return new V2GrpcSource(base, u.address, u.model, timeoutMs);
  return new V2RestSource(base, timeoutMs);
}

export interface RetryOptions {
  /** attempts per request (default 5) */
  attempts?: number;
  /** first backoff (default 200 ms), doubled per retry up to maxBackoffMs (default 5 s) */
  backoffMs?: number;
  maxBackoffMs?: number;
  /** injectable for tests */
  sleep?: (ms: number) => Promise<void>;
  /** told before each retry */
  onRetry?: (attempt: number, error: Error, waitMs: number) => void;
}

/** Errors not worth retrying: the request itself is wrong (V2 INVALID_ARGUMENT / NOT_FOUND, HTTP 400/404). */
function permanent(e: unknown): boolean {
  const code = (e as { code?: unknown }).code;
  const status = (e as { status?: unknown }).status;
  return code === 3 || code === 5 || status === 400 || status === 404 || e instanceof SyntaxError || (e as Error).name === 'OnnxModelError';
}

/** `fn`, retried with exponential backoff on transient failures; the last error says how many attempts were made. */
export async function withRetries<T>(what: string, fn: () => Promise<T>, o: RetryOptions = {}): Promise<T> {
  const attempts = o.attempts ?? 5;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  let wait = o.backoffMs ?? 200;
  for (let a = 1; ; a++) {
    try {
      return await fn();
    } catch (e) {
      const err = e as Error;
      if (permanent(e)) throw new ForwardOnlyError(`${what}: ${err.message}`);
      if (a >= attempts)
        throw new ForwardOnlyError(
          `${what}: failed after ${attempts} attempts (last error: ${err.message.split('\n')[0]}); check that the server is running and reachable at that address`,
        );
      o.onRetry?.(a, err, wait);
      await sleep(wait);
      wait = Math.min(wait * 2, o.maxBackoffMs ?? 5000);
    }
  }
}

export interface ComputeOptions extends RetryOptions {
  /** examples per request (default 64) */
  batch?: number;
  /** progress: examples done of total */
  onProgress?: (done: number, total: number) => void;
}

/**
 * F's outputs [N, ...outputShape] on inputs [N, ...inputShape] (float32, row-major), batched,
 * each request retried with backoff.
 */
export async function computeOutputs(
  src: ForwardOnlySource,
  inputs: Float32Array,
  n: number,
  inputShape: number[],
  outputShape: number[],
  o: ComputeOptions = {},
): Promise<Float32Array> {
  const per = prod(inputShape);
  const outPer = prod(outputShape);
  if (inputs.length !== n * per) throw new Error(`internal: ${inputs.length} input values for ${n} x [${inputShape.join(', ')}]`);
  const batch = o.batch ?? 64;
  const out = new Float32Array(n * outPer);
  for (let s = 0; s < n; s += batch) {
    const b = Math.min(batch, n - s);
    const y = await withRetries(
      `${src.address}: forward of examples ${s}..${s + b - 1}`,
      () => src.forward(inputs.subarray(s * per, (s + b) * per), b, inputShape),
      o,
    );
    if (y.length !== b * outPer)
      throw new ForwardOnlyError(
        `${src.address}: answered ${y.length} values for ${b} examples; its metadata says [${outputShape.join(', ')}] each`,
      );
    out.set(y, s * outPer);
    o.onProgress?.(s + b, n);
  }
  return out;
}

const rowKey = (row: Float32Array) =>
  createHash('sha1')
    .update(new Uint8Array(row.buffer, row.byteOffset, row.byteLength))
    .digest('base64');

/**
 * F as a Module answering from precomputed outputs: each input row is looked up by its bytes.
 * A row that was not precomputed (an augmented query, data of another file) is refused.
 */
export class PrecomputedBase extends Module {
  private readonly table = new Map<string, number>();
  constructor(
    readonly address: string,
    inputs: Float32Array,
    private readonly outputs: Float32Array,
    n: number,
    readonly inputShape: number[],
    readonly outputShape: number[],
  ) {
    super();
    const per = prod(inputShape);
    for (let i = 0; i < n; i++) this.table.set(rowKey(inputs.subarray(i * per, (i + 1) * per)), i);
  }
  forward(x: Tensor): Tensor {
    const per = prod(this.inputShape);
    const outPer = prod(this.outputShape);
    const n = x.shape[0];
    if (prod(x.shape.slice(1)) !== per)
      throw new ForwardOnlyError(
        `${this.address}: F was asked for inputs [${x.shape.join(', ')}]; it was computed on [N, ${this.inputShape.join(', ')}]`,
      );
    const xs = (x.device === 'cpu' ? x : x.to('cpu')).contiguous().dataFloat32();
    const y = new Float32Array(n * outPer);
    for (let i = 0; i < n; i++) {
      const j = this.table.get(rowKey(xs.subarray(i * per, (i + 1) * per)));
      if (j === undefined) {
        throw new ForwardOnlyError(
          `${this.address} is a forward-only F whose outputs were computed once on the data's inputs; ` +
            'it was asked for an input outside the data (augmented training queries need a local F: drop --augment, or use a TorchScript export)',
        );
      }
      y.set(this.outputs.subarray(j * outPer, (j + 1) * outPer), i * outPer);
    }
    const t = tensor(y, [n, ...this.outputShape], { dtype: 'float32' });
    return x.device === 'cpu' ? t : t.to(x.device);
  }
  /** SHA-256 of F's outputs on the data: the identity of a forward-only F (no file to hash). */
  outputsSha256(): string {
    return createHash('sha256')
      .update(new Uint8Array(this.outputs.buffer, this.outputs.byteOffset, this.outputs.byteLength))
      .digest('hex');
  }
}

export interface ForwardOnlyBase {
  model: PrecomputedBase;
  identity: BaseIdentity;
  classes: number;
  format: 'forward-only';
}

/**
 * Open a forward-only F and compute its outputs on all of `inputs` [N, C, H, W] (the whole
 * data: training, validation and test splits are cut from it afterwards). The identity records
 * the URL or file, and the SHA-256 of the ONNX file or, for a server, of F's outputs on the data.
 */
export async function loadForwardOnlyBase(
  base: string,
  inputs: Tensor,
  o: ComputeOptions & SourceOptions & { dataset?: string } = {},
): Promise<ForwardOnlyBase> {
  const src = forwardOnlySource(base, o);
  try {
    const dataShape = inputs.shape.slice(1);
    const opened = await withRetries(`${base}: model metadata`, () => src.open(), o);
    // -1: a dimension the server leaves open; the data's
    if (opened.inputShape.length !== dataShape.length || opened.inputShape.some((d, i) => d !== -1 && d !== dataShape[i])) {
      throw new ForwardOnlyError(
        `${base} takes inputs [${opened.inputShape.join(', ')}] per example, but the data has [${dataShape.join(', ')}]; use data of F's input shape`,
      );
    }
    if (dataShape.length !== 3)
      throw new ForwardOnlyError(
        `${base}: coded training takes image-shaped inputs CxHxW (3 dimensions) for now, got [${dataShape.join(', ')}]`,
      );
    const n = inputs.shape[0];
    const x = inputs.contiguous().dataFloat32();
    let outputShape = opened.outputShape;
    if (outputShape.some((d) => d < 0)) {
      const y = await withRetries(`${base}: probe forward`, () => src.forward(x.subarray(0, prod(dataShape)), 1, dataShape), o);
      outputShape = [y.length];
    }
    if (outputShape.length !== 1)
      throw new ForwardOnlyError(
        `${base} returns [${outputShape.join(', ')}] per example; coding needs one vector per example (logits or regression outputs)`,
      );
    const y = await computeOutputs(src, x, n, dataShape, outputShape, o);
    const model = new PrecomputedBase(base, x, y, n, dataShape, outputShape);
    model.eval();
    const input = { channels: dataShape[0], height: dataShape[1], width: dataShape[2] };
    const sha256 = src.kind === 'onnx' ? fileSha256(base) : model.outputsSha256();
    return {
      model,
      classes: outputShape[0],
      format: 'forward-only',
      identity: {
        path: base,
        sha256,
        dataset: o.dataset ?? 'tensors-file',
        model: src.kind === 'onnx' ? 'onnx' : 'v2',
        input,
        classes: outputShape[0],
      },
    };
  } finally {
    await src.close();
  }
}

/**
 * What parity training needs of forward-only bases (src/train/parity-run.ts's ForwardOnlySupport),
 * with optional progress and retry reports (the CLI passes a progress bar).
 */
export function forwardOnlySupport(
  o: {
    onProgress?: (base: string, done: number, total: number) => void;
    onRetry?: (base: string, attempt: number, e: Error, waitMs: number) => void;
  } = {},
) {
  return {
    is: isForwardOnlyBase,
    noGradients: noGradientsMessage,
    load: (base: string, inputs: Tensor, opts: { dataset: string; inputShape?: number[] }) =>
      loadForwardOnlyBase(base, inputs, {
        ...opts,
        ...(o.onProgress !== undefined ? { onProgress: (d: number) => o.onProgress!(base, d, inputs.shape[0]) } : {}),
        ...(o.onRetry !== undefined ? { onRetry: (a: number, e: Error, ms: number) => o.onRetry!(base, a, e, ms) } : {}),
      }),
  };
}
