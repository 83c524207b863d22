// Verified downloads against a local HTTP server: success renames into place, a checksum
// mismatch or a broken transfer leaves nothing in the cache, mirrors are tried in order,
// and an unreachable host gives an error naming the file, the digest and the manual route.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createHash, randomBytes } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import { downloadVerified, DownloadError, md5File } from '../../src/data/index.js';
import { closedPort, tempDir, withServer, type Handler, isolateCache } from './helpers.js';

isolateCache(after);

const payload = randomBytes(200_000);
const md5 = (b: Buffer) => createHash('md5').update(b).digest('hex');

const serve: Handler = (req, res) => {
  const url = req.url ?? '';
  if (url === '/good.bin') {
    res.writeHead(200, { 'content-length': payload.length });
    res.end(payload);
  } else if (url === '/corrupt.bin') {
    const bad = Buffer.from(payload);
    bad[1234] ^= 0xff;
    res.writeHead(200, { 'content-length': bad.length });
    res.end(bad);
  } else if (url === '/redirect.bin') {
    res.writeHead(302, { location: '/good.bin' });
    res.end();
  } else if (url === '/short.bin') {
    // promises more bytes than it sends, then drops the connection
    res.writeHead(200, { 'content-length': payload.length });
    res.write(payload.subarray(0, 5000), () => res.destroy());
  } else if (url === '/data.gz') {
    const gz = gzipSync(payload, { level: 1 });
    res.writeHead(200, { 'content-length': gz.length });
    res.end(gz);
  } else {
    res.writeHead(404);
    res.end('not found');
  }
};

function cacheIsEmpty(dir: string): boolean {
  return !existsSync(dir) || readdirSync(dir).length === 0;
}

test('a verified download is renamed into place, with no temporary file left', async () => {
  const dir = tempDir();
  try {
    await withServer(serve, async (base) => {
      const dest = join(dir, 'cache', 'good.bin');
      await downloadVerified([`${base}/good.bin`], dest, { md5: md5(payload) });
      assert.deepEqual(readFileSync(dest), payload);
      assert.deepEqual(readdirSync(join(dir, 'cache')), ['good.bin']);
      assert.equal(await md5File(dest), md5(payload));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a checksum mismatch leaves nothing in the cache and names the file and the digest', async () => {
  const dir = tempDir();
  try {
    await withServer(serve, async (base) => {
      const cache = join(dir, 'cache');
      const dest = join(cache, 'data.bin');
      await assert.rejects(downloadVerified([`${base}/corrupt.bin`], dest, { md5: md5(payload) }), (e: unknown) => {
        assert.ok(e instanceof DownloadError);
        assert.match(e.message, /data\.bin/);
        assert.match(e.message, new RegExp(md5(payload)));
        assert.match(e.message, /checksum mismatch/);
        assert.match(e.message, /To obtain it manually/);
        assert.doesNotMatch(e.message, /no internet/);
        return true;
      });
      assert.ok(cacheIsEmpty(cache), `cache holds ${existsSync(cache) ? readdirSync(cache).join(', ') : ''}`);
      assert.ok(!existsSync(dest));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('mirrors are tried in order; 404s and bad copies are skipped; redirects are followed', async () => {
  const dir = tempDir();
  try {
    await withServer(serve, async (base) => {
      const dest = join(dir, 'x.bin');
      await downloadVerified([`${base}/missing.bin`, `${base}/corrupt.bin`, `${base}/redirect.bin`], dest, { md5: md5(payload) });
      assert.deepEqual(readFileSync(dest), payload);
      assert.deepEqual(readdirSync(dir), ['x.bin']);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a transfer cut short is rejected and removed', async () => {
  const dir = tempDir();
  try {
    await withServer(serve, async (base) => {
      const dest = join(dir, 'c', 'short.bin');
      await assert.rejects(downloadVerified([`${base}/short.bin`], dest, { md5: md5(payload) }), DownloadError);
      assert.ok(cacheIsEmpty(join(dir, 'c')));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the gunzipped content can be what is verified (mirrors recompress .gz files)', async () => {
  const dir = tempDir();
  try {
    await withServer(serve, async (base) => {
      const dest = join(dir, 'data.gz');
      await downloadVerified([`${base}/data.gz`], dest, { md5: md5(payload), of: 'gunzipped' });
      assert.ok(existsSync(dest));
      rmSync(dest);
      await assert.rejects(downloadVerified([`${base}/data.gz`], dest, { md5: 'f'.repeat(32), of: 'gunzipped' }), /gunzipped content/);
      assert.ok(cacheIsEmpty(dir));
      // either digest is accepted
      await downloadVerified([`${base}/data.gz`], dest, [{ md5: '0'.repeat(32) }, { md5: md5(payload), of: 'gunzipped' }]);
      assert.ok(existsSync(dest));
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unreachable host says the machine has no access, and how to get the file by hand', async () => {
  const dir = tempDir();
  try {
    const port = await closedPort();
    const dest = join(dir, 'cache', 'cifar-10-binary.tar.gz');
    await assert.rejects(
      downloadVerified([`http://127.0.0.1:${port}/cifar-10-binary.tar.gz`], dest, { md5: 'c32a1d4ab5d03f1284b67883e8d87530' }),
      (e: unknown) => {
        assert.ok(e instanceof DownloadError);
        assert.match(e.message, /cannot download cifar-10-binary\.tar\.gz/);
        assert.match(e.message, /c32a1d4ab5d03f1284b67883e8d87530/);
        assert.match(e.message, /no internet access/);
        assert.match(e.message, /ECONNREFUSED/);
        assert.match(e.message, new RegExp(`copy it to ${dest.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
        return true;
      },
    );
    assert.ok(!existsSync(join(dir, 'cache')), 'the directory created for the download is removed again');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('temporaries left by a killed download are cleaned up by the next one', async () => {
  const dir = tempDir();
  try {
    const dest = join(dir, 'good.bin');
    const stale = `${dest}.part-999999999-abc`;
    writeFileSync(stale, 'half a file');
    await withServer(serve, async (base) => {
      await downloadVerified([`${base}/good.bin`], dest, { md5: md5(payload) });
    });
    assert.deepEqual(readdirSync(dir), ['good.bin']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
