// Element types and devices, by name.

export const DTYPES = ['float32', 'float64', 'int32', 'int64', 'uint8', 'bool', 'float16', 'bfloat16'] as const;
export type DType = (typeof DTYPES)[number];

export function dtypeCode(d: DType): number {
  const i = DTYPES.indexOf(d);
  if (i < 0) throw new TypeError(`unknown dtype '${String(d)}': use one of ${DTYPES.join(', ')}`);
  return i;
}

export function dtypeName(code: number): DType {
  const d = DTYPES[code];
  if (d === undefined) throw new TypeError(`unknown dtype code ${code}`);
  return d;
}

export function isFloating(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'float16' || d === 'bfloat16';
}

export type TensorData = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array;

export function dtypeOfArray(a: TensorData): DType {
  if (a instanceof Float32Array) return 'float32';
  if (a instanceof Float64Array) return 'float64';
  if (a instanceof Int32Array) return 'int32';
  if (a instanceof BigInt64Array) return 'int64';
  if (a instanceof Uint8Array) return 'uint8';
  if (a instanceof Int8Array) return 'int32';
  throw new TypeError('unsupported typed array');
}

/** 'cpu', 'cuda' or 'cuda:N'. */
export type Device = string;

export function checkDevice(d: Device): Device {
  if (!/^(cpu|cuda(:\d+)?)$/.test(d)) throw new TypeError(`unknown device '${d}': use 'cpu', 'cuda' or 'cuda:N'`);
  return d;
}
