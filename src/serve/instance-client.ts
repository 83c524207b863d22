// How a pool reaches one model instance. The server speaks V2 gRPC (grpcInstanceClient); the
// planner's simulator and the policy tests plug in simulated instances with the same shape.
import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { V2GrpcClient } from './client.js';

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
