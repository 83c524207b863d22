// MNIST-family datasets (MNIST, Fashion-MNIST): 28x28 grey images in gzip'd IDX files,
// 60 000 train + 10 000 test. Files are found in <data-dir>/<name> (Fashion-MNIST also in
// the Debian package's /usr/share/datasets/fashion-mnist), verified by MD5 on first use
// (remembered by a stamp, see checksum.ts) and, for online users, downloaded.
import { existsSync, readdirSync } from 'node:fs';
import { basename, join } from 'node:path';
import { maybeGunzip, parseIdx, readBytes } from './idx.js';
import { ChecksumError, DataFileError } from './errors.js';
import { isVerified, md5, recordVerified } from './checksum.js';
import { dataRoot, writableDir } from './paths.js';
import { downloadVerified, type DownloadOptions, type Expected } from './download.js';
import { toSplit, type RawImages, type Split } from './split.js';

export { dataRoot };
export type { Split };

export type MnistFamily = 'fashion-mnist' | 'mnist';

/**
 * Per-dataset normalisation: mean and std of all training pixels scaled to [0, 1].
 * MNIST 0.1307 / 0.3081 (the values every PyTorch example uses); Fashion-MNIST 0.2860 / 0.3530
 * (computed the same way on its 60 000 training images).
 */
export const NORMALIZATION: Record<MnistFamily, { mean: number; std: number }> = {
  mnist: { mean: 0.1307, std: 0.3081 },
  'fashion-mnist': { mean: 0.286, std: 0.353 },
};

export const CLASS_NAMES: Record<MnistFamily, string[]> = {
  mnist: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'],
  'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
};

export const FILES = {
  trainImages: 'train-images-idx3-ubyte.gz',
  trainLabels: 'train-labels-idx1-ubyte.gz',
  testImages: 't10k-images-idx3-ubyte.gz',
  testLabels: 't10k-labels-idx1-ubyte.gz',
} as const;
export type FileKey = keyof typeof FILES;

export interface IdxFileSpec {
  /** MD5 of the decompressed IDX content (what is checked: .gz bytes vary between mirrors) */
  md5: string;
  /** MD5 of the upstream .gz file, also accepted as is */
  gzMd5?: string;
  /** records in the file */
  count: number;
}

/**
 * Expected digests. MNIST: the decompressed MD5s of the official files (listed in
 * shared/data/mnist/README.txt and MD5SUMS.uncompressed), .gz MD5s as torchvision lists them.
 * Fashion-MNIST: .gz MD5s of the upstream release (zalandoresearch/fashion-mnist); decompressed
 * MD5s measured on Debian's dataset-fashion-mnist package, whose .gz files are recompressed.
 */
export const FILE_SPECS: Record<MnistFamily, Record<FileKey, IdxFileSpec>> = {
  mnist: {
    trainImages: { md5: '6bbc9ace898e44ae57da46a324031adb', gzMd5: 'f68b3c2dcbeaaa9fbdd348bbdeb94873', count: 60000 },
    trainLabels: { md5: 'a25bea736e30d166cdddb491f175f624', gzMd5: 'd53e105ee54ea40749a09fcbcd1e9432', count: 60000 },
    testImages: { md5: '2646ac647ad5339dbf082846283269ea', gzMd5: '9fb629c4189551a2d022fa330f9573f3', count: 10000 },
    testLabels: { md5: '27ae3e4e09519cfbb04c329615203637', gzMd5: 'ec29112dd5afa0611ce80d1b7f02629c', count: 10000 },
  },
  'fashion-mnist': {
    trainImages: { md5: 'f4a8712d7a061bf5bd6d2ca38dc4d50a', gzMd5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d', count: 60000 },
    trainLabels: { md5: '9018921c3c673c538a1fc5bad174d6f9', gzMd5: '25c81989df183df01b3e8a0aad5dffbe', count: 60000 },
    testImages: { md5: '8181f5470baa50b63fa0f6fddb340f0a', gzMd5: 'bef4ecab320f06d8554ea6380940ec79', count: 10000 },
    testLabels: { md5: '15d484375f8d13e6eb1aabb0c3f46965', gzMd5: 'bb300cfdad3c16e7a12a480ee83cd310', count: 10000 },
  },
};

/** Download mirrors, tried in order (file name appended). */
export const MIRRORS: Record<MnistFamily, string[]> = {
  mnist: [
    'https://ossci-datasets.s3.amazonaws.com/mnist/',
    'http://yann.lecun.com/exdb/mnist/',
    'https://storage.googleapis.com/cvdf-datasets/mnist/',
  ],
  'fashion-mnist': [
    'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
    'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/',
  ],
};

export const DEBIAN_FASHION_MNIST = '/usr/share/datasets/fashion-mnist';

/** Where a dataset's files are looked for, first hit wins: <root>/<name>, <root> itself if named <name>, Debian's dir. */
export function candidateDirs(name: MnistFamily, dataDir?: string): string[] {
  const root = dataRoot(dataDir);
  const dirs = [join(root, name)];
  if (basename(root) === name) dirs.push(root);
  if (name === 'fashion-mnist') dirs.push(DEBIAN_FASHION_MNIST);
  return dirs;
}

/** The files of one split, or of both (the default everywhere). */
export function splitFiles(splits: 'all' | 'test' = 'all'): FileKey[] {
  return splits === 'test' ? ['testImages', 'testLabels'] : (Object.keys(FILES) as FileKey[]);
}

function complete(dir: string, keys: FileKey[]): boolean {
  return keys.every((k) => existsSync(join(dir, FILES[k])));
}

/** The first candidate directory holding all four files (with splits 'test': the two test files), or null. */
export function findDatasetDir(name: MnistFamily, dataDir?: string, splits: 'all' | 'test' = 'all'): string | null {
  const keys = splitFiles(splits);
  return candidateDirs(name, dataDir).find((d) => complete(d, keys)) ?? null;
}

/** How to obtain a dataset, for error messages and `coded datasets`. */
export function howToGet(name: MnistFamily, dataDir?: string): string {
  const into = join(dataRoot(dataDir), name);
  const files = `the four IDX .gz files (${Object.values(FILES).join(', ')})`;
  return name === 'fashion-mnist'
    ? `\`apt-get install --no-install-recommends dataset-fashion-mnist\` (files in ${DEBIAN_FASHION_MNIST}), or downloaded automatically when online, or put ${files} from ${MIRRORS[name][0]} in ${into}`
    : `downloaded automatically when online (from ${MIRRORS[name][0]} or mirrors), or put ${files} in ${into} (e.g. --data-dir /work/shared/data, which holds mnist/)`;
}

/**
 * Check one IDX file against its spec: accepted when already stamped, when the .gz bytes
 * match the upstream MD5, or when the decompressed content matches. Returns the
 * decompressed bytes. Throws ChecksumError naming the file, the digests and how to repair.
 */
export function verifiedIdxBytes(name: MnistFamily, path: string, spec: IdxFileSpec): Buffer {
  const raw = readBytes(path);
  if (isVerified(path, spec.md5)) return maybeGunzip(raw, path);
  const gzOk = spec.gzMd5 !== undefined && md5(raw) === spec.gzMd5;
  const content = maybeGunzip(raw, path);
  if (!gzOk) {
    const actual = md5(content);
    if (actual !== spec.md5) {
      throw new ChecksumError(
        path,
        spec.md5,
        actual,
        'MD5 of the decompressed content',
        `delete it and obtain ${name} again: ${howToGet(name)}`,
      );
    }
  }
  recordVerified(path, spec.md5);
  return content;
}

/** Read (and by default verify) one split's images and labels as raw bytes. */
export function readMnistFamily(
  name: MnistFamily,
  dir: string,
  split: 'train' | 'test',
  { verify = true }: { verify?: boolean } = {},
): RawImages {
  const [ik, lk]: FileKey[] = split === 'train' ? ['trainImages', 'trainLabels'] : ['testImages', 'testLabels'];
  const read = (k: FileKey) => {
    const path = join(dir, FILES[k]);
    return parseIdx(verify ? verifiedIdxBytes(name, path, FILE_SPECS[name][k]) : readBytes(path), path);
  };
  const x = read(ik);
  const y = read(lk);
  const xf = join(dir, FILES[ik]);
  const yf = join(dir, FILES[lk]);
  if (x.shape.length !== 3 || x.shape[1] !== 28 || x.shape[2] !== 28)
    throw new DataFileError(xf, `expected [N, 28, 28] images, got [${x.shape.join(', ')}]`);
  if (y.shape.length !== 1 || y.shape[0] !== x.shape[0])
    throw new DataFileError(yf, `expected ${x.shape[0]} labels (one per image in ${FILES[ik]}), got [${y.shape.join(', ')}]`);
  const bad = y.data.findIndex((v) => v > 9);
  if (bad >= 0) throw new DataFileError(yf, `label ${bad} is ${y.data[bad]}, labels are 0-9: corrupt file or not an MNIST-family file`);
  return { images: x.data, labels: y.data, count: x.shape[0], channels: 1, height: 28, width: 28 };
}

function normOf(name: MnistFamily) {
  const n = NORMALIZATION[name];
  return { mean: [n.mean], std: [n.std] };
}

/** Load a split as normalised tensors (no download: see fetchMnistFamily / loadDataset). */
export function loadMnistFamily(
  name: MnistFamily,
  { dataDir, split, verify = true }: { dataDir?: string; split: 'train' | 'test'; verify?: boolean },
): Split {
  const dir = findDatasetDir(name, dataDir);
  if (dir === null) {
    throw new DataFileError(candidateDirs(name, dataDir).join(' or '), `${name} not found: ${howToGet(name, dataDir)}`);
  }
  return toSplit(readMnistFamily(name, dir, split, { verify }), normOf(name));
}

/**
 * Download the missing files of a dataset into <data root>/<name>, each verified before it
 * is renamed into place. Returns the directory.
 */
export async function fetchMnistFamily(
  name: MnistFamily,
  {
    dataDir,
    mirrors = MIRRORS[name],
    splits = 'all',
    ...o
  }: { dataDir?: string; mirrors?: string[]; splits?: 'all' | 'test' } & DownloadOptions = {},
): Promise<string> {
  const dir = join(dataRoot(dataDir), name);
  const missing = splitFiles(splits).filter((k) => !existsSync(join(dir, FILES[k])));
  if (missing.length > 0 && !writableDir(dir)) {
    throw new DataFileError(
      dir,
      `${name} is incomplete here and the directory is read-only; ${howToGet(name, dataDir)}, or choose a writable --data-dir / CODED_DATA`,
    );
  }
  for (const k of missing) {
    const dest = join(dir, FILES[k]);
    const spec = FILE_SPECS[name][k];
    const expected: Expected[] = [{ md5: spec.md5, of: 'gunzipped' }];
    if (spec.gzMd5) expected.unshift({ md5: spec.gzMd5 });
    await downloadVerified(
      mirrors.map((m) => m + FILES[k]),
      dest,
      expected,
      o,
    );
    recordVerified(dest, spec.md5);
  }
  return dir;
}

/** Files of a dataset directory that are present (for listings). */
export function presentFiles(dir: string): string[] {
  try {
    return readdirSync(dir).filter((f) => (Object.values(FILES) as string[]).includes(f));
  } catch {
    return [];
  }
}
