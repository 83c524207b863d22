// NumPy's .npy format (versions 1.0, 2.0 and 3.0) and .npz archives (zip of .npy files, stored
// or deflated; unzipped with fflate). Only what tensors files need: little-endian (or
// byte-sized) numeric arrays in C order. Errors name the file and say how to write one that works.
import { createRequire } from 'node:module';

/** fflate, loaded when an .npz is read, so everything else works without node_modules (scripts/gpu-check). */
function fflate(): typeof import('fflate') {
  let fflate: typeof import('fflate');
  try {
    fflate = createRequire(import.meta.url)('fflate') as typeof import('fflate');
  } catch (e) {
    throw new Error(
      `reading an .npz file needs the package 'fflate', which did not load (${(e as Error).message}); install the dependencies (npm install), or pass an .npy or .safetensors file instead`,
    );
  }
  return fflate;
}

export type NpyDtype = 'float32' | 'float64' | 'int64' | 'int32' | 'int16' | 'int8' | 'uint8' | 'bool';

export interface NpyArray {
  dtype: NpyDtype;
  shape: number[];
  data: Float32Array | Float64Array | BigInt64Array | Int32Array | Int16Array | Int8Array | Uint8Array;
}

const DESCRS: Record<string, NpyDtype> = {
  '<f4': 'float32',
  '<f8': 'float64',
  '<i8': 'int64',
  '<i4': 'int32',
  '<i2': 'int16',
  '|i1': 'int8',
  '<i1': 'int8',
  '|u1': 'uint8',
  '<u1': 'uint8',
  '|b1': 'bool',
  '<b1': 'bool',
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/** Parse the bytes of one .npy file; `name` is used in errors. */
export function parseNpy(bytes: Uint8Array, name: string): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b))
    throw new Error(`${name}: not a .npy file (no \\x93NUMPY magic); write it with numpy.save`);
  const major = bytes[6];
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (bytes.length < 12) throw new Error(`${name}: truncated .npy header`);
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else {
    throw new Error(`${name}: .npy format version ${major}.${bytes[7]} is not supported (1.0 to 3.0 are)`);
  }
  if (start + headerLen > bytes.length) throw new Error(`${name}: truncated .npy header`);
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeText === undefined)
    throw new Error(`${name}: malformed .npy header ${JSON.stringify(header.trim())}`);
  const dtype = DESCRS[descr];
  if (dtype === undefined) {
    throw new Error(
      `${name}: dtype '${descr}' is not supported (little-endian float32/float64 and integer arrays are; ` +
        `convert with e.g. x.astype('<f4') before numpy.save)`,
    );
  }
  if (fortran === 'True') throw new Error(`${name}: Fortran-ordered arrays are not supported; save numpy.ascontiguousarray(x)`);
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => {
      const v = Number(s.replace(/L$/, ''));
      if (!Number.isInteger(v) || v < 0) throw new Error(`${name}: malformed shape (${shapeText}) in the .npy header`);
      return v;
    });
  const count = shape.reduce((a, b) => a * b, 1);
  const off = start + headerLen;
  const width = { float32: 4, float64: 8, int64: 8, int32: 4, int16: 2, int8: 1, uint8: 1, bool: 1 }[dtype];
  if (bytes.length - off < count * width)
    throw new Error(
      `${name}: truncated: the header says ${dtype} [${shape.join(', ')}] (${count * width} bytes) but ${bytes.length - off} bytes follow`,
    );
  // copy into an aligned buffer of its own (Buffer#slice would be a view of the whole file)
  const raw = new Uint8Array(bytes.subarray(off, off + count * width)).buffer;
  const data =
    dtype === 'float32'
      ? new Float32Array(raw)
      : dtype === 'float64'
        ? new Float64Array(raw)
        : dtype === 'int64'
          ? new BigInt64Array(raw)
          : dtype === 'int32'
            ? new Int32Array(raw)
            : dtype === 'int16'
              ? new Int16Array(raw)
              : dtype === 'int8'
                ? new Int8Array(raw)
                : new Uint8Array(raw);
  return { dtype, shape, data };
}

/** Write a .npy file's bytes (version 1.0), for tests and for users' convenience. */
export function encodeNpy(a: NpyArray): Uint8Array {
  const descr = Object.entries(DESCRS).find(([, d]) => d === a.dtype)![0];
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const pad = 64 - ((10 + header.length + 1) % 64);
  header += ' '.repeat(pad % 64) + '\n';
  const out = new Uint8Array(10 + header.length + a.data.byteLength);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength), 10 + header.length);
  return out;
}

/** The arrays of an .npz archive by name (without `.npy`). */
export function parseNpz(bytes: Uint8Array, name: string): Map<string, NpyArray> {
  const { unzipSync } = fflate();
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new Error(
      `${name}: not a readable .npz (zip) archive (${(e as Error).message}); write it with numpy.savez(PATH, inputs=x, labels=y)`,
    );
  }
  const out = new Map<string, NpyArray>();
  for (const [f, b] of Object.entries(files)) {
    if (!f.endsWith('.npy')) continue;
    out.set(f.slice(0, -4), parseNpy(b, `${name}:${f}`));
  }
  return out;
}
