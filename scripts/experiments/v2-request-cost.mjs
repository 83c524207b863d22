// How long the V2 REST layer holds the event loop for the worst requests (issue 15), in one
// process with nothing else to do: the synchronous parse and validation of each body
// (parseRestInfer: the JSON bound scan, JSON.parse, flattening, checks) and of the response,
// the median of 5 runs each, and one 16 MB Buffer.concat (what receiving a 16 MB body costs
// at least). CPU work, so it does not depend on what else runs on the machine as much as
// latencies do. Run after `npx tsc -p tsconfig.json`:
//   node scripts/experiments/v2-request-cost.mjs
import { performance } from 'node:perf_hooks';
import { parseRestInfer, buildRestResponse } from '../../dist/src/serve/v2.js';

const dim = 1000;
const meta = {
  name: 'm',
  platform: 't',
  versions: ['1'],
  input: { name: 'input', datatype: 'FP32', shape: [dim] },
  output: { name: 'output', datatype: 'FP32', shape: [dim] },
  maxBatch: 64,
};
const MB = (n) => n * 1024 * 1024 - 4096;
const nested = (size) => {
  const b = Buffer.alloc(size);
  const head = Buffer.from('{"inputs":[{"name":"input","datatype":"FP32","shape":[1,1],"data":');
  head.copy(b);
  const half = head.length + Math.floor((size - head.length) / 2);
  b.fill('[', head.length, half);
  b.fill(']', half);
  return b;
};
const flat = (size) => {
  const b = Buffer.alloc(size, '0,');
  Buffer.from('{"inputs":[{"name":"input","datatype":"FP32","shape":[8388000,1],"data":[').copy(b);
  Buffer.from('0]}]}').copy(b, size - 5);
  return b;
};
const largest = Buffer.from(
  JSON.stringify({
    inputs: [{ name: 'input', datatype: 'FP32', shape: [64, dim], data: Array.from({ length: 64 * dim }, (_, i) => Math.sin(i)) }],
  }),
);
const median = (f) => {
  const t = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    f();
    t.push(performance.now() - t0);
  }
  return t.sort((a, b) => a - b)[2];
};
const parse = (b) => () => {
  try {
    parseRestInfer(meta, b, undefined);
  } catch {
    // refused: that is the point
  }
};
const rows = [
  ['16 MB nested JSON (depth scan)', median(parse(nested(MB(16))))],
  ['2 MB nested JSON (depth scan)', median(parse(nested(MB(2))))],
  ['16 MB flat JSON array (value count)', median(parse(flat(MB(16))))],
  ['2 MB flat JSON array (value count)', median(parse(flat(MB(2))))],
  [
    `the largest JSON request the frontend takes (64 x ${dim} values, ${(largest.length / 1e6).toFixed(1)} MB): parse`,
    median(parse(largest)),
  ],
  [
    `... and its JSON response`,
    median(() =>
      buildRestResponse(
        meta,
        { id: '', outputs: [{ name: 'output', shape: [64, dim], data: new Float32Array(64 * dim).fill(0.5) }], parameters: {} },
        false,
      ),
    ),
  ],
  [
    'receiving a 16 MB body at least: 256 chunks of 64 KiB allocated and concatenated',
    median(() => {
      const parts = [];
      for (let i = 0; i < 256; i++) parts.push(Buffer.alloc(65536));
      Buffer.concat(parts);
    }),
  ],
];
for (const [name, ms] of rows) console.log(`${name}: ${ms.toFixed(1)} ms`);
