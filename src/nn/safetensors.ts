// The safetensors format (https://github.com/huggingface/safetensors), read and written in
// TypeScript: 8-byte little-endian header length, a JSON header {name: {dtype, shape,
// data_offsets}, __metadata__: {string: string}}, then the raw little-endian data.
import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, openSync, readFileSync, readSync, renameSync, rmSync, writeSync } from 'node:fs';
import { tensor, Tensor } from '../engine/tensor.js';
import type { DType } from '../engine/dtype.js';

export class SafetensorsError extends Error {
  constructor(source: string, detail: string) {
    super(`${source}: not a valid safetensors file: ${detail}`);
    this.name = 'SafetensorsError';
  }
}

/**
 * Thrown when a file's tensor data no longer matches the SHA-256 digest recorded in its
 * header when it was saved: the file was corrupted (flipped bytes, a bad copy) or edited.
 */
export class SafetensorsDigestError extends Error {
  constructor(source: string, recorded: string, actual: string) {
    super(
      `${source}: corrupt file: its tensor data does not match the SHA-256 digest recorded when it was saved ` +
        `(recorded ${recorded.slice(0, 16)}…, now ${actual.slice(0, 16)}…); restore the file from a clean copy or produce it again`,
    );
    this.name = 'SafetensorsDigestError';
  }
}

/**
 * The __metadata__ key under which writers asked to (saveSafetensors(..., {digest: true}),
 * as every checkpoint writer does) record the SHA-256 of the data section (all tensor bytes
 * after the header, in file order). Readers verify it when present; files without it (older
 * checkpoints, files from other tools) load unverified.
 */
export const DATA_DIGEST_KEY = 'data_sha256';

export interface SerializeOptions {
  /** record the SHA-256 of the tensor data under __metadata__[DATA_DIGEST_KEY] (default false: the bytes stay those of the Python library) */
  digest?: boolean;
}

const TO_ST: Partial<Record<DType, string>> = { float32: 'F32', float64: 'F64', int32: 'I32', int64: 'I64', uint8: 'U8', bool: 'BOOL' };
const FROM_ST: Record<string, { dtype: DType; bytes: number }> = {
  F32: { dtype: 'float32', bytes: 4 },
  F64: { dtype: 'float64', bytes: 8 },
  I32: { dtype: 'int32', bytes: 4 },
  I64: { dtype: 'int64', bytes: 8 },
  U8: { dtype: 'uint8', bytes: 1 },
  BOOL: { dtype: 'bool', bytes: 1 },
};
/** Rank of each dtype in the Rust crate's Dtype enum (the writer sorts by it, descending). */
const ST_RANK: Record<string, number> = { BOOL: 0, U8: 1, I32: 2, F32: 3, F64: 4, I64: 5 };
const MAX_HEADER = 100_000_000;

export interface SafetensorsContent {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** Serialize tensors (copied to CPU) and string metadata into safetensors bytes. */
export function serializeSafetensors(
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata: Record<string, string> = {},
  options: SerializeOptions = {},
): Buffer {
  const entries = [...(tensors instanceof Map ? tensors : Object.entries(tensors))];
  const names = new Set<string>();
  const items = entries.map(([name, t]) => {
    if (name === '__metadata__') throw new Error("a tensor may not be named '__metadata__'");
    if (names.has(name)) throw new Error(`duplicate tensor name '${name}'`);
    names.add(name);
    const st = TO_ST[t.dtype];
    if (st === undefined)
      throw new Error(`tensor '${name}': dtype ${t.dtype} cannot be saved (supported: ${Object.keys(TO_ST).join(', ')})`);
    const data = t.data();
    const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    return { name, st, shape: t.shape, bytes, key: Buffer.from(name, 'utf8') };
  });
  // The Python library's order: dtype descending (I64, F64, F32, I32, U8, BOOL: widest
  // first, so every tensor is aligned to its element size), then name by UTF-8 bytes.
  // Same tensors and metadata (one key) give the same bytes as safetensors.torch.save.
  items.sort((a, b) => ST_RANK[b.st] - ST_RANK[a.st] || Buffer.compare(a.key, b.key));
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new Error(`metadata '${k}' must be a string`);
  }
  if (options.digest === true) {
    const h = createHash('sha256');
    for (const it of items) h.update(it.bytes);
    metadata = { ...metadata, [DATA_DIGEST_KEY]: h.digest('hex') };
  }
  // The JSON is assembled entry by entry: __metadata__ first, then the tensors in data
  // order (as the Python library writes it), and names such as "__proto__" or "0" can
  // neither vanish into a prototype nor be reordered by JS object-key rules.
  const parts: string[] = [];
  if (Object.keys(metadata).length > 0) {
    parts.push(
      `"__metadata__":{${Object.entries(metadata)
        .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
        .join(',')}}`,
    );
  }
  let offset = 0;
  for (const it of items) {
    parts.push(
      `${JSON.stringify(it.name)}:${JSON.stringify({ dtype: it.st, shape: it.shape, data_offsets: [offset, offset + it.bytes.length] })}`,
    );
    offset += it.bytes.length;
  }
  let json = `{${parts.join(',')}}`;
  const raw = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - (raw % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(headerBytes.length));
  return Buffer.concat([prefix, headerBytes, ...items.map((it) => it.bytes)]);
}

function typedView(bytes: Buffer, st: string): Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array {
  const copy = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength); // aligned copy
  switch (st) {
    case 'F32':
      return new Float32Array(copy);
    case 'F64':
      return new Float64Array(copy);
    case 'I32':
      return new Int32Array(copy);
    case 'I64':
      return new BigInt64Array(copy);
    default:
      return new Uint8Array(copy);
  }
}

/** Parse safetensors bytes, validating the header against the spec. */
export function parseSafetensors(buf: Buffer, source = 'buffer'): SafetensorsContent {
  if (buf.length < 8) throw new SafetensorsError(source, `file is ${buf.length} bytes, shorter than the 8-byte header length`);
  const n = buf.readBigUInt64LE(0);
  if (n > BigInt(MAX_HEADER)) throw new SafetensorsError(source, `header length ${n} exceeds the ${MAX_HEADER}-byte limit`);
  const headerLen = Number(n);
  if (8 + headerLen > buf.length)
    throw new SafetensorsError(source, `header length ${headerLen} runs past the end of the ${buf.length}-byte file (truncated?)`);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(buf.subarray(8, 8 + headerLen));
  } catch {
    throw new SafetensorsError(source, 'header is not valid UTF-8');
  }
  if (!text.startsWith('{')) throw new SafetensorsError(source, 'header is not a JSON object (it does not start with "{")');
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new SafetensorsError(source, `header is not valid JSON (${(e as Error).message})`);
  }
  if (header === null || typeof header !== 'object' || Array.isArray(header))
    throw new SafetensorsError(source, 'header is not a JSON object');
  const data = buf.subarray(8 + headerLen);
  const metadata: Record<string, string> = {};
  const specs: { name: string; st: string; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, v] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (v === null || typeof v !== 'object' || Array.isArray(v))
        throw new SafetensorsError(source, '__metadata__ must be an object of strings');
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== 'string') throw new SafetensorsError(source, `__metadata__.${k} is not a string`);
        Object.defineProperty(metadata, k, { value: s, enumerable: true, writable: true, configurable: true }); // safe for "__proto__"
      }
      continue;
    }
    const e = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (e === null || typeof e !== 'object') throw new SafetensorsError(source, `entry '${name}' is not an object`);
    if (typeof e.dtype !== 'string') throw new SafetensorsError(source, `entry '${name}' has no dtype`);
    const kind = FROM_ST[e.dtype];
    if (kind === undefined)
      throw new SafetensorsError(
        source,
        `entry '${name}' has dtype ${e.dtype}, which this reader does not support (${Object.keys(FROM_ST).join(', ')})`,
      );
    if (!Array.isArray(e.shape) || !e.shape.every((d) => Number.isSafeInteger(d) && d >= 0))
      throw new SafetensorsError(source, `entry '${name}' has an invalid shape`);
    const off = e.data_offsets;
    if (!Array.isArray(off) || off.length !== 2 || !off.every((d) => Number.isSafeInteger(d) && d >= 0) || off[0] > off[1]) {
      throw new SafetensorsError(source, `entry '${name}' has invalid data_offsets`);
    }
    const numel = (e.shape as number[]).reduce((a, b) => a * b, 1);
    if (off[1] - off[0] !== numel * kind.bytes) {
      throw new SafetensorsError(
        source,
        `entry '${name}': shape [${(e.shape as number[]).join(', ')}] needs ${numel * kind.bytes} bytes, data_offsets span ${off[1] - off[0]}`,
      );
    }
    specs.push({ name, st: e.dtype, shape: e.shape as number[], begin: off[0], end: off[1] });
  }
  // the data section must be covered exactly, without holes or overlaps
  const sorted = [...specs].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let pos = 0;
  for (const s of sorted) {
    if (s.begin > pos)
      throw new SafetensorsError(source, `entry '${s.name}' starts at data byte ${s.begin}, leaving a hole after byte ${pos}`);
    if (s.begin < pos)
      throw new SafetensorsError(
        source,
        `entry '${s.name}' starts at data byte ${s.begin}, overlapping the tensor that ends at byte ${pos}`,
      );
    pos = s.end;
  }
  if (pos < data.length)
    throw new SafetensorsError(source, `${data.length - pos} trailing bytes after the ${pos} data bytes the header describes`);
  if (pos > data.length)
    throw new SafetensorsError(source, `truncated: the header describes ${pos} data bytes but the file holds ${data.length}`);
  const recorded = metadata[DATA_DIGEST_KEY];
  if (recorded !== undefined) {
    const actual = createHash('sha256').update(data).digest('hex');
    if (actual !== recorded.toLowerCase()) throw new SafetensorsDigestError(source, recorded, actual);
  }
  const tensors = new Map<string, Tensor>();
  for (const s of specs) {
    const arr = typedView(data.subarray(s.begin, s.end), s.st);
    tensors.set(s.name, tensor(arr, s.shape, { dtype: FROM_ST[s.st].dtype }));
  }
  return { tensors, metadata };
}

/** Write atomically (temp file, fsync, then rename): a crash never leaves a partial file. */
export function saveSafetensors(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata: Record<string, string> = {},
  options: SerializeOptions = {},
): void {
  const bytes = serializeSafetensors(tensors, metadata, options);
  const tmp = `${path}.tmp-${process.pid}`;
  let created = false;
  try {
    const fd = openSync(tmp, 'w');
    created = true;
    try {
      for (let off = 0; off < bytes.length; ) off += writeSync(fd, bytes, off);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    if (created) {
      try {
        rmSync(tmp, { force: true });
      } catch {
        // the original error matters more than a failed cleanup
      }
    }
    throw e;
  }
}

export function loadSafetensors(path: string): SafetensorsContent {
  let buf: Buffer;
  try {
    buf = readFileSync(path);
  } catch (e) {
    throw new Error(`cannot read ${path}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`);
  }
  return parseSafetensors(buf, path);
}

/**
 * A safetensors file's __metadata__ (string to string) from its JSON header alone: no tensor
 * data is read or verified. The one header reader (checkpoint metadata, serving's model sniffing).
 */
export function readSafetensorsMetadata(path: string): Record<string, string> {
  const fd = openSync(path, 'r');
  try {
    const len = Buffer.alloc(8);
    if (readSync(fd, len, 0, 8, 0) !== 8) throw new Error(`${path} is not a safetensors file (too short)`);
    const n = Number(len.readBigUInt64LE(0));
    if (!(n > 0 && n <= 100_000_000)) throw new Error(`${path} is not a safetensors file (header length ${n})`);
    const head = Buffer.alloc(n);
    if (readSync(fd, head, 0, n, 8) !== n) throw new Error(`${path}: truncated safetensors header`);
    let header: { __metadata__?: Record<string, string> };
    try {
      header = JSON.parse(head.toString('utf8')) as { __metadata__?: Record<string, string> };
    } catch {
      throw new Error(`${path}: safetensors header is not valid JSON`);
    }
    return header.__metadata__ ?? {};
  } finally {
    closeSync(fd);
  }
}
