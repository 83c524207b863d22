// Verified downloads: fetch a file from a list of mirrors into a temporary file next to its
// destination, verify its digest, then rename it into place. A failed or mismatching
// download is deleted, so the cache never holds a partial or unverified file.
import { createHash } from 'node:crypto';
import { createWriteStream, mkdirSync, renameSync, rmdirSync, rmSync } from 'node:fs';
import { get as httpGet, type IncomingMessage } from 'node:http';
import { get as httpsGet } from 'node:https';
import { basename, dirname } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Transform } from 'node:stream';
import { DownloadError, type DownloadAttempt } from './errors.js';
import { md5File } from './checksum.js';
import { removeStaleSiblings, tempSibling } from './paths.js';

export interface Expected {
  /** hex MD5 */
  md5: string;
  /** 'file' (default): the downloaded bytes; 'gunzipped': the content after gunzip (for files whose .gz bytes vary between mirrors) */
  of?: 'file' | 'gunzipped';
}

export interface DownloadOptions {
  /** inactivity timeout per request, ms (default 30 000) */
  timeoutMs?: number;
  /** called as bytes arrive */
  onProgress?: (received: number, total: number | null, url: string) => void;
  /** text appended to the error: how to obtain the file by hand (a default is built otherwise) */
  manual?: string;
}

const UNREACHABLE = new Set([
  'ENOTFOUND',
  'EAI_AGAIN',
  'ECONNREFUSED',
  'ENETUNREACH',
  'EHOSTUNREACH',
  'ETIMEDOUT',
  'ECONNRESET',
  'EPROTO',
  'ERR_SOCKET_CONNECTION_TIMEOUT',
]);

class AttemptError extends Error {
  constructor(
    message: string,
    readonly unreachable: boolean,
  ) {
    super(message);
  }
}

export function describeExpected(e: Expected | Expected[]): string {
  const one = (x: Expected) => (x.of === 'gunzipped' ? `MD5 ${x.md5} of the gunzipped content` : `MD5 ${x.md5}`);
  return Array.isArray(e) ? e.map(one).join(', or ') : one(e);
}

/** The default "how to get it by hand" text for a file. */
export function manualInstructions(urls: string[], dest: string, expected: Expected | Expected[]): string {
  const name = basename(dest);
  const checks = (Array.isArray(expected) ? expected : [expected]).map((e) =>
    e.of === 'gunzipped' ? `\`zcat ${name} | md5sum\` prints ${e.md5}` : `\`md5sum ${name}\` prints ${e.md5}`,
  );
  return `download ${urls[0]} on a machine with internet access, check that ${checks.join(' or ')}, and copy it to ${dest}; it is verified on the next run.`;
}

function request(url: string, timeoutMs: number, redirects = 5): Promise<IncomingMessage> {
  return new Promise((resolvePromise, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new AttemptError(`invalid URL`, false));
      return;
    }
    const getter = u.protocol === 'https:' ? httpsGet : u.protocol === 'http:' ? httpGet : null;
    if (getter === null) {
      reject(new AttemptError(`unsupported protocol ${u.protocol}`, false));
      return;
    }
    const req = getter(u, { headers: { 'user-agent': 'coded-inference' } }, (res) => {
      const status = res.statusCode ?? 0;
      if (status >= 300 && status < 400 && res.headers.location) {
        res.resume();
        if (redirects <= 0) {
          reject(new AttemptError('too many redirects', false));
          return;
        }
        request(new URL(res.headers.location, u).toString(), timeoutMs, redirects - 1).then(resolvePromise, reject);
        return;
      }
      if (status !== 200) {
        res.resume();
        reject(new AttemptError(`HTTP ${status} ${res.statusMessage ?? ''}`.trim(), false));
        return;
      }
      resolvePromise(res);
    });
    req.setTimeout(timeoutMs, () => req.destroy(Object.assign(new Error(`no data for ${timeoutMs / 1000} s`), { code: 'ETIMEDOUT' })));
    req.on('error', (e: NodeJS.ErrnoException) => {
      const code = e.code ?? '';
      const host = u.hostname;
      const unreachable = UNREACHABLE.has(code);
      reject(new AttemptError(unreachable ? `cannot reach ${host} (${code})` : e.message, unreachable));
    });
  });
}

/** Stream one URL into `tmp`, hashing the raw bytes on the way; returns the MD5. */
async function fetchTo(url: string, tmp: string, timeoutMs: number, onProgress?: DownloadOptions['onProgress']): Promise<string> {
  const res = await request(url, timeoutMs);
  const lenHeader = res.headers['content-length'];
  const total = lenHeader === undefined ? null : Number(lenHeader);
  const hash = createHash('md5');
  let received = 0;
  const tap = new Transform({
    transform(chunk: Buffer, _enc, cb) {
      hash.update(chunk);
      received += chunk.length;
      onProgress?.(received, total, url);
      cb(null, chunk);
    },
  });
  try {
    await pipeline(res, tap, createWriteStream(tmp, { flags: 'wx' }));
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? '';
    throw new AttemptError(`transfer failed after ${received} bytes: ${(e as Error).message}`, UNREACHABLE.has(code));
  }
  if (total !== null && received !== total) throw new AttemptError(`truncated: got ${received} of ${total} bytes`, false);
  return hash.digest('hex');
}

/**
 * Download `dest` from the first mirror that works, verify it, and rename it into place.
 * Tries the URLs in order; a mirror that fails or serves a file with the wrong digest is
 * skipped. Throws DownloadError (naming the file, the expected digest and how to get it
 * by hand) when all fail. Nothing is left at `dest` or next to it unless verified.
 */
export async function downloadVerified(
  urls: string[],
  dest: string,
  expected: Expected | Expected[],
  o: DownloadOptions = {},
): Promise<void> {
  const accept = Array.isArray(expected) ? expected : [expected];
  if (urls.length === 0) throw new Error('downloadVerified: no URLs');
  const created = mkdirSync(dirname(dest), { recursive: true });
  removeStaleSiblings(dest);
  const attempts: DownloadAttempt[] = [];
  for (const url of urls) {
    const tmp = tempSibling(dest);
    try {
      const raw = await fetchTo(url, tmp, o.timeoutMs ?? 30_000, o.onProgress);
      let ok = accept.some((e) => e.of !== 'gunzipped' && e.md5.toLowerCase() === raw);
      let detail = `file has MD5 ${raw}`;
      if (!ok && accept.some((e) => e.of === 'gunzipped')) {
        const inner = await gunzippedMd5(tmp);
        ok = accept.some((e) => e.of === 'gunzipped' && e.md5.toLowerCase() === inner);
        detail += `, gunzipped content ${inner}`;
      }
      if (!ok) throw new AttemptError(`checksum mismatch: ${detail}; expected ${describeExpected(expected)}`, false);
      renameSync(tmp, dest);
      return;
    } catch (e) {
      rmSync(tmp, { force: true });
      attempts.push({ url, reason: (e as Error).message, unreachable: e instanceof AttemptError && e.unreachable });
    }
  }
  if (created !== undefined) rmEmptyDirs(dirname(dest), created);
  throw new DownloadError(basename(dest), describeExpected(expected), attempts, dest, o.manual ?? manualInstructions(urls, dest, expected));
}

/** Remove `dir` and its parents up to (and including) `top` while they are empty. */
function rmEmptyDirs(dir: string, top: string): void {
  for (let d = dir; ; d = dirname(d)) {
    try {
      rmdirSync(d);
    } catch {
      return;
    }
    if (d === top || dirname(d) === d) return;
  }
}

async function gunzippedMd5(file: string): Promise<string> {
  try {
    return await md5File(file, { gunzip: true });
  } catch (e) {
    throw new AttemptError(`not valid gzip data (${(e as Error).message})`, false);
  }
}
