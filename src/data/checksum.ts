// Digests and "verified" stamps. A data file is verified (MD5) on first use; the result is
// remembered in a small stamp file keyed by the file's size and mtime, so later loads skip
// the hashing until the file changes. Stamps always live under the cache root
// (<cache>/verified/<hash of the data dir>.json), never beside the data: data directories
// may be shared, system-owned or read-only (and root can write where it should not). When
// the cache is not writable the files are simply verified on every load.
import { createHash } from 'node:crypto';
import { createReadStream, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { createGunzip } from 'node:zlib';
import { pipeline } from 'node:stream/promises';
import { Writable } from 'node:stream';
import { cacheRoot, tempSibling, writableDir } from './paths.js';

export function md5(data: Uint8Array): string {
  return createHash('md5').update(data).digest('hex');
}

/** MD5 of a file's bytes, or of its gunzipped content (streamed; any size). */
export async function md5File(file: string, { gunzip = false }: { gunzip?: boolean } = {}): Promise<string> {
  const hash = createHash('md5');
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      cb();
    },
  });
  if (gunzip) await pipeline(createReadStream(file), createGunzip(), sink);
  else await pipeline(createReadStream(file), sink);
  return hash.digest('hex');
}

interface StampEntry {
  size: number;
  mtimeMs: number;
  md5: string;
}
interface StampFile {
  dir: string;
  files: Record<string, StampEntry>;
}

/** The stamp file for a data directory. */
export function stampFile(dir: string): string {
  const key = createHash('sha1').update(resolve(dir)).digest('hex').slice(0, 16);
  return join(cacheRoot(), 'verified', `${key}.json`);
}

function readStamp(path: string): StampFile | null {
  try {
    const s = JSON.parse(readFileSync(path, 'utf8')) as StampFile;
    return s && typeof s.files === 'object' ? s : null;
  } catch {
    return null;
  }
}

/** true when `file` was verified against `expectedMd5` and has not changed since (same size and mtime). */
export function isVerified(file: string, expectedMd5: string): boolean {
  let st;
  try {
    st = statSync(file);
  } catch {
    return false;
  }
  const e = readStamp(stampFile(dirname(file)))?.files[basename(file)];
  return e !== undefined && e.size === st.size && e.mtimeMs === st.mtimeMs && e.md5 === expectedMd5;
}

/** Remember that `file` matched `md5` (best effort: silently skipped when nothing is writable). */
export function recordVerified(file: string, md5sum: string): void {
  let st;
  try {
    st = statSync(file);
  } catch {
    return;
  }
  const dir = resolve(dirname(file));
  const path = stampFile(dir);
  if (!writableDir(dirname(path))) return;
  const tmp = tempSibling(path, 'tmp');
  try {
    mkdirSync(dirname(path), { recursive: true });
    const s = readStamp(path) ?? { dir, files: {} };
    s.files[basename(file)] = { size: st.size, mtimeMs: st.mtimeMs, md5: md5sum };
    writeFileSync(tmp, JSON.stringify(s, null, 1) + '\n');
    renameSync(tmp, path);
  } catch {
    rmSync(tmp, { force: true }); // verified again next time
  }
}

/** Forget all stamps of a directory (tests, or after replacing files by hand). */
export function clearVerified(dir: string): void {
  rmSync(stampFile(dir), { force: true });
}
