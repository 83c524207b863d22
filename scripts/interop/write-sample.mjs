#!/usr/bin/env node
// The TypeScript half of scripts/interop/safetensors-interop.sh (needs the compiled dist/).
//   node scripts/interop/write-sample.mjs write OUT.safetensors EXPECTED.json
//     writes a sample with our writer, and the values it holds as JSON for Python
//     (int64 as exact integer literals, non-finite floats as NaN / Infinity, which
//     Python's json reads).
//   node scripts/interop/write-sample.mjs check IN.safetensors EXPECTED.json
//     reads a file with our parser and compares it with EXPECTED.json as Python's side
//     writes it: {"metadata": {...}, "tensors": {name: {"dtype": "F32", "shape": [...],
//     "values": [...]}}}, int64 values as decimal strings.
// Prints one short line; exit 0 only if everything matches.
import { readFileSync, writeFileSync } from 'node:fs';
import { isDeepStrictEqual } from 'node:util';

const { tensor, tidy, nn } = await import(new URL('../../dist/src/index.js', import.meta.url).href);

const ST = { float32: 'F32', float64: 'F64', int32: 'I32', int64: 'I64', uint8: 'U8', bool: 'BOOL' };
const ARRAY = {
  float32: Float32Array,
  float64: Float64Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  bool: Uint8Array,
};

// name, dtype, shape, values
const SAMPLE = [
  ['f32', 'float32', [2, 3], [1.5, -2.25, NaN, Infinity, -Infinity, 0.1]],
  ['f64', 'float64', [3], [Math.PI, -1e-300, 1e300]],
  ['i32', 'int32', [2, 2], [-2147483648, 2147483647, 0, -7]],
  ['i64', 'int64', [4], [-(2n ** 63n), 2n ** 63n - 1n, 2n ** 53n + 1n, -5n]],
  ['u8', 'uint8', [2, 2], [0, 255, 7, 128]],
  ['mask', 'bool', [5], [1, 0, 0, 1, 1]],
  ['scalar', 'float32', [], [7.25]],
  ['empty', 'float32', [0, 3], []],
  ['empty_i64', 'int64', [0], []],
  ['blocks.0.wéight', 'float64', [1, 2, 1], [0.1, -0.2]],
];
const METADATA = { format: 'pt', note: 'héllo ✓', json: '{"a": [1, 2]}', empty: '' };

function write(out, expectedPath) {
  const expected = { metadata: METADATA, tensors: {} };
  tidy(() => {
    const tensors = new Map();
    for (const [name, dtype, shape, values] of SAMPLE) {
      const arr = ARRAY[dtype].from(values);
      tensors.set(name, tensor(arr, shape, { dtype }));
      // the values as stored (float32 rounding included)
      expected.tensors[name] = { dtype: ST[dtype], shape, values: Array.from(arr) };
    }
    nn.saveSafetensors(out, tensors, METADATA);
  });
  const literal = (v) =>
    typeof v === 'bigint'
      ? `@@${v}@@`
      : typeof v === 'number' && !Number.isFinite(v)
        ? `@@${Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity'}@@`
        : v;
  writeFileSync(expectedPath, JSON.stringify(expected, (_k, v) => literal(v)).replace(/"@@(.*?)@@"/g, '$1'));
  return `TS wrote ${SAMPLE.length} tensors (${new Set(SAMPLE.map((s) => s[1])).size} dtypes) + ${Object.keys(METADATA).length} metadata keys`;
}

function check(path, expectedPath) {
  const exp = JSON.parse(readFileSync(expectedPath, 'utf8'));
  const problems = [];
  tidy(() => {
    const { tensors, metadata } = nn.loadSafetensors(path);
    if (!isDeepStrictEqual(metadata, exp.metadata))
      problems.push(`metadata ${JSON.stringify(metadata)} != ${JSON.stringify(exp.metadata)}`);
    const names = [...tensors.keys()].sort();
    if (!isDeepStrictEqual(names, Object.keys(exp.tensors).sort())) problems.push(`names ${names} != ${Object.keys(exp.tensors).sort()}`);
    for (const [name, e] of Object.entries(exp.tensors)) {
      const t = tensors.get(name);
      if (t === undefined) continue;
      if (ST[t.dtype] !== e.dtype) problems.push(`${name}: dtype ${t.dtype}, expected ${e.dtype}`);
      if (!isDeepStrictEqual(t.shape, e.shape)) problems.push(`${name}: shape [${t.shape}], expected [${e.shape}]`);
      const got = Array.from(t.data());
      const want = e.dtype === 'I64' ? e.values.map((v) => BigInt(v)) : e.values.map(Number); // bool: true -> 1
      const same = got.length === want.length && got.every((v, i) => v === want[i] || (Number.isNaN(v) && Number.isNaN(want[i])));
      if (!same) problems.push(`${name}: values [${got.slice(0, 8)}] != [${want.slice(0, 8)}]`);
    }
  });
  if (problems.length > 0) throw new Error(problems.join('; '));
  return `TS read ${Object.keys(exp.tensors).length} Python tensors + metadata ok`;
}

const [mode, file, expected] = process.argv.slice(2);
try {
  if (mode === 'write' && file && expected) console.log(write(file, expected));
  else if (mode === 'check' && file && expected) console.log(check(file, expected));
  else {
    console.log('usage: write-sample.mjs write|check FILE.safetensors EXPECTED.json');
    process.exit(2);
  }
} catch (e) {
  console.log(`${mode}: ${e.message}`);
  process.exit(1);
}
