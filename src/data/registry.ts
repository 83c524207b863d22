// The dataset registry: what each dataset is (classes, shape, normalisation, where it
// comes from), loading one as tensors with a seeded validation hold-out, and a listing of
// what is present locally for `coded datasets`.
//
// Normalisation (x = (pixel/255 - mean) / std, per channel):
//   mnist          0.1307 / 0.3081   mean and std of the 60 000 training images' pixels
//   fashion-mnist  0.2860 / 0.3530   the same statistics for Fashion-MNIST
//   cifar10        mean (0.4914, 0.4822, 0.4465), std (0.2023, 0.1994, 0.2010): the values of
//                  the standard CIFAR recipe (kuangliu/pytorch-cifar) the reference accuracies
//                  were obtained with. The means are the training set's per-channel pixel
//                  means; the stds are per-image stds averaged, smaller than the whole-set
//                  stds (about 0.247, 0.243, 0.261).
//   cifar100       the same numbers as CIFAR-10, as the papers' reference code uses them
//                  (CIFAR-100's own statistics are about (0.507, 0.487, 0.441) / (0.267, 0.256, 0.276)).
//   synthetic      nominal 0.5 / 0.25 (patterns are centred on grey; see synthetic.ts).
import { existsSync } from 'node:fs';
import type { Device } from '../engine/dtype.js';
import { dispose } from '../engine/scope.js';
import { DatasetUnavailableError } from './errors.js';
import { checkDataDir, dataRoot } from './paths.js';
import { isVerified } from './checksum.js';
import type { DownloadOptions } from './download.js';
import { paddingFill } from './augment.js';
import { takeRaw, toSplit, validationIndices, type Normalization, type RawImages, type Split } from './split.js';
import {
  CLASS_NAMES,
  FILES,
  FILE_SPECS,
  NORMALIZATION as MNIST_NORMALIZATION,
  candidateDirs,
  fetchMnistFamily,
  findDatasetDir,
  howToGet,
  readMnistFamily,
  type MnistFamily,
} from './mnist-family.js';
import {
  CIFAR10_CLASSES,
  CIFAR100_CLASSES,
  CIFAR_SPECS,
  cifarArchiveCandidates,
  cifarCandidateDirs,
  cifarClassNames,
  cifarHowToGet,
  fetchCifar,
  findCifarDir,
  readCifarSplit,
  type CifarSpec,
} from './cifar.js';
import { SYNTHETIC_DEFAULTS, SYNTHETIC_NORMALIZATION, syntheticSplit, type SyntheticOptions } from './synthetic.js';
import type { CifarVariant } from './cifar-binary.js';

export const DATASET_NAMES = ['fashion-mnist', 'mnist', 'cifar10', 'cifar100', 'synthetic'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];
export const DEFAULT_DATASET: DatasetName = 'fashion-mnist';
/** Size of the validation hold-out taken from the training set by default. */
export const DEFAULT_VALIDATION = 5000;

export interface DatasetInfo {
  name: DatasetName;
  title: string;
  classes: string[];
  channels: number;
  height: number;
  width: number;
  /** official split sizes (before any validation hold-out) */
  trainSize: number;
  testSize: number;
  normalization: Normalization;
  /** recommended training augmentation: CIFAR's random crop (4-pixel padding) + flip, or none */
  augmentation: 'crop-flip' | 'none';
  homepage: string;
}

const CIFAR_NORMALIZATION: Normalization = { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] };

function mnistInfo(name: MnistFamily): DatasetInfo {
  const n = MNIST_NORMALIZATION[name];
  return {
    name,
    title: name === 'mnist' ? 'MNIST handwritten digits' : 'Fashion-MNIST (Zalando article images)',
    classes: CLASS_NAMES[name].slice(),
    channels: 1,
    height: 28,
    width: 28,
    trainSize: 60000,
    testSize: 10000,
    normalization: { mean: [n.mean], std: [n.std] },
    augmentation: 'none',
    homepage: name === 'mnist' ? 'http://yann.lecun.com/exdb/mnist/' : 'https://github.com/zalandoresearch/fashion-mnist',
  };
}

/** Metadata of a dataset (synthetic: for the given generator options). */
export function datasetInfo(name: DatasetName, synthetic: SyntheticOptions = {}): DatasetInfo {
  switch (name) {
    case 'mnist':
    case 'fashion-mnist':
      return mnistInfo(name);
    case 'cifar10':
    case 'cifar100':
      return {
        name,
        title: name === 'cifar10' ? 'CIFAR-10 (32x32 colour images, 10 classes)' : 'CIFAR-100 (32x32 colour images, 100 fine classes)',
        classes: (name === 'cifar10' ? CIFAR10_CLASSES : CIFAR100_CLASSES).slice(),
        channels: 3,
        height: 32,
        width: 32,
        trainSize: 50000,
        testSize: 10000,
        normalization: { mean: [...CIFAR_NORMALIZATION.mean], std: [...CIFAR_NORMALIZATION.std] },
        augmentation: 'crop-flip',
        homepage: 'https://www.cs.toronto.edu/~kriz/cifar.html',
      };
    case 'synthetic': {
      const o = { ...SYNTHETIC_DEFAULTS, ...synthetic };
      return {
        name,
        title: 'synthetic class patterns plus noise (for tests)',
        classes: Array.from({ length: o.classes }, (_, i) => `class ${i}`),
        channels: o.channels,
        height: o.height,
        width: o.width,
        trainSize: o.trainSize,
        testSize: o.testSize,
        normalization: {
          mean: Array(o.channels).fill(SYNTHETIC_NORMALIZATION.mean),
          std: Array(o.channels).fill(SYNTHETIC_NORMALIZATION.std),
        },
        augmentation: 'none',
        homepage: 'generated (src/data/synthetic.ts)',
      };
    }
    default:
      throw new DatasetUnavailableError(String(name), `unknown dataset '${String(name)}': use one of ${DATASET_NAMES.join(', ')}`);
  }
}

export function isDatasetName(s: string): s is DatasetName {
  return (DATASET_NAMES as readonly string[]).includes(s);
}

export interface LoadDatasetOptions extends DownloadOptions {
  /** data root (--data-dir); default $CODED_DATA, then ~/.cache/coded */
  dataDir?: string;
  /** training samples held out for validation (default 5000; synthetic: a tenth of train); 0 for none */
  validation?: number;
  /** seed of the validation hold-out (default 0) */
  seed?: number;
  /** download when missing (default true) */
  download?: boolean;
  /** verify MNIST-family files' MD5s (default true; cached by stamps) */
  verify?: boolean;
  /** device for the tensors (default cpu) */
  device?: Device;
  /** generator options for `synthetic` */
  synthetic?: SyntheticOptions;
  /** CIFAR only: override parts of the archive description (mirror URLs; miniature archives in tests) */
  cifar?: Partial<CifarSpec>;
  /** progress messages (downloads, verification, extraction) */
  log?: (message: string) => void;
}

export interface Dataset {
  name: DatasetName;
  info: DatasetInfo;
  /** directory the files were read from (null for synthetic) */
  location: string | null;
  train: Split;
  /** held out from the official training set; null when validation is 0 */
  validation: Split | null;
  test: Split;
  /** indices into the official training set of train and validation samples (ascending) */
  trainIndices: Int32Array;
  validationIndices: Int32Array;
  /** CIFAR-100: coarse labels (0-19) of train, validation and test samples, in the same order */
  coarseLabels?: { train: Uint8Array; validation: Uint8Array | null; test: Uint8Array };
  /** per-channel fill for "zero padding" in augmentation (black pixels, normalised) */
  paddingFill: number[];
}

/**
 * Make sure a dataset's files are present: find them, else download them (unless
 * download is false). Returns their directory (null for synthetic).
 */
export async function ensureDataset(
  name: DatasetName,
  o: Omit<LoadDatasetOptions, 'validation' | 'seed' | 'device' | 'synthetic'> & { splits?: 'all' | 'test' } = {},
): Promise<string | null> {
  checkDataDir(o.dataDir);
  switch (name) {
    case 'synthetic':
      return null;
    case 'mnist':
    case 'fashion-mnist': {
      const splits = o.splits ?? 'all';
      const dir = findDatasetDir(name, o.dataDir, splits);
      if (dir !== null) return dir;
      if (o.download === false) {
        throw new DatasetUnavailableError(
          name,
          `${name} not found (looked in ${candidateDirs(name, o.dataDir).join(', ')}): ${howToGet(name, o.dataDir)}`,
        );
      }
      o.log?.(`${name}${splits === 'test' ? ' (test set)' : ''} not found locally; downloading into ${dataRoot(o.dataDir)}/${name} ...`);
      return fetchMnistFamily(name, { ...o, splits });
    }
    case 'cifar10':
    case 'cifar100':
      return fetchCifar(name, o, { ...CIFAR_SPECS[name], ...o.cifar });
    default:
      throw new DatasetUnavailableError(String(name), `unknown dataset '${String(name)}': use one of ${DATASET_NAMES.join(', ')}`);
  }
}

/**
 * Load a dataset as normalised tensors: train (minus the validation hold-out),
 * validation and test. Files are located (downloaded when missing and allowed) and
 * verified; the hold-out is a seeded function of `seed`. Dispose with disposeDataset().
 */
export async function loadDataset(name: DatasetName = DEFAULT_DATASET, o: LoadDatasetOptions = {}): Promise<Dataset> {
  const info = datasetInfo(name, o.synthetic);
  const location = await ensureDataset(name, o);
  let train: RawImages;
  let test: RawImages;
  let coarse: { train: Uint8Array; test: Uint8Array } | null = null;
  if (name === 'synthetic') {
    train = syntheticSplit('train', o.synthetic);
    test = syntheticSplit('test', o.synthetic);
  } else if (name === 'mnist' || name === 'fashion-mnist') {
    train = readMnistFamily(name, location!, 'train', { verify: o.verify });
    test = readMnistFamily(name, location!, 'test', { verify: o.verify });
  } else {
    const spec = { ...CIFAR_SPECS[name], ...o.cifar };
    const tr = readCifarSplit(name, location!, 'train', spec);
    const te = readCifarSplit(name, location!, 'test', spec);
    info.classes = cifarClassNames(name, location, spec);
    if (tr.coarseLabels && te.coarseLabels) coarse = { train: tr.coarseLabels, test: te.coarseLabels };
    train = tr;
    test = te;
  }
  const valSize = o.validation ?? (name === 'synthetic' ? Math.floor(train.count / 10) : DEFAULT_VALIDATION);
  const hold =
    valSize > 0
      ? validationIndices(train.count, valSize, o.seed ?? 0)
      : { train: Int32Array.from({ length: train.count }, (_, i) => i), validation: new Int32Array(0) };
  const device = { device: o.device };
  const trainRaw = valSize > 0 ? takeRaw(train, hold.train) : train;
  const ds: Dataset = {
    name,
    info,
    location,
    train: toSplit(trainRaw, info.normalization, device),
    validation: valSize > 0 ? toSplit(takeRaw(train, hold.validation), info.normalization, device) : null,
    test: toSplit(test, info.normalization, device),
    trainIndices: hold.train,
    validationIndices: hold.validation,
    paddingFill: paddingFill(info.normalization),
  };
  if (coarse) {
    const pick = (idx: Int32Array) => Uint8Array.from(idx, (i) => coarse!.train[i]);
    ds.coarseLabels = { train: pick(hold.train), validation: valSize > 0 ? pick(hold.validation) : null, test: coarse.test };
  }
  return ds;
}

/** A dataset's test split alone (for evaluation). */
export interface TestSet {
  name: DatasetName;
  info: DatasetInfo;
  /** directory the files were read from (null for synthetic) */
  location: string | null;
  test: Split;
  /** CIFAR-100: coarse labels of the test samples */
  coarseLabels?: Uint8Array;
  paddingFill: number[];
}

/**
 * Load only a dataset's test split: MNIST-family training files are neither required,
 * downloaded nor read (CIFAR comes as one archive: it is fetched whole when missing, but only
 * the test batch is read). Dispose with disposeTestSet().
 */
export async function loadTestSet(
  name: DatasetName = DEFAULT_DATASET,
  o: Omit<LoadDatasetOptions, 'validation' | 'seed'> = {},
): Promise<TestSet> {
  const info = datasetInfo(name, o.synthetic);
  const location = await ensureDataset(name, { ...o, splits: 'test' });
  let test: RawImages;
  let coarse: Uint8Array | undefined;
  if (name === 'synthetic') test = syntheticSplit('test', o.synthetic);
  else if (name === 'mnist' || name === 'fashion-mnist') test = readMnistFamily(name, location!, 'test', { verify: o.verify });
  else {
    const spec = { ...CIFAR_SPECS[name], ...o.cifar };
    const te = readCifarSplit(name, location!, 'test', spec);
    info.classes = cifarClassNames(name, location, spec);
    coarse = te.coarseLabels;
    test = te;
  }
  return {
    name,
    info,
    location,
    test: toSplit(test, info.normalization, { device: o.device }),
    ...(coarse !== undefined ? { coarseLabels: coarse } : {}),
    paddingFill: paddingFill(info.normalization),
  };
}

/** Release a test set's tensors. */
export function disposeTestSet(ts: TestSet): void {
  dispose([ts.test]);
}

/** Release a dataset's tensors. */
export function disposeDataset(ds: Dataset): void {
  dispose([ds.train, ds.validation, ds.test].filter((s): s is Split => s !== null));
}

export interface DatasetDescription {
  name: DatasetName;
  title: string;
  default: boolean;
  present: boolean;
  /** where the files were found (null when absent or generated) */
  location: string | null;
  /** true when every file carries a valid verification stamp; false when not yet verified; null when not applicable */
  verified: boolean | null;
  /** directories searched */
  searched: string[];
  howToGet: string;
  classes: number;
  shape: [number, number, number];
  train: number;
  test: number;
  normalization: Normalization;
  note?: string;
}

/** What exists locally, for `coded datasets` (cheap: no hashing). */
export function describeDatasets(dataDir?: string): DatasetDescription[] {
  checkDataDir(dataDir);
  return DATASET_NAMES.map((name) => {
    const info = datasetInfo(name);
    const base = {
      name,
      title: info.title,
      default: name === DEFAULT_DATASET,
      classes: info.classes.length,
      shape: [info.channels, info.height, info.width] as [number, number, number],
      train: info.trainSize,
      test: info.testSize,
      normalization: info.normalization,
    };
    if (name === 'synthetic') {
      return {
        ...base,
        present: true,
        location: null,
        verified: null,
        searched: [],
        howToGet: 'generated on demand (deterministic for its options)',
      };
    }
    if (name === 'mnist' || name === 'fashion-mnist') {
      const location = findDatasetDir(name, dataDir);
      const verified =
        location === null
          ? null
          : (Object.keys(FILES) as (keyof typeof FILES)[]).every((k) => isVerified(`${location}/${FILES[k]}`, FILE_SPECS[name][k].md5));
      return {
        ...base,
        present: location !== null,
        location,
        verified,
        searched: candidateDirs(name, dataDir),
        howToGet: howToGet(name, dataDir),
      };
    }
    const variant = name as CifarVariant;
    const location = findCifarDir(variant, dataDir);
    const archive = location === null ? (cifarArchiveCandidates(variant, dataDir).find((p) => existsSync(p)) ?? null) : null;
    return {
      ...base,
      present: location !== null || archive !== null,
      location: location ?? archive,
      verified: null,
      searched: cifarCandidateDirs(variant, dataDir),
      howToGet: cifarHowToGet(variant, dataDir),
      ...(archive !== null ? { note: 'archive found: verified and extracted on first use' } : {}),
    };
  });
}

/** A plain-text table of describeDatasets() for the terminal. */
export function formatDatasets(rows: DatasetDescription[]): string {
  const out: string[] = [];
  for (const r of rows) {
    const status = r.present
      ? r.verified === true
        ? 'present, verified'
        : r.verified === false
          ? 'present, verified on first use'
          : 'present'
      : 'missing';
    out.push(`${r.name}${r.default ? ' (default)' : ''}: ${r.title}`);
    out.push(
      `  ${r.classes} classes, ${r.shape.join('x')}, ${r.train} train / ${r.test} test; normalisation mean (${r.normalization.mean.join(', ')}) std (${r.normalization.std.join(', ')})`,
    );
    out.push(`  status: ${status}${r.location ? ` at ${r.location}` : ''}${r.note ? ` (${r.note})` : ''}`);
    if (!r.present) out.push(`  looked in: ${r.searched.join(', ')}`);
    if (!r.present || r.verified === false) out.push(`  how to get it: ${r.howToGet}`);
  }
  return out.join('\n');
}
