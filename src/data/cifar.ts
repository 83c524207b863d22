// CIFAR-10 and CIFAR-100 as datasets: where their binary files live, how they are
// obtained (the official .tar.gz, verified by MD5, extracted in TypeScript into the cache)
// and how a split is read. The record format itself is in cifar-binary.ts.
import { existsSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { concatRaw } from './split.js';
import { RECORD_BYTES, readCifar, type CifarRecords, type CifarVariant } from './cifar-binary.js';
import { ChecksumError, DataFileError, DatasetUnavailableError } from './errors.js';
import { isVerified, md5File, recordVerified } from './checksum.js';
import { cacheRoot, dataRoot, removeStaleSiblings, tempSibling, writableDir } from './paths.js';
import { downloadVerified, type DownloadOptions } from './download.js';
import { extractTar } from './tar.js';

export interface CifarSpec {
  archive: string;
  /** MD5 of the .tar.gz as published on https://www.cs.toronto.edu/~kriz/cifar.html */
  md5: string;
  urls: string[];
  /** top-level directory inside the archive */
  dir: string;
  /** [file, records] */
  train: [string, number][];
  test: [string, number][];
  /** class names file inside `dir` (one name per line) */
  namesFile: string;
}

export const CIFAR_SPECS: Record<CifarVariant, CifarSpec> = {
  cifar10: {
    archive: 'cifar-10-binary.tar.gz',
    md5: 'c32a1d4ab5d03f1284b67883e8d87530',
    urls: ['https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'],
    dir: 'cifar-10-batches-bin',
    train: [1, 2, 3, 4, 5].map((i) => [`data_batch_${i}.bin`, 10000] as [string, number]),
    test: [['test_batch.bin', 10000]],
    namesFile: 'batches.meta.txt',
  },
  cifar100: {
    archive: 'cifar-100-binary.tar.gz',
    md5: '03b5dce01913d631647c71ecec9e9cb8',
    urls: ['https://www.cs.toronto.edu/~kriz/cifar-100-binary.tar.gz'],
    dir: 'cifar-100-binary',
    train: [['train.bin', 50000]],
    test: [['test.bin', 10000]],
    namesFile: 'fine_label_names.txt',
  },
};

export const CIFAR10_CLASSES = ['airplane', 'automobile', 'bird', 'cat', 'deer', 'dog', 'frog', 'horse', 'ship', 'truck'];
export const CIFAR100_CLASSES = (
  'apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus butterfly camel can castle caterpillar cattle ' +
  'chair chimpanzee clock cloud cockroach couch crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house kangaroo keyboard ' +
  'lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree ' +
  'plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew skunk skyscraper snail snake spider ' +
  'squirrel streetcar sunflower sweet_pepper table tank telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf woman worm'
).split(' ');

function allFiles(spec: CifarSpec): [string, number][] {
  return [...spec.train, ...spec.test];
}

/** Directories searched for the extracted files: <root>/<variant>/<dir>, <root>/<dir>, <cache>/<variant>/<dir>. */
export function cifarCandidateDirs(variant: CifarVariant, dataDir?: string, spec = CIFAR_SPECS[variant]): string[] {
  const root = dataRoot(dataDir);
  return [...new Set([join(root, variant, spec.dir), join(root, spec.dir), join(cacheRoot(), variant, spec.dir)])];
}

/** Places where a manually obtained archive is picked up. */
export function cifarArchiveCandidates(variant: CifarVariant, dataDir?: string, spec = CIFAR_SPECS[variant]): string[] {
  const root = dataRoot(dataDir);
  return [...new Set([join(root, variant, spec.archive), join(root, spec.archive), join(cacheRoot(), variant, spec.archive)])];
}

function hasAllFiles(dir: string, spec: CifarSpec): boolean {
  return allFiles(spec).every(([f]) => existsSync(join(dir, f)));
}

export function findCifarDir(variant: CifarVariant, dataDir?: string, spec = CIFAR_SPECS[variant]): string | null {
  return cifarCandidateDirs(variant, dataDir, spec).find((d) => hasAllFiles(d, spec)) ?? null;
}

/** Manual instructions: fetch the archive elsewhere, check it, copy it to `dest`. */
export function cifarManual(spec: CifarSpec, dest: string): string {
  return `download ${spec.urls[0]} on a machine with internet access, check that \`md5sum ${spec.archive}\` prints ${spec.md5}, and copy it to ${dest}; it is verified and extracted on the next run.`;
}

export function cifarHowToGet(variant: CifarVariant, dataDir?: string, spec = CIFAR_SPECS[variant]): string {
  return `downloaded automatically when online; offline: ${cifarManual(spec, join(dataRoot(dataDir), variant, spec.archive))}`;
}

/** Check every extracted file's size against its expected record count. */
function checkExtracted(dir: string, variant: CifarVariant, spec: CifarSpec): void {
  for (const [f, n] of allFiles(spec)) {
    const path = join(dir, f);
    if (!existsSync(path)) throw new DataFileError(path, `missing after extracting ${spec.archive}: the archive is not the official one`);
    const size = statSync(path).size;
    if (size !== n * RECORD_BYTES[variant])
      throw new DataFileError(path, `${size} bytes, expected ${n} records of ${RECORD_BYTES[variant]} bytes`);
  }
}

export interface FetchCifarOptions extends DownloadOptions {
  dataDir?: string;
  /** allow downloading when neither files nor archive are present (default true) */
  download?: boolean;
  /** progress messages ("verifying ...", "extracting ...") */
  log?: (message: string) => void;
}

/**
 * Make sure the extracted binary files exist; returns their directory. Order: extracted
 * files found -> done; an archive found (placed by hand) -> verify its MD5 and extract;
 * otherwise download it (to a temp file, verified, renamed), extract it and delete it.
 * Extraction goes to a temporary directory that is renamed into place when complete.
 */
export async function fetchCifar(variant: CifarVariant, o: FetchCifarOptions = {}, spec = CIFAR_SPECS[variant]): Promise<string> {
  const found = findCifarDir(variant, o.dataDir, spec);
  if (found !== null) return found;
  const log = o.log ?? (() => {});
  let archive = cifarArchiveCandidates(variant, o.dataDir, spec).find((p) => existsSync(p)) ?? null;
  let downloaded = false;
  const rootDir = join(dataRoot(o.dataDir), variant);
  // extract (and download) under the data root, or under the cache root when that is read-only
  const targetParent = writableDir(rootDir) ? rootDir : join(cacheRoot(), variant);
  if (archive === null) {
    if (o.download === false) {
      throw new DatasetUnavailableError(
        variant,
        `${variant} not found (looked in ${cifarCandidateDirs(variant, o.dataDir, spec).join(', ')}): ${cifarHowToGet(variant, o.dataDir, spec)}`,
      );
    }
    archive = join(targetParent, spec.archive);
    if (!writableDir(targetParent))
      throw new DataFileError(
        targetParent,
        `cannot write here to download ${spec.archive}; set CODED_DATA or --data-dir to a writable directory`,
      );
    log(`downloading ${spec.urls[0]} ...`);
    await downloadVerified(spec.urls, archive, { md5: spec.md5 }, { ...o, manual: cifarManual(spec, archive) });
    recordVerified(archive, spec.md5);
    downloaded = true;
  } else if (!isVerified(archive, spec.md5)) {
    log(`verifying ${archive} ...`);
    const actual = await md5File(archive);
    if (actual !== spec.md5)
      throw new ChecksumError(archive, spec.md5, actual, 'MD5', `delete it; ${cifarHowToGet(variant, o.dataDir, spec)}`);
    recordVerified(archive, spec.md5);
  }
  log(`extracting ${archive} ...`);
  if (!writableDir(targetParent))
    throw new DataFileError(
      targetParent,
      `cannot write here to extract ${spec.archive}; set CODED_DATA or --data-dir to a writable directory`,
    );
  removeStaleSiblings(join(targetParent, spec.dir), 'extract');
  const tmp = tempSibling(join(targetParent, spec.dir), 'extract');
  try {
    await extractTar(archive, tmp);
    const extracted = join(tmp, spec.dir);
    checkExtracted(extracted, variant, spec);
    const final = join(targetParent, spec.dir);
    rmSync(final, { recursive: true, force: true });
    renameSync(extracted, final);
    if (downloaded) rmSync(archive, { force: true });
    return final;
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** Read a split's records (all train batches concatenated), checking each file's record count. */
export function readCifarSplit(variant: CifarVariant, dir: string, split: 'train' | 'test', spec = CIFAR_SPECS[variant]): CifarRecords {
  const parts = (split === 'train' ? spec.train : spec.test).map(([f, n]) => readCifar(join(dir, f), variant, n));
  if (parts.length === 1) return parts[0];
  const raw = concatRaw(parts) as CifarRecords;
  if (variant === 'cifar100') {
    const coarse = new Uint8Array(raw.count);
    let o = 0;
    for (const p of parts) {
      coarse.set(p.coarseLabels!, o);
      o += p.count;
    }
    raw.coarseLabels = coarse;
  }
  return raw;
}

/** Class names: from the extracted names file when readable, else the built-in list. */
export function cifarClassNames(variant: CifarVariant, dir?: string | null, spec = CIFAR_SPECS[variant]): string[] {
  const builtIn = variant === 'cifar10' ? CIFAR10_CLASSES : CIFAR100_CLASSES;
  if (dir) {
    try {
      const names = readFileSync(join(dir, spec.namesFile), 'utf8')
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean);
      if (names.length === builtIn.length) return names;
    } catch {
      // fall back
    }
  }
  return builtIn.slice();
}
