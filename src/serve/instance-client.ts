// How a pool reaches one model instance: V2 gRPC (grpcInstanceClient) or V2 REST with binary
// tensors (restInstanceClient), chosen per pool by its `protocol`; the planner's simulator and
// the policy tests plug in simulated instances with the same shape.
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { V2GrpcClient } from './client.js';
import { V2RestClient, V2RestError } from './rest-client.js';

export interface InferCall {
  model: string;
  inputName: string;
  data: Float32Array;
  /** with the batch dimension (1) */
  shape: number[];
  side?: { name: string; data: Float32Array; shape: number[] }[];
  timeoutMs: number;
}

export interface InstanceFailure {
  message: string;
  /** the instance's fault (the request may go to another instance) */
  retryable: boolean;
  /** the instance looks down: take it out of rotation until a health check passes */
  instanceDown: boolean;
}

export interface InstanceClient {
  infer(call: InferCall, done: (out: Float32Array) => void, failed: (e: InstanceFailure) => void): void;
  modelReady(model: string, timeoutMs: number): Promise<boolean>;
  close(): void;
}

/** A V2 gRPC instance. */
export function grpcInstanceClient(address: string): InstanceClient {
  const c = new V2GrpcClient(address);
  return {
    infer(call, done, failed) {
      c.infer(call.model, call.inputName, call.data, call.shape, call.timeoutMs, call.side === undefined ? {} : { side: call.side }).then(
        (r) => done(r.data),
        (e: ServiceError) => {
          const retryable =
            e.code === GrpcStatus.UNAVAILABLE ||
            e.code === GrpcStatus.INTERNAL ||
            e.code === GrpcStatus.UNKNOWN ||
            e.code === GrpcStatus.CANCELLED;
          const instanceDown = e.code === GrpcStatus.UNAVAILABLE && !/injected failure/.test(e.details ?? '');
          failed({ message: e.details || e.message, retryable, instanceDown });
        },
      );
    },
    modelReady: (model, timeoutMs) => c.modelReady(model, timeoutMs),
    close: () => c.close(),
  };
}

/** A V2 REST instance (binary tensor data over HTTP/1.1 keep-alive; `address` is HOST:PORT of its HTTP port). */
export function restInstanceClient(address: string): InstanceClient {
  const c = new V2RestClient(address);
  return {
    infer(call, done, failed) {
      c.infer(call.model, call.inputName, call.data, call.shape, call.timeoutMs, call.side === undefined ? {} : { side: call.side }).then(
        (r) => done(r.data),
        (e: unknown) => {
          // no answer (refused, reset) and 503 are the instance's fault, as gRPC's UNAVAILABLE: it is taken out until
          // a health check passes; any 5xx may pass on another instance; a timeout or a 4xx would not
          if (!(e instanceof V2RestError)) return failed({ message: String(e), retryable: true, instanceDown: false });
          const noAnswer = e.status === 0 && !e.timedOut;
          const instanceDown = (noAnswer || e.status === 503) && !/injected failure/.test(e.message);
          failed({ message: e.message, retryable: noAnswer || e.status >= 500, instanceDown });
        },
      );
    },
    modelReady: (model, timeoutMs) => c.modelReady(model, timeoutMs),
    close: () => c.close(),
  };
}

/** The wire protocols a pool can speak to its instances. */
export type InstanceProtocol = 'grpc' | 'rest';

/** The client maker for a pool's protocol. */
export function instanceConnector(protocol: InstanceProtocol): (address: string) => InstanceClient {
  return protocol === 'rest' ? restInstanceClient : grpcInstanceClient;
}
