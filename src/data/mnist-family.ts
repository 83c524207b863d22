// MNIST-family datasets (MNIST, Fashion-MNIST): 28x28 grey images in IDX files.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { homedir } from 'node:os';
import { readIdx, DataFileError } from './idx.js';
import { tensor, type Tensor } from '../engine/tensor.js';
import { tidy } from '../engine/scope.js';

export type MnistFamily = 'fashion-mnist' | 'mnist';

export interface Split {
  /** normalised images [N, 1, 28, 28] float32 */
  images: Tensor;
  /** labels [N] int64 */
  labels: Tensor;
  size: number;
}

/** Per-dataset normalisation (mean, std of the training pixels scaled to [0, 1]). */
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

/** Data dir precedence: explicit > CODED_DATA > ~/.cache/coded. */
export function dataRoot(explicit?: string): string {
  return explicit ?? process.env.CODED_DATA ?? join(homedir(), '.cache', 'coded');
}

/** Where a dataset's files are looked for, first hit wins. */
export function candidateDirs(name: MnistFamily, dataDir?: string): string[] {
  const root = dataRoot(dataDir);
  const dirs = [join(root, name), root];
  if (name === 'fashion-mnist') dirs.push('/usr/share/datasets/fashion-mnist');
  return dirs;
}

export function findDatasetDir(name: MnistFamily, dataDir?: string): string | null {
  return candidateDirs(name, dataDir).find((d) => existsSync(join(d, FILES.trainImages))) ?? null;
}

function howToGet(name: MnistFamily): string {
  return name === 'fashion-mnist'
    ? 'install it with `apt-get install --no-install-recommends dataset-fashion-mnist`, or put the four IDX .gz files in <data-dir>/fashion-mnist'
    : 'put the four IDX .gz files (train-images-idx3-ubyte.gz, ...) in <data-dir>/mnist, e.g. --data-dir ../shared/data';
}

function loadSplit(dir: string, images: string, labels: string, norm: { mean: number; std: number }): Split {
  const x = readIdx(join(dir, images));
  const y = readIdx(join(dir, labels));
  if (x.shape.length !== 3 || x.shape[1] !== 28 || x.shape[2] !== 28) throw new DataFileError(join(dir, images), `expected [N, 28, 28] images, got [${x.shape.join(', ')}]`);
  if (y.shape.length !== 1 || y.shape[0] !== x.shape[0]) throw new DataFileError(join(dir, labels), `expected ${x.shape[0]} labels, got [${y.shape.join(', ')}]`);
  const n = x.shape[0];
  return tidy(() => {
    const raw = tensor(x.data, [n, 1, 28, 28], { dtype: 'float32' });
    const imagesT = raw.div(255).sub(norm.mean).div(norm.std).keep();
    const labelsT = tensor(y.data, [n], { dtype: 'int64' }).keep();
    return { images: imagesT, labels: labelsT, size: n };
  });
}

export function loadMnistFamily(name: MnistFamily, { dataDir, split }: { dataDir?: string; split: 'train' | 'test' }): Split {
  const dir = findDatasetDir(name, dataDir);
  if (dir === null) {
    throw new DataFileError(candidateDirs(name, dataDir).join(' or '), `${name} not found: ${howToGet(name)}`);
  }
  const norm = NORMALIZATION[name];
  return split === 'train' ? loadSplit(dir, FILES.trainImages, FILES.trainLabels, norm) : loadSplit(dir, FILES.testImages, FILES.testLabels, norm);
}
