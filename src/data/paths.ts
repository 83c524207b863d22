// Where datasets live. Precedence: an explicit directory (--data-dir) > $CODED_DATA >
// ~/.cache/coded. Read at call time, so a test or a command can set CODED_DATA first.
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { accessSync, constants, readdirSync, rmSync, statSync } from 'node:fs';

/** The user's cache root, ignoring any explicit directory: $CODED_DATA or ~/.cache/coded. */
export function cacheRoot(): string {
  const env = process.env.CODED_DATA;
  return resolve(env !== undefined && env !== '' ? env : join(homedir(), '.cache', 'coded'));
}

/** The data root for this run: explicit > $CODED_DATA > ~/.cache/coded. */
export function dataRoot(explicit?: string): string {
  return explicit !== undefined && explicit !== '' ? resolve(explicit) : cacheRoot();
}

/**
 * true when files may be created in `dir`: its nearest existing ancestor is writable.
 * Directories without any write permission bit count as read-only even for root (who could
 * write there anyway): they are shared or system data that must not be modified.
 * Creates nothing.
 */
export function writableDir(dir: string): boolean {
  for (let d = resolve(dir); ; d = dirname(d)) {
    let st;
    try {
      st = statSync(d);
    } catch {
      if (dirname(d) === d) return false;
      continue;
    }
    if (!st.isDirectory() || (st.mode & 0o222) === 0) return false;
    try {
      accessSync(d, constants.W_OK);
      return true;
    } catch {
      return false;
    }
  }
}

/** A unique temporary name next to `path` (same directory, so rename() is atomic). */
export function tempSibling(path: string, tag = 'part'): string {
  return `${path}.${tag}-${process.pid}-${Math.random().toString(36).slice(2, 10)}`;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Remove temporaries that tempSibling(path, tag) made in processes that have since died
 * (a download or extraction killed half-way), so they never accumulate in the cache.
 */
export function removeStaleSiblings(path: string, tag = 'part'): void {
  const dir = dirname(path);
  const prefix = `${basename(path)}.${tag}-`;
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return;
  }
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const pid = Number(n.slice(prefix.length).split('-')[0]);
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid)) rmSync(join(dir, n), { recursive: true, force: true });
  }
}

/** An explicit data directory (--data-dir) that is missing or not a directory. */
export class DataDirError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DataDirError';
  }
}

/**
 * Check an explicit data directory (--data-dir) before anything looks in it or downloads into
 * it: it must exist and be a directory. The default ($CODED_DATA, ~/.cache/coded) is created
 * on demand instead.
 */
export function checkDataDir(explicit?: string): void {
  if (explicit === undefined || explicit === '') return;
  let st;
  try {
    st = statSync(explicit);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') {
      throw new DataDirError(
        `--data-dir ${explicit} does not exist${resolve(explicit) !== explicit ? ` (${resolve(explicit)})` : ''}: give the directory that holds the datasets (e.g. one with mnist/ in it), ` +
          `create it first (mkdir -p ${explicit}) to download into it, or leave --data-dir out to use ${cacheRoot()}`,
      );
    }
    throw new DataDirError(`--data-dir ${explicit}: ${(e as Error).message}`);
  }
  if (!st.isDirectory()) {
    throw new DataDirError(
      `--data-dir ${explicit} is a file, not a directory: give the directory that holds the datasets (e.g. one with mnist/ in it)`,
    );
  }
}
