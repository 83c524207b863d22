// A small streaming tar reader (POSIX ustar, with GNU long names and pax path/size
// records) and a .tar.gz extractor: enough for the CIFAR archives without any external
// tar. Regular files and directories are extracted; links and devices are skipped; paths
// that are absolute or climb out with '..' are refused.
import { closeSync, createReadStream, mkdirSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { dirname, join, normalize, sep } from 'node:path';
import { createGunzip } from 'node:zlib';
import { DataFileError } from './errors.js';

const BLOCK = 512;

export interface TarHeader {
  name: string;
  /** '0' file, '5' directory, ... (the raw type flag; '\0' is reported as '0') */
  type: string;
  size: number;
  mode: number;
}

/** Reads exact byte counts from an async stream of Buffers. */
class ByteReader {
  private chunks: Buffer[] = [];
  private have = 0;
  private done = false;
  constructor(private readonly it: AsyncIterator<Buffer>) {}

  private async fill(n: number): Promise<void> {
    while (this.have < n && !this.done) {
      const r = await this.it.next();
      if (r.done) this.done = true;
      else if (r.value.length > 0) {
        this.chunks.push(r.value);
        this.have += r.value.length;
      }
    }
  }

  /** Exactly n bytes; fewer only at the end of the stream (the caller checks). */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    const take = Math.min(n, this.have);
    const out = Buffer.allocUnsafe(take);
    let off = 0;
    while (off < take) {
      const c = this.chunks[0];
      const k = Math.min(c.length, take - off);
      c.copy(out, off, 0, k);
      off += k;
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
    }
    this.have -= take;
    return out;
  }

  /** n bytes delivered in pieces (no copying of large payloads); stops early at end of stream. */
  async *pieces(n: number): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.have === 0) await this.fill(1);
      if (this.have === 0) return;
      const c = this.chunks[0];
      const k = Math.min(c.length, left);
      yield c.subarray(0, k);
      if (k === c.length) this.chunks.shift();
      else this.chunks[0] = c.subarray(k);
      this.have -= k;
      left -= k;
    }
  }
}

function cstr(b: Buffer, off: number, len: number): string {
  const end = b.indexOf(0, off);
  return b.toString('utf8', off, end < 0 || end > off + len ? off + len : end);
}

function numeric(b: Buffer, off: number, len: number, file: string, field: string): number {
  if (b[off] & 0x80) {
    // GNU base-256: big-endian binary, first byte's high bit set
    let v = b[off] & 0x7f;
    for (let i = 1; i < len; i++) v = v * 256 + b[off + i];
    return v;
  }
  const s = cstr(b, off, len).trim();
  if (s === '') return 0;
  if (!/^[0-7]+$/.test(s)) throw new DataFileError(file, `corrupt tar header: ${field} field '${s}' is not octal`);
  return parseInt(s, 8);
}

function parseHeader(b: Buffer, file: string): TarHeader {
  const stored = numeric(b, 148, 8, file, 'checksum');
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += i >= 148 && i < 156 ? 0x20 : b[i];
  if (sum !== stored)
    throw new DataFileError(file, `corrupt tar header (checksum ${sum}, header says ${stored}); delete the archive and fetch it again`);
  let name = cstr(b, 0, 100);
  if (b.toString('latin1', 257, 262) === 'ustar') {
    const prefix = cstr(b, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  const flag = String.fromCharCode(b[156]);
  return { name, type: flag === '\0' ? '0' : flag, size: numeric(b, 124, 12, file, 'size'), mode: numeric(b, 100, 8, file, 'mode') };
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let off = 0;
  while (off < data.length) {
    const sp = data.indexOf(0x20, off);
    if (sp < 0) break;
    const len = parseInt(data.toString('latin1', off, sp), 10);
    if (!(len > 0)) break;
    const rec = data.toString('utf8', sp + 1, off + len - 1);
    const eq = rec.indexOf('=');
    if (eq > 0) out[rec.slice(0, eq)] = rec.slice(eq + 1);
    off += len;
  }
  return out;
}

/** A safe relative path for an entry, or an error for absolute / escaping names. */
export function safeEntryPath(name: string, file: string): string {
  const n = normalize(name.replace(/\\/g, '/'));
  if (
    n.startsWith('/') ||
    n.startsWith(sep) ||
    /^[A-Za-z]:/.test(n) ||
    n === '..' ||
    n.startsWith(`..${sep}`) ||
    n.split(sep).includes('..')
  ) {
    throw new DataFileError(file, `refusing tar entry '${name}': absolute path or '..'`);
  }
  return n.replace(/[/\\]+$/, '');
}

/**
 * Walk a tar stream: calls onEntry for every file or directory with an async iterator
 * over its data. The callback must consume the data (or not; unread data is skipped).
 */
export async function readTar(
  source: AsyncIterable<Buffer>,
  file: string,
  onEntry: (h: TarHeader, data: AsyncGenerator<Buffer>) => Promise<void>,
): Promise<number> {
  const r = new ByteReader(source[Symbol.asyncIterator]());
  let longName: string | null = null;
  let pax: Record<string, string> = {};
  let entries = 0;
  for (;;) {
    const block = await r.read(BLOCK);
    if (block.length === 0) break; // no end-of-archive blocks: tolerated
    if (block.length < BLOCK) throw new DataFileError(file, 'truncated tar archive (partial header block); delete it and fetch it again');
    if (block.every((x) => x === 0)) break; // end of archive
    const h = parseHeader(block, file);
    if (longName !== null) h.name = longName;
    if (pax.path !== undefined) h.name = pax.path;
    if (pax.size !== undefined) h.size = Number(pax.size);
    const padded = Math.ceil(h.size / BLOCK) * BLOCK;
    if (h.type === 'L' || h.type === 'x' || h.type === 'g') {
      const data = await r.read(padded);
      if (data.length < padded) throw new DataFileError(file, 'truncated tar archive; delete it and fetch it again');
      if (h.type === 'L') longName = cstr(data, 0, h.size);
      else if (h.type === 'x') pax = parsePax(data.subarray(0, h.size));
      continue;
    }
    longName = null;
    pax = {};
    let consumed = 0;
    const it = (async function* () {
      for await (const p of r.pieces(h.size)) {
        consumed += p.length;
        yield p;
      }
    })();
    await onEntry(h, it);
    for await (const p of r.pieces(h.size - consumed)) consumed += p.length;
    if (consumed < h.size)
      throw new DataFileError(
        file,
        `truncated tar archive: entry '${h.name}' needs ${h.size} bytes, got ${consumed}; delete it and fetch it again`,
      );
    const pad = await r.read(padded - h.size);
    if (pad.length < padded - h.size) throw new DataFileError(file, 'truncated tar archive; delete it and fetch it again');
    entries++;
  }
  return entries;
}

/** Open a .tar or .tar.gz file as a stream of (decompressed) bytes. */
function tarStream(archive: string): AsyncIterable<Buffer> {
  const magic = Buffer.alloc(2);
  let fd: number;
  try {
    fd = openSync(archive, 'r');
  } catch (e) {
    throw new DataFileError(archive, (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : (e as Error).message);
  }
  try {
    readSync(fd, magic, 0, 2, 0);
  } finally {
    closeSync(fd);
  }
  const raw = createReadStream(archive);
  if (!(magic[0] === 0x1f && magic[1] === 0x8b)) return raw as AsyncIterable<Buffer>;
  return (async function* () {
    try {
      for await (const c of raw.pipe(createGunzip()) as AsyncIterable<Buffer>) yield c;
    } catch (e) {
      throw new DataFileError(archive, `corrupt or truncated gzip data (${(e as Error).message}); delete it and fetch it again`);
    } finally {
      raw.destroy();
    }
  })();
}

/**
 * Extract a .tar.gz (or plain .tar) into destDir (created). Returns the relative paths of
 * the regular files written. Entries other than files and directories are skipped.
 */
export async function extractTar(archive: string, destDir: string): Promise<string[]> {
  mkdirSync(destDir, { recursive: true });
  const written: string[] = [];
  await readTar(tarStream(archive), archive, async (h, data) => {
    if (h.type !== '0' && h.type !== '7' && h.type !== '5') return;
    const rel = safeEntryPath(h.name, archive);
    if (rel === '' || rel === '.') return;
    const target = join(destDir, rel);
    if (h.type === '5') {
      mkdirSync(target, { recursive: true });
      return;
    }
    mkdirSync(dirname(target), { recursive: true });
    const fh = await open(target, 'w');
    try {
      for await (const piece of data) await fh.write(piece);
    } finally {
      await fh.close();
    }
    written.push(rel);
  });
  return written;
}
