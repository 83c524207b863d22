// The IDX format (MNIST, Fashion-MNIST): big-endian header, magic 0x00 0x00 <type> <rank>,
// rank 32-bit dimensions, then the data. Files may be gzip-compressed.
import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import { DataFileError } from './errors.js';

export { DataFileError };

export interface IdxArray {
  /** unsigned bytes (the only element type the MNIST family uses) */
  data: Uint8Array;
  shape: number[];
}

const UBYTE = 0x08;

/** The bytes, gunzipped when they start with the gzip magic. */
export function maybeGunzip(raw: Buffer, file = 'buffer'): Buffer {
  if (raw.length >= 2 && raw[0] === 0x1f && raw[1] === 0x8b) {
    try {
      return gunzipSync(raw);
    } catch (e) {
      throw new DataFileError(file, `corrupt gzip data (${(e as Error).message}); delete the file and fetch it again`);
    }
  }
  return raw;
}

/** Parse IDX bytes (gzip-compressed or not). */
export function parseIdx(raw: Buffer, file = 'buffer'): IdxArray {
  const buf = maybeGunzip(raw, file);
  if (buf.length < 4) throw new DataFileError(file, `only ${buf.length} bytes: not an IDX file`);
  if (buf[0] !== 0 || buf[1] !== 0)
    throw new DataFileError(file, `bad IDX magic ${buf.subarray(0, 4).toString('hex')} (expected 0000 08 NN)`);
  const type = buf[2];
  const rank = buf[3];
  if (type !== UBYTE)
    throw new DataFileError(file, `IDX element type 0x${type.toString(16)} is not supported (expected unsigned byte 0x08)`);
  if (rank < 1 || rank > 4) throw new DataFileError(file, `IDX rank ${rank} out of range`);
  const headerLen = 4 + 4 * rank;
  if (buf.length < headerLen) throw new DataFileError(file, 'truncated IDX header');
  const shape: number[] = [];
  for (let i = 0; i < rank; i++) shape.push(buf.readUInt32BE(4 + 4 * i));
  const n = shape.reduce((a, b) => a * b, 1);
  const have = buf.length - headerLen;
  if (have !== n) {
    throw new DataFileError(
      file,
      `IDX dims [${shape.join(', ')}] need ${n} bytes of data, the file has ${have} (${have < n ? 'truncated' : 'trailing bytes'})`,
    );
  }
  return { data: new Uint8Array(buf.buffer, buf.byteOffset + headerLen, n), shape };
}

/** A file's bytes, with a DataFileError naming the file when it cannot be read. */
export function readBytes(file: string): Buffer {
  try {
    return readFileSync(file);
  } catch (e) {
    throw new DataFileError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message);
  }
}

export function readIdx(file: string): IdxArray {
  return parseIdx(readBytes(file), file);
}
