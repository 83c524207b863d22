// The Open Inference Protocol (KServe V2) layer shared by model instances and the frontend,
// split as KServe splits it: ./v2/types.ts (requests, responses, models, errors, limits),
// ./v2/dataplane.ts (validation shared by both transports), ./v2/rest.ts (the REST endpoints,
// a fastify plugin) and ./v2/grpc.ts (the gRPC service). This module re-exports all four.
export * from './v2/types.js';
export * from './v2/dataplane.js';
export * from './v2/rest.js';
export * from './v2/grpc.js';
