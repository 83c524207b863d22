// The dataset registry: synthetic data (deterministic, learnable), loading with a seeded
// validation hold-out, CIFAR through a miniature archive, metadata and normalisation
// numbers, `coded datasets` listing, and errors for unknown or unavailable datasets.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { stack } from '../../src/engine/ops.js';
import { tidy } from '../../src/engine/scope.js';
import { tensor } from '../../src/engine/tensor.js';
import {
  DATASET_NAMES,
  DEFAULT_DATASET,
  DatasetUnavailableError,
  datasetInfo,
  describeDatasets,
  disposeDataset,
  formatDatasets,
  loadDataset,
  syntheticSplit,
  validationIndices,
  type Split,
} from '../../src/data/index.js';
import { cifarBytes, isolateCache, tarGz, tempDir } from './helpers.js';

const cache = isolateCache(after);
/** The workplace's shared data beside the repository (../shared/data), when there is one. */
const SHARED_DATA = join(fileURLToPath(new URL('../../../', import.meta.url)), '..', 'shared', 'data');

test('metadata: classes, shapes and the documented normalisation numbers', () => {
  assert.equal(DEFAULT_DATASET, 'fashion-mnist');
  assert.deepEqual([...DATASET_NAMES], ['fashion-mnist', 'mnist', 'cifar10', 'cifar100', 'synthetic']);
  const m = datasetInfo('mnist');
  assert.deepEqual(m.normalization, { mean: [0.1307], std: [0.3081] });
  assert.deepEqual(datasetInfo('fashion-mnist').normalization, { mean: [0.286], std: [0.353] });
  assert.equal(datasetInfo('fashion-mnist').classes[9], 'Ankle boot');
  for (const c of ['cifar10', 'cifar100'] as const) {
    const i = datasetInfo(c);
    assert.deepEqual(i.normalization, { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] });
    assert.deepEqual([i.channels, i.height, i.width, i.trainSize, i.testSize], [3, 32, 32, 50000, 10000]);
    assert.equal(i.augmentation, 'crop-flip');
  }
  assert.equal(datasetInfo('cifar100').classes.length, 100);
  assert.equal(datasetInfo('cifar10').classes[0], 'airplane');
  assert.equal(datasetInfo('synthetic', { classes: 3, channels: 2 }).classes.length, 3);
  assert.throws(() => datasetInfo('imagenet' as never), /unknown dataset 'imagenet'/);
});

function nearestCentroidAccuracy(train: Split, test: Split, classes: number): number {
  return tidy(() => {
    const x = train.images.flatten(1);
    const labels = train.labels.toList();
    const cents = [];
    for (let c = 0; c < classes; c++) {
      const idx = labels.flatMap((l, i) => (l === c ? [i] : []));
      cents.push(x.indexSelect(0, tensor(Int32Array.from(idx), [idx.length], { dtype: 'int64' })).mean(0));
    }
    const centroids = stack(cents);
    const t = test.images.flatten(1);
    const d = t.unsqueeze(1).sub(centroids.unsqueeze(0)).square().sum(2);
    const pred = d.argmin(1);
    return pred.eq(test.labels).float().mean().item();
  });
}

test('synthetic: deterministic, sized as asked, learnable, normalised', async () => {
  const opts = { classes: 4, channels: 2, height: 6, width: 5, trainSize: 400, testSize: 100 };
  const a = syntheticSplit('train', opts);
  assert.deepEqual(a, syntheticSplit('train', opts));
  assert.notDeepEqual(a.images, syntheticSplit('train', { ...opts, dataSeed: 1 }).images);
  assert.notDeepEqual(a.images, syntheticSplit('test', opts).images.subarray(0, a.images.length));
  assert.equal(a.images.length, 400 * 2 * 6 * 5);
  const counts = new Array(4).fill(0);
  for (const l of a.labels) counts[l]++;
  assert.deepEqual(counts, [100, 100, 100, 100], 'balanced classes');

  const ds = await loadDataset('synthetic', { synthetic: opts, seed: 3 });
  try {
    assert.equal(ds.location, null);
    assert.equal(ds.validation!.size, 40, 'a tenth of train held out by default');
    assert.equal(ds.train.size, 360);
    assert.equal(ds.test.size, 100);
    assert.deepEqual(ds.train.images.shape, [360, 2, 6, 5]);
    assert.equal(ds.train.labels.dtype, 'int64');
    const mean = ds.train.images.mean().item();
    assert.ok(Math.abs(mean) < 0.3, `mean ${mean}`);
    const acc = nearestCentroidAccuracy(ds.train, ds.test, 4);
    assert.ok(acc > 0.9, `nearest-centroid accuracy ${acc}`);
  } finally {
    disposeDataset(ds);
  }
});

test('loadDataset: the validation hold-out is seeded, disjoint and sized; validation 0 keeps all of train', async () => {
  const o = { synthetic: { trainSize: 300, testSize: 50 }, validation: 50 };
  const a = await loadDataset('synthetic', { ...o, seed: 1 });
  const b = await loadDataset('synthetic', { ...o, seed: 1 });
  const c = await loadDataset('synthetic', { ...o, seed: 2 });
  const none = await loadDataset('synthetic', { ...o, validation: 0 });
  try {
    assert.deepEqual(a.validationIndices, validationIndices(300, 50, 1).validation);
    assert.deepEqual(a.validationIndices, b.validationIndices);
    assert.notDeepEqual(a.validationIndices, c.validationIndices);
    assert.equal(a.trainIndices.length + a.validationIndices.length, 300);
    assert.equal(new Set([...a.trainIndices, ...a.validationIndices]).size, 300);
    assert.deepEqual(a.validation!.labels.toList(), b.validation!.labels.toList());
    // the held-out samples are exactly the full train set's rows at those indices
    const full = none.train;
    assert.equal(none.validation, null);
    assert.equal(full.size, 300);
    const expect = Array.from(a.validationIndices, (i) => full.labels.toList()[i]);
    assert.deepEqual(a.validation!.labels.toList(), expect);
  } finally {
    for (const d of [a, b, c, none]) disposeDataset(d);
  }
  await assert.rejects(loadDataset('synthetic', { synthetic: { trainSize: 10 }, validation: 10 }), /validation size/);
});

test('loadDataset: a miniature CIFAR-100 archive is verified, extracted and loaded with coarse labels', async () => {
  const root = tempDir();
  const dirName = 'cifar-100-binary';
  const archive = tarGz([
    { name: `${dirName}/train.bin`, data: cifarBytes([5, 6, 7, 8], [1, 2, 3, 4]) },
    { name: `${dirName}/test.bin`, data: cifarBytes([99, 0], [19, 0]) },
  ]);
  mkdirSync(join(root, 'cifar100'));
  writeFileSync(join(root, 'cifar100', 'cifar-100-binary.tar.gz'), archive);
  const cifar = {
    md5: createHash('md5').update(archive).digest('hex'),
    train: [['train.bin', 4]] as [string, number][],
    test: [['test.bin', 2]] as [string, number][],
  };
  const ds = await loadDataset('cifar100', { dataDir: root, cifar, validation: 1, seed: 0, download: false });
  try {
    assert.equal(ds.location, join(root, 'cifar100', dirName));
    assert.equal(ds.train.size, 3);
    assert.equal(ds.validation!.size, 1);
    assert.deepEqual(ds.test.labels.toList(), [99, 0]);
    assert.deepEqual(Array.from(ds.coarseLabels!.test), [19, 0]);
    const trainFine = ds.train.labels.toList();
    assert.deepEqual(
      Array.from(ds.coarseLabels!.train),
      trainFine.map((f) => f - 4),
      'coarse labels follow the hold-out',
    );
    assert.deepEqual(ds.train.images.shape, [3, 3, 32, 32]);
    assert.equal(ds.info.classes.length, 100);
    assert.deepEqual(
      ds.paddingFill.map((v) => +v.toFixed(4)),
      [-2.4291, -2.4183, -2.2214],
    );
    const desc = describeDatasets(root).find((d) => d.name === 'cifar100')!;
    assert.equal(desc.present, true);
    assert.equal(desc.location, ds.location);
  } finally {
    disposeDataset(ds);
  }
});

test('unavailable datasets: downloads off gives where it looked and how to get it', async () => {
  const root = tempDir();
  await assert.rejects(loadDataset('mnist', { dataDir: root, download: false }), (e: unknown) => {
    assert.ok(e instanceof DatasetUnavailableError);
    assert.match(e.message, new RegExp(`mnist not found \\(looked in ${join(root, 'mnist')}\\)`));
    assert.match(e.message, /train-images-idx3-ubyte\.gz/);
    return true;
  });
  await assert.rejects(loadDataset('cifar10', { dataDir: root, download: false }), /c32a1d4ab5d03f1284b67883e8d87530/);
  await assert.rejects(
    loadDataset('nope' as never),
    /unknown dataset 'nope': use one of fashion-mnist, mnist, cifar10, cifar100, synthetic/,
  );
});

test('describeDatasets lists every dataset with presence, location and how to get it', () => {
  const root = tempDir();
  const rows = describeDatasets(root);
  assert.deepEqual(
    rows.map((r) => r.name),
    [...DATASET_NAMES],
  );
  const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
  assert.equal(byName.mnist.present, false);
  assert.deepEqual(byName.mnist.searched, [join(root, 'mnist')]);
  assert.match(byName.cifar10.howToGet, /c32a1d4ab5d03f1284b67883e8d87530/);
  assert.equal(byName.synthetic.present, true);
  assert.equal(byName['fashion-mnist'].default, true);
  assert.equal(byName['fashion-mnist'].present, existsSync('/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz'));
  const text = formatDatasets(rows);
  assert.match(text, /fashion-mnist \(default\)/);
  assert.match(text, /mnist: MNIST handwritten digits\n.*\n {2}status: missing/);
  assert.ok(!existsSync(join(root, 'mnist')), 'describing creates nothing');
  assert.ok(cache.length > 0);
});

test('the shared MNIST copy loads through the registry with a 5000-sample hold-out', {
  skip: !existsSync(join(SHARED_DATA, 'mnist', 'train-images-idx3-ubyte.gz')),
}, async () => {
  const ds = await loadDataset('mnist', { dataDir: SHARED_DATA, seed: 1 });
  try {
    assert.deepEqual([ds.train.size, ds.validation!.size, ds.test.size], [55000, 5000, 10000]);
    assert.equal(ds.location, join(SHARED_DATA, 'mnist'));
    const m = ds.train.images.mean().item();
    const s = ds.train.images.std().item();
    assert.ok(Math.abs(m) < 0.01 && Math.abs(s - 1) < 0.01, `normalised mean ${m}, std ${s}`);
    const row = describeDatasets(SHARED_DATA).find((r) => r.name === 'mnist')!;
    assert.equal(row.verified, true, 'verified on first use, remembered');
  } finally {
    disposeDataset(ds);
  }
});
