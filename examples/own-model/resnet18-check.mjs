#!/usr/bin/env node
// Client checks of examples/own-model/torchvision-resnet18.sh (plain Node 20, no dependencies):
//
//   node resnet18-check.mjs instance URL MODEL REF N
//       V2 REST inference (JSON) of the first N inputs of REF (safetensors `inputs`) on the
//       instance at URL, in batches of 8; compares with PyTorch's outputs (REF `outputs`).
//       Prints one JSON line; exits 1 when the max abs. difference exceeds 1e-4.
//   node resnet18-check.mjs frontend URL APP REF N
//       N queries, two at a time (one coding group of k = 2 per request, Clipper-style
//       POST URL/APP/predict {"input_batch": [x1, x2]}), to a coded frontend; answers marked
//       reconstructed are compared with PyTorch's outputs for their inputs (top-1 agreement,
//       relative L2 error), originals by max abs. difference. Prints one JSON line; exits 1 when
//       no answer was reconstructed or an original differs by more than 1e-4.
import { readFileSync } from 'node:fs';

function readSafetensors(path, name) {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8'));
  const t = header[name];
  if (t === undefined || t.dtype !== 'F32') throw new Error(`${path}: no F32 tensor '${name}'`);
  const [a, b] = t.data_offsets;
  const bytes = buf.subarray(8 + n + a, 8 + n + b);
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  return { shape: t.shape, data };
}

const row = (t, i) => {
  const per = t.shape.slice(1).reduce((x, y) => x * y, 1);
  return t.data.subarray(i * per, (i + 1) * per);
};
const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);
const maxAbsDiff = (a, b) => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i])), 0);
const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));

async function post(url, body) {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await res.text();
  if (!res.ok) throw new Error(`${url}: HTTP ${res.status}: ${text.slice(0, 300)}`);
  return JSON.parse(text);
}

async function instance(url, model, x, ref, n) {
  let maxDiff = 0;
  let agree = 0;
  for (let s = 0; s < n; s += 8) {
    const b = Math.min(8, n - s);
    const data = [];
    for (let i = s; i < s + b; i++) data.push(...row(x, i));
    const ans = await post(`${url}/v2/models/${model}/infer`, {
      inputs: [{ name: 'input', shape: [b, ...x.shape.slice(1)], datatype: 'FP32', data }],
    });
    const out = Float32Array.from(ans.outputs[0].data);
    for (let i = 0; i < b; i++) {
      const o = out.subarray(i * 10, (i + 1) * 10);
      const r = row(ref, s + i);
      maxDiff = Math.max(maxDiff, maxAbsDiff(o, r));
      if (argmax(o) === argmax(r)) agree++;
    }
  }
  const ok = maxDiff <= 1e-4;
  console.log(
    JSON.stringify({ check: 'instance', model, url, queries: n, maxAbsDiff: maxDiff, top1Agreement: agree / n, withinTolerance: ok }),
  );
  if (!ok) process.exitCode = 1;
}

async function frontend(url, app, x, ref, n) {
  let originals = 0;
  let reconstructed = 0;
  let defaults = 0;
  let maxDiffOriginal = 0;
  let recAgree = 0;
  const relErrs = [];
  const latencies = [];
  for (let s = 0; s + 1 < n; s += 2) {
    const t0 = performance.now();
    const ans = await post(`${url}/${app}/predict`, { input_batch: [Array.from(row(x, s)), Array.from(row(x, s + 1))] });
    latencies.push(performance.now() - t0);
    ans.batch_predictions.forEach((p, j) => {
      const r = row(ref, s + j);
      const o = Float32Array.from(p.output);
      if (p.default) defaults++;
      else if (p.reconstructed) {
        reconstructed++;
        if (argmax(o) === argmax(r)) recAgree++;
        relErrs.push(norm(o.map((v, i) => v - r[i])) / norm(r));
      } else {
        originals++;
        maxDiffOriginal = Math.max(maxDiffOriginal, maxAbsDiff(o, r));
      }
    });
  }
  relErrs.sort((a, b) => a - b);
  latencies.sort((a, b) => a - b);
  const q = (v, p) => (v.length === 0 ? null : v[Math.min(v.length - 1, Math.floor(p * v.length))]);
  const ok = reconstructed > 0 && maxDiffOriginal <= 1e-4;
  console.log(
    JSON.stringify({
      check: 'frontend',
      queries: originals + reconstructed + defaults,
      originals,
      reconstructed,
      defaults,
      originalsMaxAbsDiff: maxDiffOriginal,
      reconstructedTop1AgreementWithF: reconstructed ? recAgree / reconstructed : null,
      reconstructedRelErrMedian: q(relErrs, 0.5),
      reconstructedRelErrMean: relErrs.length ? relErrs.reduce((a, b) => a + b, 0) / relErrs.length : null,
      requestLatencyMsMedian: q(latencies, 0.5),
      requestLatencyMsMax: latencies.at(-1) ?? null,
      ok,
    }),
  );
  if (!ok) process.exitCode = 1;
}

const [mode, url, name, refFile, nArg] = process.argv.slice(2);
const x = readSafetensors(refFile, 'inputs');
const ref = readSafetensors(refFile, 'outputs');
const n = Math.min(Number(nArg ?? 16), x.shape[0]);
if (mode === 'instance') await instance(url, name, x, ref, n);
else if (mode === 'frontend') await frontend(url, name, x, ref, n);
else {
  console.error('usage: resnet18-check.mjs instance|frontend URL MODEL|APP REF N');
  process.exit(2);
}
