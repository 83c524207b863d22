// A small V2 gRPC client (raw tensor contents): used by the frontend to reach instances, by
// the load generator and by tests.
import * as grpc from '@grpc/grpc-js';
import {
  floatsFromBytes,
  fromGrpcParams,
  grpcClientClass,
  grpcFlowControlWindow,
  type GrpcInferResponse,
  type GrpcParam,
} from './v2/grpc.js';
import type { ParamValue } from './v2/types.js';

export interface ClientResult {
  data: Float32Array;
  shape: number[];
  parameters: Record<string, ParamValue>;
}

export interface RemoteModelMeta {
  name: string;
  inputs: { name: string; datatype: string; shape: number[] }[];
  outputs: { name: string; datatype: string; shape: number[] }[];
  /** gRPC form; fromGrpcParams reads it */
  parameters?: Record<string, GrpcParam>;
}

type Callback<T> = (e: grpc.ServiceError | null, r?: T) => void;
type Raw = grpc.Client &
  Record<string, (req: unknown, meta: grpc.Metadata, opts: grpc.CallOptions, cb: Callback<unknown>) => grpc.ClientUnaryCall>;

export class V2GrpcClient {
  private readonly client: Raw;
  constructor(readonly address: string) {
    const C = grpcClientClass();
    this.client = new C(address, grpc.credentials.createInsecure(), {
      'grpc.max_receive_message_length': -1,
      'grpc.initial_reconnect_backoff_ms': 100,
      'grpc.max_reconnect_backoff_ms': 1000,
      ...(grpcFlowControlWindow() > 65535 ? { 'grpc-node.flow_control_window': grpcFlowControlWindow() } : {}),
    }) as unknown as Raw;
  }

  private call<T>(method: string, req: unknown, timeoutMs: number, onCall?: (c: grpc.ClientUnaryCall) => void): Promise<T> {
    return new Promise((resolve, reject) => {
      const c = this.client[method](req, new grpc.Metadata(), { deadline: Date.now() + timeoutMs }, (e, r) =>
        e ? reject(e) : resolve(r as T),
      );
      onCall?.(c);
    });
  }

  async serverReady(timeoutMs: number): Promise<boolean> {
    return (await this.call<{ ready: boolean }>('ServerReady', {}, timeoutMs)).ready;
  }
  async serverLive(timeoutMs: number): Promise<boolean> {
    return (await this.call<{ live: boolean }>('ServerLive', {}, timeoutMs)).live;
  }
  async modelReady(name: string, timeoutMs: number): Promise<boolean> {
    return (await this.call<{ ready: boolean }>('ModelReady', { name, version: '' }, timeoutMs)).ready;
  }
  async serverMetadata(timeoutMs: number): Promise<{ name: string; version: string; extensions: string[] }> {
    return this.call('ServerMetadata', {}, timeoutMs);
  }
  async modelMetadata(name: string, timeoutMs: number): Promise<RemoteModelMeta> {
    return this.call('ModelMetadata', { name, version: '' }, timeoutMs);
  }

  /**
   * ModelInfer with one FP32 input (plus optional side inputs) sent as raw bytes; `onCall`
   * receives the call (for cancel()).
   */
  async infer(
    model: string,
    inputName: string,
    data: Float32Array,
    shape: number[],
    timeoutMs: number,
    opts: { id?: string; onCall?: (c: grpc.ClientUnaryCall) => void; side?: { name: string; data: Float32Array; shape: number[] }[] } = {},
  ): Promise<ClientResult> {
    const all = [{ name: inputName, data, shape }, ...(opts.side ?? [])];
    const req = {
      model_name: model,
      id: opts.id ?? '',
      inputs: all.map((t) => ({ name: t.name, datatype: 'FP32', shape: t.shape })),
      raw_input_contents: all.map((t) => Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)),
    };
    const r = await this.call<GrpcInferResponse>('ModelInfer', req, timeoutMs, opts.onCall);
    const o = r.outputs[0];
    if (o === undefined) throw new Error(`${this.address}: response has no outputs`);
    const d =
      r.raw_output_contents.length > 0 ? floatsFromBytes(r.raw_output_contents[0]) : Float32Array.from(o.contents?.fp32_contents ?? []);
    return { data: d, shape: o.shape.map(Number), parameters: fromGrpcParams(r.parameters) };
  }

  close(): void {
    this.client.close();
  }
}
