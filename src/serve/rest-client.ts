// A small V2 REST client over HTTP/1.1 keep-alive connections, with tensors sent and received as
// binary data (the binary tensor data extension: a JSON header, `Inference-Header-Content-Length`,
// then the raw little-endian bytes). It speaks to `coded serve instance`, Triton and KServe alike.
// The frontend reaches instances with it when a pool's protocol is "rest", and the load generator
// reaches frontends with it: per request it costs a fraction of a gRPC call's CPU in Node (measured
// side by side in docs/RESULTS.md, "The frontend's transport"), which on a small machine is time
// the instances and the frontend's policy get back.
import http from 'node:http';
import type { ClientResult } from './client.js';
import type { ParamValue } from './v2/types.js';

/** An error answer or a failed exchange; `status` is the HTTP status (0: no answer: connection refused, reset, timed out). */
export class V2RestError extends Error {
  /** the gRPC status code that means the same, so callers can treat both protocols alike (8: RESOURCE_EXHAUSTED) */
  readonly code: number;
  constructor(
    message: string,
    readonly status: number,
    /** no answer came because the request timed out */
    readonly timedOut = false,
  ) {
    super(message);
    this.name = 'V2RestError';
    this.code = grpcCodeOf(status, timedOut);
  }
}

function grpcCodeOf(status: number, timedOut: boolean): number {
  if (timedOut) return 4; // DEADLINE_EXCEEDED
  if (status === 0) return 14; // UNAVAILABLE
  if (status === 400) return 3; // INVALID_ARGUMENT
  if (status === 404) return 5; // NOT_FOUND
  if (status === 429) return 8; // RESOURCE_EXHAUSTED
  if (status === 503) return 14;
  if (status === 504) return 4;
  return 13; // INTERNAL
}

/** A request failed on a reused keep-alive connection before any answer (see V2RestClient.request). */
class StaleConnection extends Error {}

export interface RestModelMeta {
  name: string;
  inputs: { name: string; datatype: string; shape: number[] }[];
  outputs: { name: string; datatype: string; shape: number[] }[];
  parameters?: Record<string, ParamValue>;
}

/** `host:port` or `http://host:port[/]` -> { host, port }. */
export function parseRestAddress(address: string): { host: string; port: number } {
  const m = /^(?:http:\/\/)?(\[[^\]]+\]|[^:/\s]+):(\d+)\/?$/i.exec(address);
  if (m === null) throw new Error(`bad REST address '${address}': use HOST:PORT or http://HOST:PORT`);
  return { host: m[1].replace(/^\[|\]$/g, ''), port: Number(m[2]) };
}

export class V2RestClient {
  private readonly agent: http.Agent;
  private readonly host: string;
  private readonly port: number;

  /**
   * `maxSockets`: connections to the server at most (default 256), one per request in flight;
   * further requests wait in this client until one is free.
   */
  constructor(
    readonly address: string,
    opts: { maxSockets?: number } = {},
  ) {
    const a = parseRestAddress(address);
    this.host = a.host;
    this.port = a.port;
    // keep-alive: one TCP connection per request in flight, reused; no Nagle delay on small bodies
    this.agent = new http.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 256, noDelay: true });
  }

  /**
   * One exchange. A keep-alive connection the server closed while it sat idle in the pool can fail
   * the request sent on it before any answer (ECONNRESET / socket hang up, the race Node's docs
   * describe for `reusedSocket`): that request never reached the server, so it is sent once more on
   * a fresh connection of its own, not another pooled one (after an idle spell longer than the
   * server's keep-alive timeout every pooled connection is stale). Inference requests are pure: at
   * worst a server computes one twice.
   */
  private request(
    method: 'GET' | 'POST',
    path: string,
    timeoutMs: number,
    body?: Buffer[],
    headers: http.OutgoingHttpHeaders = {},
  ): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
    return this.exchange(method, path, timeoutMs, body, headers).catch((e: unknown) => {
      // again on a connection of its own: after an idle spell every pooled connection may be stale
      if (e instanceof StaleConnection) return this.exchange(method, path, timeoutMs, body, headers, true);
      throw e;
    });
  }

  private exchange(
    method: 'GET' | 'POST',
    path: string,
    timeoutMs: number,
    body: Buffer[] | undefined,
    headers: http.OutgoingHttpHeaders,
    fresh = false,
  ) {
    return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
      let answered = false;
      let length = 0;
      for (const b of body ?? []) length += b.length;
      const req = http.request(
        {
          host: this.host,
          port: this.port,
          path,
          method,
          // fresh: a new connection outside the pool (closed after this exchange)
          agent: fresh ? false : this.agent,
          timeout: timeoutMs,
          headers: body === undefined ? headers : { ...headers, 'content-length': length },
        },
        (res) => {
          answered = true;
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: chunks.length === 1 ? chunks[0] : Buffer.concat(chunks) }),
          );
          res.on('error', (e) => reject(new V2RestError(`${this.address}: ${e.message}`, 0)));
        },
      );
      req.on('timeout', () => req.destroy(new V2RestError(`${this.address}: no answer within ${timeoutMs} ms`, 0, true)));
      req.on('error', (e: NodeJS.ErrnoException) => {
        if (e instanceof V2RestError) return reject(e);
        const stale = req.reusedSocket && !answered && (e.code === 'ECONNRESET' || e.code === 'EPIPE');
        reject(stale ? new StaleConnection(e.message) : new V2RestError(`${this.address}: ${e.message}`, 0));
      });
      if (body === undefined) req.end();
      else {
        for (let i = 0; i < body.length - 1; i++) req.write(body[i]);
        req.end(body[body.length - 1]);
      }
    });
  }

  private static errorOf(address: string, r: { status: number; body: Buffer }): V2RestError {
    let msg = r.body.toString('utf8', 0, Math.min(r.body.length, 2000));
    try {
      const j = JSON.parse(msg) as { error?: unknown };
      if (typeof j.error === 'string') msg = j.error;
    } catch {
      // not JSON: keep the text
    }
    return new V2RestError(`${address}: HTTP ${r.status}: ${msg}`, r.status);
  }

  private async getJson<T>(path: string, timeoutMs: number): Promise<T> {
    const r = await this.request('GET', path, timeoutMs);
    if (r.status !== 200) throw V2RestClient.errorOf(this.address, r);
    return JSON.parse(r.body.toString('utf8')) as T;
  }

  async serverReady(timeoutMs: number): Promise<boolean> {
    return (await this.request('GET', '/v2/health/ready', timeoutMs)).status === 200;
  }
  async serverLive(timeoutMs: number): Promise<boolean> {
    return (await this.request('GET', '/v2/health/live', timeoutMs)).status === 200;
  }
  async modelReady(name: string, timeoutMs: number): Promise<boolean> {
    return (await this.request('GET', `/v2/models/${encodeURIComponent(name)}/ready`, timeoutMs)).status === 200;
  }
  async modelMetadata(name: string, timeoutMs: number): Promise<RestModelMeta> {
    return this.getJson<RestModelMeta>(`/v2/models/${encodeURIComponent(name)}`, timeoutMs);
  }

  /** Infer with one FP32 input (plus optional side inputs), all sent and received as binary data. */
  async infer(
    model: string,
    inputName: string,
    data: Float32Array,
    shape: number[],
    timeoutMs: number,
    opts: { id?: string; side?: { name: string; data: Float32Array; shape: number[] }[] } = {},
  ): Promise<ClientResult> {
    const all = opts.side === undefined ? [{ name: inputName, data, shape }] : [{ name: inputName, data, shape }, ...opts.side];
    const header = Buffer.from(
      JSON.stringify({
        ...(opts.id === undefined ? {} : { id: opts.id }),
        inputs: all.map((t) => ({ name: t.name, datatype: 'FP32', shape: t.shape, parameters: { binary_data_size: t.data.byteLength } })),
        parameters: { binary_data_output: true },
      }),
      'utf8',
    );
    const r = await this.request(
      'POST',
      `/v2/models/${encodeURIComponent(model)}/infer`,
      timeoutMs,
      [header, ...all.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength))],
      { 'content-type': 'application/octet-stream', 'inference-header-content-length': header.length },
    );
    if (r.status !== 200) throw V2RestClient.errorOf(this.address, r);
    return parseBinaryInferResponse(this.address, r.body, r.headers['inference-header-content-length']);
  }

  close(): void {
    this.agent.destroy();
  }
}

/** The first output of a V2 REST infer response: binary (header length given) or JSON. */
export function parseBinaryInferResponse(address: string, body: Buffer, headerLength: string | string[] | undefined): ClientResult {
  const hl = headerLength === undefined ? body.length : Number(Array.isArray(headerLength) ? headerLength[0] : headerLength);
  if (!Number.isInteger(hl) || hl < 0 || hl > body.length)
    throw new V2RestError(
      `${address}: bad Inference-Header-Content-Length '${String(headerLength)}' for a ${body.length}-byte answer`,
      502,
    );
  let head: {
    outputs?: { name: string; shape: number[]; data?: number[]; parameters?: { binary_data_size?: number } }[];
    parameters?: Record<string, ParamValue>;
  };
  try {
    head = JSON.parse(body.toString('utf8', 0, hl));
  } catch (e) {
    throw new V2RestError(`${address}: the answer's JSON header does not parse (${(e as Error).message})`, 502);
  }
  const o = head.outputs?.[0];
  if (o === undefined) throw new V2RestError(`${address}: response has no outputs`, 502);
  let data: Float32Array;
  const size = o.parameters?.binary_data_size;
  if (size !== undefined) {
    if (hl + size > body.length)
      throw new V2RestError(`${address}: output '${o.name}' claims ${size} bytes; the answer has ${body.length - hl}`, 502);
    // copy into an aligned buffer of its own (the body's offset need not be a multiple of 4)
    data = new Float32Array(size / 4);
    new Uint8Array(data.buffer).set(body.subarray(hl, hl + size));
  } else data = Float32Array.from(o.data ?? []);
  return { data, shape: o.shape.map(Number), parameters: head.parameters ?? {} };
}
