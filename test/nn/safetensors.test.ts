// The safetensors reader/writer against the format's spec
// (https://github.com/huggingface/safetensors): round trips, exact header layout, a
// reference file as the Python library writes it, malformed files and atomic saves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { liveTensors, nn, tensor, tidy, type DType, type Tensor } from '../../src/index.js';
import { tmp } from '../helpers/util.js';

const { SafetensorsError, loadSafetensors, parseSafetensors, saveSafetensors, serializeSafetensors } = nn;

type Values = number[] | bigint[];
const WIDTH: Record<string, number> = { F32: 4, F64: 8, I32: 4, I64: 8, U8: 1, BOOL: 1 };
const ST: Record<string, string> = { float32: 'F32', float64: 'F64', int32: 'I32', int64: 'I64', uint8: 'U8', bool: 'BOOL' };

function make(dtype: DType, values: Values, shape: number[]): Tensor {
  switch (dtype) {
    case 'float32':
      return tensor(Float32Array.from(values as number[]), shape);
    case 'float64':
      return tensor(Float64Array.from(values as number[]), shape);
    case 'int32':
      return tensor(Int32Array.from(values as number[]), shape);
    case 'int64':
      return tensor(BigInt64Array.from(values as bigint[]), shape);
    case 'uint8':
      return tensor(Uint8Array.from(values as number[]), shape);
    case 'bool':
      return tensor(Uint8Array.from(values as number[]), shape, { dtype: 'bool' });
    default:
      throw new Error(dtype);
  }
}

/** The little-endian bytes the spec prescribes for these values. */
function leBytes(dtype: DType, values: Values): Buffer {
  const w = WIDTH[ST[dtype]];
  const b = Buffer.alloc(values.length * w);
  values.forEach((v, i) => {
    if (dtype === 'float32') b.writeFloatLE(v as number, i * 4);
    else if (dtype === 'float64') b.writeDoubleLE(v as number, i * 8);
    else if (dtype === 'int32') b.writeInt32LE(v as number, i * 4);
    else if (dtype === 'int64') b.writeBigInt64LE(v as bigint, i * 8);
    else b.writeUInt8(v as number, i);
  });
  return b;
}

interface ParsedHeader {
  n: number;
  text: string;
  json: Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] } | Record<string, string>>;
  data: Buffer;
}
function header(buf: Buffer): ParsedHeader {
  const n = Number(buf.readBigUInt64LE(0));
  const text = buf.subarray(8, 8 + n).toString('utf8');
  return { n, text, json: JSON.parse(text), data: buf.subarray(8 + n) };
}

/** A raw file from a header (string or object, space-padded to 8 unless told) and data bytes. */
function raw(h: string | object, data: number[] | Buffer = [], { pad = true, length }: { pad?: boolean; length?: bigint } = {}): Buffer {
  let text = typeof h === 'string' ? h : JSON.stringify(h);
  if (pad) text += ' '.repeat((8 - (Buffer.byteLength(text) % 8)) % 8);
  const hb = Buffer.from(text, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(length ?? BigInt(hb.length));
  return Buffer.concat([prefix, hb, Buffer.from(data)]);
}

function sameTensor(got: Tensor | undefined, dtype: DType, shape: number[], values: Values): void {
  assert.ok(got !== undefined, 'tensor missing');
  assert.equal(got.dtype, dtype);
  assert.deepEqual(got.shape, shape);
  const d = got.data();
  assert.deepEqual(Array.from(d as ArrayLike<number | bigint>), values);
}

const CASES: { name: string; dtype: DType; shape: number[]; values: Values }[] = [
  { name: 'f32', dtype: 'float32', shape: [2, 3], values: [1.5, -2, 3.25, NaN, Infinity, -0] },
  { name: 'f64', dtype: 'float64', shape: [3], values: [Math.PI, -1e300, 5e-324] },
  { name: 'i32', dtype: 'int32', shape: [2, 2], values: [-2147483648, 2147483647, 0, -7] },
  { name: 'i64', dtype: 'int64', shape: [3, 1], values: [-(2n ** 63n), 2n ** 63n - 1n, 42n] },
  { name: 'u8', dtype: 'uint8', shape: [5], values: [0, 255, 7, 128, 1] },
  { name: 'b', dtype: 'bool', shape: [2, 2], values: [1, 0, 0, 1] },
];

test('round trip of every supported dtype, bit-exact, with the spec byte layout', () => {
  const before = liveTensors();
  tidy(() => {
    const map = new Map(CASES.map((c) => [c.name, make(c.dtype, c.values, c.shape)] as [string, Tensor]));
    const bytes = serializeSafetensors(map);
    const { json, data } = header(bytes);
    for (const c of CASES) {
      const e = json[c.name] as { dtype: string; shape: number[]; data_offsets: [number, number] };
      assert.equal(e.dtype, ST[c.dtype]);
      assert.deepEqual(e.shape, c.shape);
      assert.ok(data.subarray(e.data_offsets[0], e.data_offsets[1]).equals(leBytes(c.dtype, c.values)), `${c.name}: raw bytes`);
    }
    const back = parseSafetensors(bytes);
    assert.deepEqual([...back.tensors.keys()].sort(), CASES.map((c) => c.name).sort());
    for (const c of CASES) sameTensor(back.tensors.get(c.name), c.dtype, c.shape, c.values);
    assert.deepEqual(back.metadata, {});
    assert.ok(!('__metadata__' in json), 'no __metadata__ entry without metadata');
  });
  assert.equal(liveTensors(), before, 'no tensor handles leak');
});

test('scalar (0-d) and empty tensors round trip', () => {
  tidy(() => {
    const map = new Map<string, Tensor>([
      ['s_f32', make('float32', [2.5], [])],
      ['s_i64', make('int64', [-3n], [])],
      ['s_bool', make('bool', [1], [])],
      ['e_f32', make('float32', [], [0])],
      ['e_f64', make('float64', [], [2, 0, 3])],
      ['e_u8', make('uint8', [], [0, 4])],
      ['x', make('int32', [9], [1])],
    ]);
    const bytes = serializeSafetensors(map);
    const { json, data } = header(bytes);
    assert.deepEqual((json.s_f32 as { shape: number[] }).shape, []);
    const e = json.e_f64 as { shape: number[]; data_offsets: [number, number] };
    assert.deepEqual(e.shape, [2, 0, 3]);
    assert.equal(e.data_offsets[0], e.data_offsets[1]);
    assert.equal(data.length, 4 + 8 + 1 + 4, 'only the non-empty tensors occupy data');
    const back = parseSafetensors(bytes).tensors;
    sameTensor(back.get('s_f32'), 'float32', [], [2.5]);
    sameTensor(back.get('s_i64'), 'int64', [], [-3n]);
    sameTensor(back.get('s_bool'), 'bool', [], [1]);
    sameTensor(back.get('e_f32'), 'float32', [0], []);
    sameTensor(back.get('e_f64'), 'float64', [2, 0, 3], []);
    sameTensor(back.get('e_u8'), 'uint8', [0, 4], []);
    sameTensor(back.get('x'), 'int32', [1], [9]);
    // a file of nothing but empty tensors, and one with no tensors at all
    const onlyEmpty = parseSafetensors(serializeSafetensors({ z: make('float32', [], [0]) })).tensors;
    sameTensor(onlyEmpty.get('z'), 'float32', [0], []);
    const none = serializeSafetensors({}, { k: 'v' });
    assert.deepEqual(parseSafetensors(none), { tensors: new Map(), metadata: { k: 'v' } });
  });
});

test('metadata round trips (unicode, empty strings, JSON-looking values)', () => {
  tidy(() => {
    const meta = { format: 'pt', note: 'héllo ✓ 日本', empty: '', json: '{"a":[1,2]}', 'key with spaces': 'x"y\\z' };
    const bytes = serializeSafetensors({ w: make('float32', [1], [1]) }, meta);
    const { json, text } = header(bytes);
    assert.deepEqual(json.__metadata__, meta);
    assert.ok(text.startsWith('{"__metadata__":'), '__metadata__ comes first, as the Python library writes it');
    assert.deepEqual(parseSafetensors(bytes).metadata, meta);
    assert.throws(() => serializeSafetensors({}, { k: 5 as unknown as string }), /metadata 'k' must be a string/);
  });
});

test('header is spec-exact: LE length, "{", space padding to 8, contiguous aligned offsets', () => {
  tidy(() => {
    // names chosen so that name order would misalign the wide tensors
    const map = new Map<string, Tensor>([
      ['a_u8', make('uint8', [1, 2, 3], [3])],
      ['b_f64', make('float64', [1, 2], [2])],
      ['c_i32', make('int32', [5], [1])],
      ['d_bool', make('bool', [1], [1])],
      ['e_i64', make('int64', [7n], [])],
      ['f_f32', make('float32', [], [0])],
      ['g_f32', make('float32', [1, 2, 3], [3])],
    ]);
    // metadata with multi-byte characters: padding must count bytes, not characters
    const metas: Record<string, string>[] = [{}, { n: 'é' }, { n: 'éé' }, { n: '日本語' }];
    for (const meta of metas) {
      const bytes = serializeSafetensors(map, meta);
      const n = bytes.readBigUInt64LE(0);
      assert.ok(n < 2n ** 53n);
      const { text, json, data } = header(bytes);
      assert.equal(Number(n) % 8, 0, 'header length is a multiple of 8');
      assert.equal(Buffer.byteLength(text), Number(n));
      assert.equal(bytes[8], '{'.charCodeAt(0), 'header starts with {');
      const trimmed = text.trimEnd();
      assert.ok(trimmed.endsWith('}'));
      assert.ok(/^ {0,7}$/.test(text.slice(trimmed.length)), 'padded with fewer than 8 spaces only');
      const entries = Object.entries(json)
        .filter(([k]) => k !== '__metadata__')
        .map(([k, v]) => [k, v as { dtype: string; shape: number[]; data_offsets: [number, number] }] as const)
        .sort((x, y) => x[1].data_offsets[0] - y[1].data_offsets[0] || x[1].data_offsets[1] - y[1].data_offsets[1]);
      let pos = 0;
      for (const [k, e] of entries) {
        const w = WIDTH[e.dtype];
        assert.equal(e.data_offsets[0], pos, `${k}: contiguous`);
        assert.equal(e.data_offsets[1] - e.data_offsets[0], e.shape.reduce((a, b) => a * b, 1) * w, `${k}: size`);
        assert.equal(e.data_offsets[0] % w, 0, `${k}: aligned to its element size within the data`);
        assert.equal((8 + Number(n) + e.data_offsets[0]) % w, 0, `${k}: aligned in the file`);
        pos = e.data_offsets[1];
      }
      assert.equal(pos, data.length, 'offsets cover the data exactly');
      assert.equal(8 + Number(n) + pos, bytes.length);
      // the JSON lists tensors in data order
      const order = [...text.matchAll(/"([a-z0-9_]+)":\{"dtype"/g)].map((m) => m[1]);
      assert.deepEqual(
        order,
        entries.map(([k]) => k),
      );
    }
  });
});

test('names that are special to JS objects survive ("__proto__", "0", "constructor")', () => {
  tidy(() => {
    const map = new Map<string, Tensor>([
      ['__proto__', make('float32', [1], [1])],
      ['0', make('float32', [2], [1])],
      ['constructor', make('float32', [3], [1])],
    ]);
    const protoMeta = JSON.parse('{"__proto__":"p"}') as Record<string, string>; // an own "__proto__" key
    const bytes = serializeSafetensors(map, protoMeta);
    const back = parseSafetensors(bytes).tensors;
    sameTensor(back.get('__proto__'), 'float32', [1], [1]);
    sameTensor(back.get('0'), 'float32', [1], [2]);
    sameTensor(back.get('constructor'), 'float32', [1], [3]);
    const meta = parseSafetensors(bytes).metadata;
    assert.deepEqual(Object.keys(meta), ['__proto__']);
    assert.equal(Object.getPrototypeOf(meta), Object.prototype);
    assert.throws(() => serializeSafetensors({ __metadata__: make('float32', [1], [1]) }), /__metadata__/);
  });
});

// {"a": float32 [2] = [1, 2]} exactly as safetensors.torch.save_file writes it:
// compact serde_json, padded with spaces to 56 bytes, then 1.0f and 2.0f little-endian.
const REFERENCE = Buffer.from([
  0x38,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  ...Buffer.from('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', 'latin1'),
  0x20,
  0x20,
  0x00,
  0x00,
  0x80,
  0x3f,
  0x00,
  0x00,
  0x00,
  0x40,
]);
// the same with metadata {"format": "pt"} and a second tensor "b": float32 [] = 3
const REFERENCE_META = Buffer.from([
  0x90,
  0,
  0,
  0,
  0,
  0,
  0,
  0,
  ...Buffer.from(
    '{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[],"data_offsets":[8,12]}}',
    'latin1',
  ),
  0x20,
  0x20,
  0x20,
  0x20,
  0x20,
  0x20,
  0x00,
  0x00,
  0x80,
  0x3f,
  0x00,
  0x00,
  0x00,
  0x40,
  0x00,
  0x00,
  0x40,
  0x40,
]);

test('reads a hand-built reference file, and writes the same bytes', () => {
  assert.equal(REFERENCE.length, 8 + 56 + 8);
  assert.equal(REFERENCE_META.length, 8 + 144 + 12);
  tidy(() => {
    const r = parseSafetensors(REFERENCE, 'reference');
    assert.deepEqual([...r.tensors.keys()], ['a']);
    sameTensor(r.tensors.get('a'), 'float32', [2], [1, 2]);
    assert.deepEqual(r.metadata, {});
    const ours = serializeSafetensors({ a: tensor(new Float32Array([1, 2])) });
    assert.ok(
      ours.equals(REFERENCE),
      `writer bytes differ from the reference:\n${ours.toString('latin1')}\n${REFERENCE.toString('latin1')}`,
    );
    // what the writer produces parses back identically
    const again = parseSafetensors(ours);
    sameTensor(again.tensors.get('a'), 'float32', [2], [1, 2]);
    assert.deepEqual(again.metadata, r.metadata);

    const m = parseSafetensors(REFERENCE_META, 'reference-meta');
    sameTensor(m.tensors.get('a'), 'float32', [2], [1, 2]);
    sameTensor(m.tensors.get('b'), 'float32', [], [3]);
    assert.deepEqual(m.metadata, { format: 'pt' });
    const oursMeta = serializeSafetensors(
      new Map([
        ['b', tensor(new Float32Array([3]), [])],
        ['a', tensor(new Float32Array([1, 2]))],
      ]),
      { format: 'pt' },
    );
    assert.ok(oursMeta.equals(REFERENCE_META), 'writer bytes (with metadata) differ from the reference');
  });
});

test('mixed dtypes are laid out as the Python library lays them out, byte for byte', () => {
  // safetensors 0.8 `save()` of these tensors: dtype descending (I64, F64, F32, I32, U8,
  // BOOL), then by name; 6 spaces of padding
  const pyHeader =
    '{"d_i64":{"dtype":"I64","shape":[1],"data_offsets":[0,8]},"c_f64":{"dtype":"F64","shape":[1],"data_offsets":[8,16]},' +
    '"g_f64":{"dtype":"F64","shape":[1],"data_offsets":[16,24]},"0":{"dtype":"F32","shape":[1],"data_offsets":[24,28]},' +
    '"e_f32":{"dtype":"F32","shape":[1],"data_offsets":[28,32]},"f_i32":{"dtype":"I32","shape":[1],"data_offsets":[32,36]},' +
    '"a_u8":{"dtype":"U8","shape":[1],"data_offsets":[36,37]},"b_bool":{"dtype":"BOOL","shape":[1],"data_offsets":[37,38]}}      ';
  const data = Buffer.concat([
    leBytes('int64', [1n]),
    leBytes('float64', [1]),
    leBytes('float64', [2]),
    leBytes('float32', [1]),
    leBytes('float32', [1]),
    leBytes('int32', [1]),
    leBytes('uint8', [1]),
    leBytes('bool', [1]),
  ]);
  const expected = raw(pyHeader, data, { pad: false });
  assert.equal(pyHeader.length % 8, 0);
  tidy(() => {
    const ours = serializeSafetensors({
      a_u8: make('uint8', [1], [1]),
      b_bool: make('bool', [1], [1]),
      c_f64: make('float64', [1], [1]),
      d_i64: make('int64', [1n], [1]),
      e_f32: make('float32', [1], [1]),
      f_i32: make('int32', [1], [1]),
      g_f64: make('float64', [2], [1]),
      0: make('float32', [1], [1]),
    });
    assert.equal(header(ours).text, pyHeader);
    assert.ok(ours.equals(expected));
  });
});

test('a file written with different but valid choices still parses (unsorted offsets, no padding, extra whitespace)', () => {
  tidy(() => {
    // tensors listed out of data order, header not padded, JSON with spaces and newlines
    const h =
      '{ "b": {"dtype": "I32", "shape": [1], "data_offsets": [4, 8]},\n "a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]} }';
    const data = [...leBytes('float32', [0.5]), ...leBytes('int32', [-1])];
    const r = parseSafetensors(raw(h, data, { pad: false }));
    sameTensor(r.tensors.get('a'), 'float32', [1], [0.5]);
    sameTensor(r.tensors.get('b'), 'int32', [1], [-1]);
  });
});

const F32x2 = { dtype: 'F32', shape: [2], data_offsets: [0, 8] };
const EIGHT = [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40];

const MALFORMED: { what: string; bytes: () => Buffer; error: RegExp }[] = [
  { what: 'shorter than 8 bytes', bytes: () => Buffer.from([1, 2, 3, 4, 5]), error: /5 bytes, shorter than the 8-byte header length/ },
  { what: 'empty file', bytes: () => Buffer.alloc(0), error: /0 bytes, shorter than the 8-byte/ },
  {
    what: 'header length past the end',
    bytes: () => raw({ a: F32x2 }, EIGHT, { length: 1000n }),
    error: /header length 1000 runs past the end of the \d+-byte file/,
  },
  {
    what: 'header length > 100 MB',
    bytes: () => raw({ a: F32x2 }, EIGHT, { length: 100_000_001n }),
    error: /header length 100000001 exceeds the 100000000-byte limit/,
  },
  { what: 'header length 2^64 - 1', bytes: () => raw({}, [], { length: 2n ** 64n - 1n }), error: /exceeds the 100000000-byte limit/ },
  { what: 'non-JSON header', bytes: () => raw('{"a": {"dtype": "F32",'), error: /header is not valid JSON/ },
  {
    what: 'header not valid UTF-8',
    bytes: () => Buffer.concat([Buffer.from([8, 0, 0, 0, 0, 0, 0, 0]), Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d, 0x20])]),
    error: /header is not valid UTF-8/,
  },
  { what: 'header a JSON array', bytes: () => raw('[1, 2]'), error: /header is not a JSON object/ },
  { what: 'header a JSON string', bytes: () => raw('"{}"'), error: /header is not a JSON object/ },
  { what: 'header with leading whitespace', bytes: () => raw(' {}'), error: /does not start with "\{"/ },
  {
    what: 'unknown dtype',
    bytes: () => raw({ a: { dtype: 'X99', shape: [2], data_offsets: [0, 8] } }, EIGHT),
    error: /entry 'a' has dtype X99, which this reader does not support/,
  },
  {
    what: 'unsupported real dtype (F16)',
    bytes: () => raw({ a: { dtype: 'F16', shape: [4], data_offsets: [0, 8] } }, EIGHT),
    error: /dtype F16/,
  },
  { what: 'missing dtype', bytes: () => raw({ a: { shape: [2], data_offsets: [0, 8] } }, EIGHT), error: /entry 'a' has no dtype/ },
  { what: 'entry not an object', bytes: () => raw({ a: 5 }), error: /entry 'a' is not an object/ },
  {
    what: 'negative dimension',
    bytes: () => raw({ a: { dtype: 'F32', shape: [-2], data_offsets: [0, 8] } }, EIGHT),
    error: /entry 'a' has an invalid shape/,
  },
  {
    what: 'fractional offset',
    bytes: () => raw({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 7.5] } }, EIGHT),
    error: /entry 'a' has invalid data_offsets/,
  },
  {
    what: 'reversed offsets',
    bytes: () => raw({ a: { dtype: 'F32', shape: [0], data_offsets: [8, 0] } }, EIGHT),
    error: /entry 'a' has invalid data_offsets/,
  },
  {
    what: 'shape/offset size mismatch',
    bytes: () => raw({ a: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, EIGHT),
    error: /entry 'a': shape \[3\] needs 12 bytes, data_offsets span 8/,
  },
  {
    what: 'hole between tensors',
    bytes: () =>
      raw({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [8, 12] } }, [
        ...EIGHT,
        0,
        0,
        0,
        0,
      ]),
    error: /entry 'b' starts at data byte 8, leaving a hole after byte 4/,
  },
  {
    what: 'hole before the first tensor',
    bytes: () => raw({ a: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, EIGHT),
    error: /entry 'a' starts at data byte 4, leaving a hole after byte 0/,
  },
  {
    what: 'overlapping tensors',
    bytes: () => raw({ a: F32x2, b: { dtype: 'F32', shape: [1], data_offsets: [4, 8] } }, EIGHT),
    error: /entry 'b' starts at data byte 4, overlapping the tensor that ends at byte 8/,
  },
  { what: 'trailing bytes after data', bytes: () => raw({ a: F32x2 }, [...EIGHT, 1, 2]), error: /2 trailing bytes after the 8 data bytes/ },
  {
    what: 'truncated data',
    bytes: () => raw({ a: F32x2 }, EIGHT.slice(0, 5)),
    error: /truncated: the header describes 8 data bytes but the file holds 5/,
  },
  {
    what: 'metadata value not a string',
    bytes: () => raw({ __metadata__: { format: 'pt', epoch: 3 }, a: F32x2 }, EIGHT),
    error: /__metadata__\.epoch is not a string/,
  },
  {
    what: 'metadata not an object',
    bytes: () => raw({ __metadata__: ['pt'], a: F32x2 }, EIGHT),
    error: /__metadata__ must be an object of strings/,
  },
];

for (const c of MALFORMED) {
  test(`malformed file: ${c.what}`, () => {
    const before = liveTensors();
    assert.throws(
      () => parseSafetensors(c.bytes(), 'bad.safetensors'),
      (e: unknown) => {
        assert.ok(e instanceof SafetensorsError, `expected a SafetensorsError, got ${String(e)}`);
        assert.equal(e.name, 'SafetensorsError');
        assert.ok(e.message.startsWith('bad.safetensors: not a valid safetensors file: '), e.message);
        assert.match(e.message, c.error);
        return true;
      },
    );
    assert.equal(liveTensors(), before, 'a failed parse creates no tensors');
  });
}

test('loading a missing file says so, naming the path', () => {
  const dir = tmp('st-test-');
  try {
    const p = join(dir, 'nope.safetensors');
    assert.throws(
      () => loadSafetensors(p),
      (e: unknown) => {
        assert.ok(e instanceof Error);
        assert.match(e.message, /no such file/);
        assert.ok(e.message.includes(p));
        return true;
      },
    );
    // a malformed file on disk is reported with its path
    const bad = join(dir, 'bad.safetensors');
    writeFileSync(bad, Buffer.from([1, 2, 3]));
    assert.throws(
      () => loadSafetensors(bad),
      (e: unknown) => e instanceof SafetensorsError && e.message.startsWith(`${bad}: not a valid safetensors file`),
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('saveSafetensors is atomic: no temp file left, failed saves keep the previous file', () => {
  const dir = tmp('st-test-');
  try {
    tidy(() => {
      const p = join(dir, 'w.safetensors');
      saveSafetensors(p, { a: make('float32', [1, 2], [2]) }, { v: '1' });
      assert.deepEqual(readdirSync(dir), ['w.safetensors'], 'no temp file after a save');
      const v1 = readFileSync(p);
      const l = loadSafetensors(p);
      sameTensor(l.tensors.get('a'), 'float32', [2], [1, 2]);
      assert.deepEqual(l.metadata, { v: '1' });

      // overwrite
      saveSafetensors(p, { a: make('float32', [3, 4, 5], [3]) }, { v: '2' });
      assert.deepEqual(readdirSync(dir), ['w.safetensors']);
      sameTensor(loadSafetensors(p).tensors.get('a'), 'float32', [3], [3, 4, 5]);
      const v2 = readFileSync(p);

      // failure while serializing (a dtype safetensors files here do not hold)
      assert.throws(
        () => saveSafetensors(p, { a: make('float32', [1], [1]), h: make('float32', [1], [1]).to('float16') }),
        /dtype float16 cannot be saved/,
      );
      assert.ok(readFileSync(p).equals(v2), 'previous file intact');
      assert.deepEqual(readdirSync(dir), ['w.safetensors']);

      // failure while writing: the temp path is taken by a directory
      const blocker = `${p}.tmp-${process.pid}`;
      mkdirSync(blocker);
      assert.throws(() => saveSafetensors(p, { a: make('float32', [9], [1]) }));
      assert.ok(readFileSync(p).equals(v2), 'previous file intact');
      rmSync(blocker, { recursive: true });
      assert.deepEqual(readdirSync(dir), ['w.safetensors']);

      // failure while renaming (the target is a non-empty directory): the temp file is removed
      const d = join(dir, 'asdir.safetensors');
      mkdirSync(d);
      writeFileSync(join(d, 'keep'), 'x');
      assert.throws(() => saveSafetensors(d, { a: make('float32', [9], [1]) }));
      assert.deepEqual(readdirSync(dir).sort(), ['asdir.safetensors', 'w.safetensors']);
      assert.ok(existsSync(join(d, 'keep')));
      assert.ok(!v1.equals(v2));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('non-contiguous tensors are written in row-major order', () => {
  tidy(() => {
    const t = make('float32', [1, 2, 3, 4, 5, 6], [2, 3]).transpose(0, 1); // [[1,4],[2,5],[3,6]]
    const back = parseSafetensors(serializeSafetensors({ t })).tensors;
    sameTensor(back.get('t'), 'float32', [3, 2], [1, 4, 2, 5, 3, 6]);
  });
});
