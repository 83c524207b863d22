// CIFAR-10/100 binary readers on files generated in the exact record layout (label byte(s),
// then the R, G and B planes of 32x32), truncated and corrupt files, and fetching: an archive
// placed by hand is verified and extracted, a download goes through a local HTTP server,
// and a bad archive leaves nothing extracted.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import {
  ChecksumError,
  CIFAR_SPECS,
  DataFileError,
  DatasetUnavailableError,
  DownloadError,
  fetchCifar,
  parseCifar,
  readCifar,
  readCifarSplit,
  toSplit,
  type CifarSpec,
} from '../../src/data/index.js';
import { cifarBytes, pixel, tarGz, tempDir, withServer, isolateCache } from './helpers.js';

isolateCache(after);

test('CIFAR-10 records: label byte, then R, G, B planes of 32x32 in CHW order', () => {
  const labels = [3, 0, 9, 7];
  const r = parseCifar(cifarBytes(labels), 'cifar10', 'data_batch_1.bin');
  assert.equal(r.count, 4);
  assert.deepEqual([r.channels, r.height, r.width], [3, 32, 32]);
  assert.deepEqual(Array.from(r.labels), labels);
  assert.equal(r.coarseLabels, undefined);
  for (const [i, c, y, x] of [
    [0, 0, 0, 0],
    [1, 1, 5, 31],
    [2, 2, 31, 0],
    [3, 0, 17, 9],
  ]) {
    assert.equal(r.images[((i * 3 + c) * 32 + y) * 32 + x], pixel(i, c, y, x));
  }
});

test('CIFAR-100 records: coarse label, fine label, then the planes', () => {
  const fine = [99, 0, 42];
  const coarse = [19, 0, 7];
  const r = parseCifar(cifarBytes(fine, coarse), 'cifar100', 'train.bin');
  assert.deepEqual(Array.from(r.labels), fine);
  assert.deepEqual(Array.from(r.coarseLabels!), coarse);
  assert.equal(r.images[((2 * 3 + 1) * 32 + 4) * 32 + 8], pixel(2, 1, 4, 8));
});

test('CIFAR: truncated, empty, mislabelled and wrong-variant files are refused, naming the file', () => {
  const dir = tempDir();
  try {
    const good = cifarBytes([1, 2, 3]);
    const cases: [string, Buffer, 'cifar10' | 'cifar100', RegExp][] = [
      [
        'truncated.bin',
        good.subarray(0, good.length - 100),
        'cifar10',
        /9119 bytes is not a whole number of 3073-byte CIFAR-10 records \(2 records \+ 2973 bytes\): truncated/,
      ],
      ['empty.bin', Buffer.alloc(0), 'cifar10', /empty file/],
      [
        'badlabel.bin',
        (() => {
          const b = Buffer.from(good);
          b[3073] = 10;
          return b;
        })(),
        'cifar10',
        /record 1 has label 10, CIFAR-10 labels are 0-9/,
      ],
      ['badcoarse.bin', cifarBytes([5], [20]), 'cifar100', /record 0 has coarse label 20/],
      ['badfine.bin', cifarBytes([100], [1]), 'cifar100', /record 0 has label 100, CIFAR-100 labels are 0-99/],
      ['variant.bin', cifarBytes([1, 2, 3], [1, 2, 3]), 'cifar10', /not a whole number of 3073-byte CIFAR-10 records/],
    ];
    for (const [name, bytes, variant, re] of cases) {
      const p = join(dir, name);
      writeFileSync(p, bytes);
      assert.throws(
        () => readCifar(p, variant),
        (e: unknown) => {
          assert.ok(e instanceof DataFileError, String(e));
          assert.ok(e.message.startsWith(`${p}: `), e.message);
          assert.match(e.message, re);
          return true;
        },
      );
    }
    writeFileSync(join(dir, 'count.bin'), good);
    assert.throws(() => readCifar(join(dir, 'count.bin'), 'cifar10', 10000), /count\.bin: 3 CIFAR-10 records, expected 10000/);
    assert.throws(() => readCifar(join(dir, 'none.bin'), 'cifar10'), /none\.bin: file not found/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CIFAR: records become per-channel normalised tensors', () => {
  const r = parseCifar(cifarBytes([4, 5]), 'cifar10');
  const norm = { mean: [0.4914, 0.4822, 0.4465], std: [0.2023, 0.1994, 0.201] };
  const s = toSplit(r, norm);
  try {
    assert.deepEqual(s.images.shape, [2, 3, 32, 32]);
    assert.deepEqual(s.labels.toList(), [4, 5]);
    const got = s.images.select(0, 1).select(0, 2).select(0, 7).select(0, 3).item();
    const want = (pixel(1, 2, 7, 3) / 255 - norm.mean[2]) / norm.std[2];
    assert.ok(Math.abs(got - want) < 1e-5, `${got} vs ${want}`);
  } finally {
    s.images.dispose();
    s.labels.dispose();
  }
});

/** A miniature CIFAR-10 release: 2 train batches of 3 records and a test batch of 2. */
function miniCifar10(): { spec: CifarSpec; archive: Buffer } {
  const dirName = 'cifar-10-batches-bin';
  const archive = tarGz([
    { name: `${dirName}/`, type: '5' },
    { name: `${dirName}/data_batch_1.bin`, data: cifarBytes([0, 1, 2]) },
    { name: `${dirName}/data_batch_2.bin`, data: cifarBytes([3, 4, 5]) },
    { name: `${dirName}/test_batch.bin`, data: cifarBytes([8, 9]) },
    { name: `${dirName}/batches.meta.txt`, data: Buffer.from('airplane\nautomobile\nbird\ncat\ndeer\ndog\nfrog\nhorse\nship\ntruck\n') },
  ]);
  const spec: CifarSpec = {
    ...CIFAR_SPECS.cifar10,
    md5: createHash('md5').update(archive).digest('hex'),
    train: [
      ['data_batch_1.bin', 3],
      ['data_batch_2.bin', 3],
    ],
    test: [['test_batch.bin', 2]],
  };
  return { spec, archive };
}

test('CIFAR fetch: an archive placed by hand is verified, extracted into place and read', async () => {
  const root = tempDir();
  try {
    const { spec, archive } = miniCifar10();
    mkdirSync(join(root, 'cifar10'));
    writeFileSync(join(root, 'cifar10', spec.archive), archive);
    const dir = await fetchCifar('cifar10', { dataDir: root, download: false }, spec);
    assert.equal(dir, join(root, 'cifar10', spec.dir));
    assert.deepEqual(readdirSync(join(root, 'cifar10')).sort(), [spec.archive, spec.dir].sort(), 'no temporary extraction directory left');
    const train = readCifarSplit('cifar10', dir, 'train', spec);
    assert.equal(train.count, 6);
    assert.deepEqual(Array.from(train.labels), [0, 1, 2, 3, 4, 5]);
    assert.equal(train.images[(3 * 3 * 32 + 0) * 32 + 1], pixel(0, 0, 0, 1), 'record 0 of the second batch follows the first batch');
    const test = readCifarSplit('cifar10', dir, 'test', spec);
    assert.deepEqual(Array.from(test.labels), [8, 9]);
    // second call finds the extracted files
    assert.equal(await fetchCifar('cifar10', { dataDir: root, download: false }, spec), dir);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('CIFAR fetch: a placed archive with the wrong MD5 is refused and nothing is extracted', async () => {
  const root = tempDir();
  try {
    const { spec, archive } = miniCifar10();
    mkdirSync(join(root, 'cifar10'));
    const path = join(root, 'cifar10', spec.archive);
    writeFileSync(path, archive);
    const wrong = { ...spec, md5: 'c32a1d4ab5d03f1284b67883e8d87530' };
    await assert.rejects(fetchCifar('cifar10', { dataDir: root, download: false }, wrong), (e: unknown) => {
      assert.ok(e instanceof ChecksumError);
      assert.ok(e.message.startsWith(path), e.message);
      assert.match(e.message, /expected c32a1d4ab5d03f1284b67883e8d87530/);
      return true;
    });
    assert.deepEqual(readdirSync(join(root, 'cifar10')), [spec.archive]);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('CIFAR fetch: missing with downloads off says where it looked and how to get it', async () => {
  const root = tempDir();
  try {
    await assert.rejects(fetchCifar('cifar100', { dataDir: root, download: false }), (e: unknown) => {
      assert.ok(e instanceof DatasetUnavailableError);
      assert.match(e.message, /cifar100 not found/);
      assert.match(e.message, /cifar-100-binary\.tar\.gz/);
      assert.match(e.message, /03b5dce01913d631647c71ecec9e9cb8/);
      assert.match(e.message, /https:\/\/www\.cs\.toronto\.edu\/~kriz\/cifar-100-binary\.tar\.gz/);
      return true;
    });
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});

test('CIFAR fetch: downloads from a local server, extracts, and deletes the archive; a bad download leaves nothing', async () => {
  const root = tempDir();
  try {
    const { spec, archive } = miniCifar10();
    await withServer(
      (req, res) => {
        if (req.url === '/good/cifar-10-binary.tar.gz') {
          res.writeHead(200, { 'content-length': archive.length });
          res.end(archive);
        } else if (req.url === '/bad/cifar-10-binary.tar.gz') {
          const b = Buffer.from(archive);
          b[b.length - 20] ^= 0xff;
          res.writeHead(200, { 'content-length': b.length });
          res.end(b);
        } else {
          res.writeHead(404);
          res.end();
        }
      },
      async (base) => {
        const bad = { ...spec, urls: [`${base}/bad/cifar-10-binary.tar.gz`] };
        await assert.rejects(fetchCifar('cifar10', { dataDir: root }, bad), (e: unknown) => {
          assert.ok(e instanceof DownloadError);
          assert.match(e.message, /checksum mismatch/);
          assert.match(e.message, new RegExp(spec.md5));
          return true;
        });
        assert.ok(!existsSync(join(root, 'cifar10')) || readdirSync(join(root, 'cifar10')).length === 0);
        const good = { ...spec, urls: [`${base}/missing/cifar-10-binary.tar.gz`, `${base}/good/cifar-10-binary.tar.gz`] };
        const dir = await fetchCifar('cifar10', { dataDir: root }, good);
        assert.deepEqual(readdirSync(join(root, 'cifar10')), [spec.dir], 'downloaded archive removed after extraction');
        assert.equal(readCifarSplit('cifar10', dir, 'train', spec).count, 6);
      },
    );
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
