// The CIFAR-10 / CIFAR-100 binary formats (https://www.cs.toronto.edu/~kriz/cifar.html).
// CIFAR-10 record: 1 label byte (0-9) + 3072 pixel bytes. CIFAR-100 record: 1 coarse label
// byte (0-19) + 1 fine label byte (0-99) + 3072 pixel bytes. The pixels are the red plane,
// then green, then blue, each 32x32 row-major: exactly [3, 32, 32] (CHW) order.
import { readFileSync } from 'node:fs';
import { DataFileError } from './errors.js';
import type { RawImages } from './split.js';

export type CifarVariant = 'cifar10' | 'cifar100';

export const CIFAR_PIXELS = 3 * 32 * 32;
export const LABEL_BYTES: Record<CifarVariant, number> = { cifar10: 1, cifar100: 2 };
export const RECORD_BYTES: Record<CifarVariant, number> = { cifar10: 1 + CIFAR_PIXELS, cifar100: 2 + CIFAR_PIXELS };
export const NUM_CLASSES: Record<CifarVariant, number> = { cifar10: 10, cifar100: 100 };
export const NUM_COARSE_CLASSES = 20;

export interface CifarRecords extends RawImages {
  /** CIFAR-100 only: the superclass of each record (0-19) */
  coarseLabels?: Uint8Array;
}

/** Parse the records of one CIFAR binary file. `labels` are the fine labels for CIFAR-100. */
export function parseCifar(buf: Uint8Array, variant: CifarVariant, file = 'buffer', expectedRecords?: number): CifarRecords {
  const rec = RECORD_BYTES[variant];
  const name = variant === 'cifar10' ? 'CIFAR-10' : 'CIFAR-100';
  if (buf.length === 0) throw new DataFileError(file, `empty file: not a ${name} binary file; delete it and fetch it again`);
  if (buf.length % rec !== 0) {
    throw new DataFileError(
      file,
      `${buf.length} bytes is not a whole number of ${rec}-byte ${name} records (${Math.floor(buf.length / rec)} records + ${buf.length % rec} bytes): truncated, corrupt or not a ${name} binary file; delete it and fetch it again`,
    );
  }
  const count = buf.length / rec;
  if (expectedRecords !== undefined && count !== expectedRecords) {
    throw new DataFileError(
      file,
      `${count} ${name} records, expected ${expectedRecords}: truncated or not the official file; delete it and fetch it again`,
    );
  }
  const images = new Uint8Array(count * CIFAR_PIXELS);
  const labels = new Uint8Array(count);
  const coarse = variant === 'cifar100' ? new Uint8Array(count) : undefined;
  const nFine = NUM_CLASSES[variant];
  for (let i = 0; i < count; i++) {
    const o = i * rec;
    const fine = buf[o + LABEL_BYTES[variant] - 1];
    if (fine >= nFine)
      throw new DataFileError(
        file,
        `record ${i} has label ${fine}, ${name} labels are 0-${nFine - 1}: corrupt file or another dataset's file`,
      );
    if (coarse) {
      const c = buf[o];
      if (c >= NUM_COARSE_CLASSES)
        throw new DataFileError(
          file,
          `record ${i} has coarse label ${c}, CIFAR-100 coarse labels are 0-19: corrupt file or another dataset's file`,
        );
      coarse[i] = c;
    }
    labels[i] = fine;
    images.set(buf.subarray(o + LABEL_BYTES[variant], o + rec), i * CIFAR_PIXELS);
  }
  return { images, labels, count, channels: 3, height: 32, width: 32, ...(coarse ? { coarseLabels: coarse } : {}) };
}

export function readCifar(file: string, variant: CifarVariant, expectedRecords?: number): CifarRecords {
  let buf: Buffer;
  try {
    buf = readFileSync(file);
  } catch (e) {
    throw new DataFileError(file, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message);
  }
  return parseCifar(buf, variant, file, expectedRecords);
}
