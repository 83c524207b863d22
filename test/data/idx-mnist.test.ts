// The IDX reader on generated files (magic, dims, gzip, truncation), and the MNIST-family
// loader: file discovery, normalisation, MD5 verification of the decompressed content with
// a stamp keyed by size and mtime, and clear errors.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import {
  ChecksumError,
  DataFileError,
  FILES,
  candidateDirs,
  dataRoot,
  findDatasetDir,
  isVerified,
  loadMnistFamily,
  parseIdx,
  readIdx,
  readMnistFamily,
  stampFile,
  verifiedIdxBytes,
  FILE_SPECS,
} from '../../src/data/index.js';
import { tempDir, idxBytes, isolateCache } from './helpers.js';

isolateCache(after);

/** The workplace's shared data beside the repository (../shared/data), when there is one. */
const SHARED_DATA = join(fileURLToPath(new URL('../../../', import.meta.url)), '..', 'shared', 'data');
const SHARED_MNIST = join(SHARED_DATA, 'mnist');

/** Run fn with CODED_DATA pointing at a fresh directory of its own. */
function withCache<T>(fn: (cache: string) => T): T {
  const cache = tempDir('coded-cache-');
  const saved = process.env.CODED_DATA;
  process.env.CODED_DATA = cache;
  try {
    return fn(cache);
  } finally {
    process.env.CODED_DATA = saved;
  }
}

test('IDX: magic, rank and dims are read; gzip is transparent', () => {
  const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i);
  const raw = idxBytes([2, 3, 4], data);
  for (const buf of [raw, gzipSync(raw)]) {
    const a = parseIdx(buf, 'x.idx');
    assert.deepEqual(a.shape, [2, 3, 4]);
    assert.deepEqual(Array.from(a.data), Array.from(data));
  }
  const labels = parseIdx(idxBytes([5], Uint8Array.from([9, 8, 7, 6, 5])));
  assert.deepEqual(labels.shape, [5]);
  assert.deepEqual(Array.from(labels.data), [9, 8, 7, 6, 5]);
});

test('IDX: malformed files give errors naming the file and the problem', () => {
  const good = idxBytes([2, 2, 2], new Uint8Array(8));
  const cases: [Buffer, RegExp][] = [
    [good.subarray(0, good.length - 1), /need 8 bytes of data, the file has 7 \(truncated\)/],
    [Buffer.concat([good, Buffer.from([1])]), /trailing bytes/],
    [good.subarray(0, 10), /truncated IDX header/],
    [Buffer.from([1, 2]), /not an IDX file/],
    [Buffer.from([0x12, 0x34, 8, 1, 0, 0, 0, 0]), /bad IDX magic/],
    [idxBytes([1], new Uint8Array(4), { type: 0x0d }), /element type 0xd is not supported/],
    [Buffer.from([0, 0, 8, 0]), /rank 0 out of range/],
    [gzipSync(good).subarray(0, 20), /corrupt gzip data/],
  ];
  for (const [buf, re] of cases) {
    assert.throws(
      () => parseIdx(buf, '/data/f.idx'),
      (e: unknown) => {
        assert.ok(e instanceof DataFileError);
        assert.ok(e.message.startsWith('/data/f.idx: '), e.message);
        assert.match(e.message, re);
        return true;
      },
    );
  }
  assert.throws(() => readIdx('/nonexistent/train-images-idx3-ubyte.gz'), /\/nonexistent\/train-images-idx3-ubyte\.gz: file not found/);
});

/** A tiny MNIST-like directory: n train and m test images whose pixel value is the label * 20. */
function writeTinyMnist(dir: string, n = 12, m = 5): void {
  mkdirSync(dir, { recursive: true });
  const write = (file: string, count: number) => {
    const labels = Uint8Array.from({ length: count }, (_, i) => i % 10);
    const images = new Uint8Array(count * 784);
    labels.forEach((l, i) => images.fill(l * 20, i * 784, (i + 1) * 784));
    return { labels, images, file };
  };
  for (const [imgs, lbls, count] of [
    [FILES.trainImages, FILES.trainLabels, n],
    [FILES.testImages, FILES.testLabels, m],
  ] as const) {
    const { labels, images } = write(imgs, count);
    writeFileSync(join(dir, imgs), gzipSync(idxBytes([count, 28, 28], images)));
    writeFileSync(join(dir, lbls), gzipSync(idxBytes([count], labels)));
  }
}

test('MNIST family: data dir precedence and discovery', () => {
  withCache((cache) => {
    assert.equal(dataRoot(), cache);
    assert.equal(dataRoot('/explicit'), '/explicit');
    assert.deepEqual(candidateDirs('mnist', '/d'), ['/d/mnist']);
    assert.deepEqual(candidateDirs('mnist', '/d/mnist'), ['/d/mnist/mnist', '/d/mnist']);
    assert.deepEqual(candidateDirs('fashion-mnist', '/d'), ['/d/fashion-mnist', '/usr/share/datasets/fashion-mnist']);
    writeTinyMnist(join(cache, 'mnist'));
    assert.equal(findDatasetDir('mnist'), join(cache, 'mnist'));
    assert.equal(findDatasetDir('mnist', '/nonexistent'), null);
  });
});

test('MNIST family: a split loads as normalised [N, 1, 28, 28] float32 with int64 labels', () => {
  withCache((cache) => {
    writeTinyMnist(join(cache, 'mnist'));
    const s = loadMnistFamily('mnist', { split: 'train', verify: false });
    try {
      assert.equal(s.size, 12);
      assert.deepEqual(s.images.shape, [12, 1, 28, 28]);
      assert.equal(s.images.dtype, 'float32');
      assert.equal(s.labels.dtype, 'int64');
      assert.deepEqual(s.labels.toList(), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
      const first = s.images.select(0, 3).mean().item();
      assert.ok(Math.abs(first - (60 / 255 - 0.1307) / 0.3081) < 1e-5, `pixel ${first}`);
    } finally {
      s.images.dispose();
      s.labels.dispose();
    }
    const t = readMnistFamily('mnist', join(cache, 'mnist'), 'test', { verify: false });
    assert.equal(t.count, 5);
  });
});

test('MNIST family: mismatched counts, bad labels and a missing dataset are reported clearly', () => {
  withCache((cache) => {
    const dir = join(cache, 'mnist');
    writeTinyMnist(dir);
    writeFileSync(join(dir, FILES.trainLabels), gzipSync(idxBytes([11], new Uint8Array(11))));
    assert.throws(() => readMnistFamily('mnist', dir, 'train', { verify: false }), new RegExp(`${FILES.trainLabels}: expected 12 labels`));
    writeFileSync(join(dir, FILES.trainLabels), gzipSync(idxBytes([12], new Uint8Array(12).fill(12))));
    assert.throws(() => readMnistFamily('mnist', dir, 'train', { verify: false }), /label 0 is 12, labels are 0-9/);
    assert.throws(() => loadMnistFamily('mnist', { dataDir: '/nonexistent', split: 'train' }), /mnist not found: .*\/nonexistent\/mnist/);
  });
});

test('MNIST family: a file whose decompressed MD5 differs is rejected, naming file and digests', () => {
  withCache((cache) => {
    const dir = join(cache, 'mnist');
    writeTinyMnist(dir);
    const path = join(dir, FILES.testLabels);
    assert.throws(
      () => readMnistFamily('mnist', dir, 'test'),
      (e: unknown) => {
        assert.ok(e instanceof ChecksumError);
        assert.ok(e.message.includes(FILES.testImages), e.message);
        assert.match(e.message, new RegExp(FILE_SPECS.mnist.testImages.md5));
        assert.match(e.message, /decompressed content/);
        return true;
      },
    );
    assert.throws(
      () => verifiedIdxBytes('mnist', path, FILE_SPECS.mnist.testLabels),
      new RegExp(`${path}: MD5 of the decompressed content is [0-9a-f]{32}, expected ${FILE_SPECS.mnist.testLabels.md5}`),
    );
    assert.equal(isVerified(path, FILE_SPECS.mnist.testLabels.md5), false);
  });
});

test('MNIST family: the real labels file verifies once, the stamp is reused, and a change invalidates it', {
  skip: !existsSync(join(SHARED_MNIST, FILES.testLabels)),
}, () => {
  withCache((cache) => {
    const dir = join(cache, 'copy');
    mkdirSync(dir);
    const path = join(dir, FILES.testLabels);
    copyFileSync(join(SHARED_MNIST, FILES.testLabels), path);
    const spec = FILE_SPECS.mnist.testLabels;
    assert.equal(isVerified(path, spec.md5), false);
    const bytes = verifiedIdxBytes('mnist', path, spec);
    assert.equal(bytes.length, 8 + 10000);
    assert.ok(existsSync(stampFile(dir)), 'stamp written under the cache root');
    assert.ok(stampFile(dir).startsWith(cache));
    assert.equal(isVerified(path, spec.md5), true);
    // same bytes, new mtime: no longer trusted until verified again
    utimesSync(path, new Date(), new Date(Date.now() + 5000));
    assert.equal(isVerified(path, spec.md5), false);
    verifiedIdxBytes('mnist', path, spec);
    assert.equal(isVerified(path, spec.md5), true);
    // the stamp never vouches for other content
    const content = parseIdx(bytes);
    content.data[0] = (content.data[0] + 1) % 10;
    writeFileSync(path, gzipSync(idxBytes([10000], content.data)));
    assert.throws(() => verifiedIdxBytes('mnist', path, spec), ChecksumError);
  });
});

test('MNIST family: the shared MNIST copy loads and verifies from a read-only directory', {
  skip: !existsSync(join(SHARED_MNIST, FILES.testImages)),
}, () => {
  withCache((cache) => {
    const s = loadMnistFamily('mnist', { dataDir: SHARED_DATA, split: 'test' });
    try {
      assert.equal(s.size, 10000);
      assert.ok(isVerified(join(SHARED_MNIST, FILES.testImages), FILE_SPECS.mnist.testImages.md5));
      assert.ok(stampFile(SHARED_MNIST).startsWith(cache), 'stamps of read-only data live in the cache');
      assert.ok(!existsSync(join(SHARED_MNIST, '.coded-verified.json')));
    } finally {
      s.images.dispose();
      s.labels.dispose();
    }
  });
});
