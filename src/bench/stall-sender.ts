// A child process of `coded bench stall` (./stall.ts) that sends one bad request, so that
// building and sending it costs the load generator nothing: it builds the request, prints
// "ready", waits for a line on stdin, sends, prints one JSON line {"answer", "ms"} and exits.
// Usage: node stall-sender.js KIND HTTP_PORT GRPC_PORT DIM [N]
//   KIND: nested | flat (N MB of them, default 16) | json-max | typed-4m | typed-max | slow (N REST + N gRPC slow senders)
import { createInterface } from 'node:readline';
import { connect as netConnect } from 'node:net';
import { connect as h2Connect } from 'node:http2';
import { performance } from 'node:perf_hooks';
import * as grpc from '@grpc/grpc-js';
import { grpcClientClass } from '../serve/v2/grpc.js';

const [kind, httpPortS, grpcPortS, dimS, nS] = process.argv.slice(2);
const httpPort = Number(httpPortS);
const grpcPort = Number(grpcPortS);
const dim = Number(dimS);
const MB16 = 16 * 1024 * 1024 - 4096;
/**
 * what a slow sender announces: 1 MiB, under the smallest request size limit a server has (1 MiB
 * + 64 KiB, messageLimits in src/serve/v2/dataplane.ts), so that it is kept by the size check and
 * cut off by the request timeout (a larger announcement is refused at once)
 */
const SLOW_BYTES = 1024 * 1024;

function httpPost(body: Buffer): Promise<string> {
  return fetch(`http://127.0.0.1:${httpPort}/v2/models/bench/infer`, {
    method: 'POST',
    body,
    headers: { 'content-type': 'application/json' },
  }).then(
    async (r) => `${r.status} ${(await r.text()).slice(0, 160)}`,
    (e: Error) => `error ${e.message}`,
  );
}

function build(): () => Promise<string> {
  const ser = (grpcClientClass() as unknown as { service: Record<string, { requestSerialize: (r: unknown) => Buffer }> }).service.ModelInfer
    .requestSerialize;
  const raw = new grpc.Client(`127.0.0.1:${grpcPort}`, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': -1,
    'grpc.max_receive_message_length': -1,
  });
  const grpcRaw = (b: Buffer) => () =>
    new Promise<string>((resolve) =>
      raw.makeUnaryRequest(
        '/inference.GRPCInferenceService/ModelInfer',
        (x: Buffer) => x,
        (x: Buffer) => x,
        b,
        (e) => resolve(e === null ? 'OK' : `${grpc.status[e.code]} ${e.details.slice(0, 160)}`),
      ),
    );
  const size = nS !== undefined && Number(nS) > 0 ? Math.min(MB16, Math.round(Number(nS) * 1024 * 1024) - 4096) : MB16;
  if (kind === 'nested') {
    const b = Buffer.alloc(size);
    const head = Buffer.from('{"inputs":[{"name":"input","datatype":"FP32","shape":[1,1],"data":');
    head.copy(b);
    const half = head.length + Math.floor((size - head.length) / 2);
    b.fill('[', head.length, half);
    b.fill(']', half);
    return () => httpPost(b);
  }
  if (kind === 'flat') {
    const b = Buffer.alloc(size, '0,');
    Buffer.from('{"inputs":[{"name":"input","datatype":"FP32","shape":[8388000,1],"data":[').copy(b);
    Buffer.from('0]}]}').copy(b, size - 5);
    return () => httpPost(b);
  }
  if (kind === 'json-max') {
    const b = Buffer.from(
      JSON.stringify({
        inputs: [{ name: 'input', datatype: 'FP32', shape: [64, dim], data: Array.from({ length: 64 * dim }, (_, i) => Math.sin(i)) }],
      }),
    );
    return () => httpPost(b);
  }
  if (kind === 'typed-4m')
    return grpcRaw(
      ser({
        model_name: 'bench',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [4000, 1000], contents: { fp32_contents: new Array(4_000_000).fill(0.5) } }],
      }),
    );
  if (kind === 'typed-max') {
    // the largest typed request the frontend takes: its batch limit (64) or the typed-value limit, whichever is smaller
    const batch = Math.min(64, Math.floor((1 << 18) / dim));
    return grpcRaw(
      ser({
        model_name: 'bench',
        inputs: [{ name: 'input', datatype: 'FP32', shape: [batch, dim], contents: { fp32_contents: new Array(batch * dim).fill(0.5) } }],
      }),
    );
  }
  if (kind === 'slow') {
    const n = Number(nS ?? 20);
    return () =>
      new Promise<string>((resolve) => {
        let rest = 0;
        let grpcCut = 0;
        let last = 0;
        const t0 = performance.now();
        let open = 2 * n;
        const closed = (which: 'rest' | 'grpc') => {
          if (which === 'rest') rest++;
          else grpcCut++;
          last = performance.now() - t0;
          if (--open === 0)
            resolve(`${rest} of ${n} REST and ${grpcCut} of ${n} gRPC slow senders cut off; the last after ${(last / 1000).toFixed(1)} s`);
        };
        setTimeout(() => resolve(`after 60 s: ${rest} of ${n} REST and ${grpcCut} of ${n} gRPC slow senders cut off`), 60_000).unref();
        for (let i = 0; i < n; i++) {
          const s = netConnect(httpPort, '127.0.0.1', () =>
            // binary tensor data (a JSON header of 100 bytes announced): the JSON size check does not apply
            s.write(
              `POST /v2/models/bench/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nInference-Header-Content-Length: 100\r\nContent-Length: ${SLOW_BYTES}\r\n\r\n`,
            ),
          );
          const t = setInterval(() => s.writable && s.write(Buffer.alloc(1024, 0x20)), 200);
          s.on('error', () => {});
          s.on('close', () => {
            clearInterval(t);
            closed('rest');
          });
          const sess = h2Connect(`http://127.0.0.1:${grpcPort}`);
          sess.on('error', () => {});
          const st = sess.request({
            ':method': 'POST',
            ':path': '/inference.GRPCInferenceService/ModelInfer',
            'content-type': 'application/grpc',
            te: 'trailers',
          });
          const h = Buffer.alloc(5);
          h.writeUInt32BE(SLOW_BYTES, 1);
          st.write(h);
          const t2 = setInterval(() => st.writable && st.write(Buffer.alloc(1024)), 200);
          st.on('error', () => {});
          st.on('close', () => {
            clearInterval(t2);
            sess.destroy();
            closed('grpc');
          });
        }
      });
  }
  throw new Error(`unknown kind '${kind}'`);
}

const send = build();
process.stdout.write('ready\n');
const rl = createInterface({ input: process.stdin });
rl.once('line', () => {
  const t0 = performance.now();
  void send().then((answer) => {
    process.stdout.write(JSON.stringify({ answer, ms: performance.now() - t0 }) + '\n');
    process.exit(0);
  });
});
