// Generators for test data in the exact on-disk layouts (IDX, CIFAR records, tar), and a
// local HTTP server for download tests.
import { createServer, type Server, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';

const created: string[] = [];

/** A fresh temporary directory (removed after the test file when isolateCache() is used). */
export function tempDir(tag = 'coded-data-test-'): string {
  const d = mkdtempSync(join(tmpdir(), tag));
  created.push(d);
  return d;
}

/** IDX bytes: magic 00 00 08 <rank>, big-endian dims, data. */
export function idxBytes(shape: number[], data: Uint8Array, { type = 0x08 } = {}): Buffer {
  const head = Buffer.alloc(4 + 4 * shape.length);
  head[2] = type;
  head[3] = shape.length;
  shape.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  return Buffer.concat([head, Buffer.from(data)]);
}

/** A pixel value that encodes (record, channel, y, x) so layouts can be checked exactly. */
export function pixel(i: number, c: number, y: number, x: number): number {
  return (i * 31 + c * 101 + y * 7 + x * 3) & 0xff;
}

/** CIFAR records: [coarse] label, then R plane, G plane, B plane, each 32x32 row-major. */
export function cifarBytes(labels: number[], coarse?: number[]): Buffer {
  const lb = coarse ? 2 : 1;
  const rec = lb + 3072;
  const b = Buffer.alloc(labels.length * rec);
  labels.forEach((l, i) => {
    const o = i * rec;
    if (coarse) b[o] = coarse[i];
    b[o + lb - 1] = l;
    for (let c = 0; c < 3; c++)
      for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) b[o + lb + c * 1024 + y * 32 + x] = pixel(i, c, y, x);
  });
  return b;
}

export interface TarInput {
  name: string;
  data?: Buffer;
  type?: string;
  /** write the name with a GNU 'L' long-name record / a pax 'x' header / ustar prefix */
  longName?: 'gnu' | 'pax' | 'prefix';
}

function header(name: string, size: number, type: string, prefix = ''): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 100, 'utf8');
  h.write('0000644\0', 100);
  h.write('0000000\0', 108);
  h.write('0000000\0', 116);
  h.write(size.toString(8).padStart(11, '0') + '\0', 124);
  h.write('00000000000\0', 136);
  h.write('        ', 148);
  h.write(type, 156);
  h.write('ustar\0', 257);
  h.write('00', 263);
  if (prefix) h.write(prefix, 345, 155, 'utf8');
  let sum = 0;
  for (const x of h) sum += x;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
  return h;
}

function padded(data: Buffer): Buffer {
  const pad = (512 - (data.length % 512)) % 512;
  return Buffer.concat([data, Buffer.alloc(pad)]);
}

/** A POSIX tar archive of the given entries (with the two zero end blocks). */
export function tarBytes(entries: TarInput[]): Buffer {
  const parts: Buffer[] = [];
  for (const e of entries) {
    const data = e.data ?? Buffer.alloc(0);
    const type = e.type ?? '0';
    let name = e.name;
    let prefix = '';
    if (e.longName === 'gnu') {
      const n = Buffer.from(name + '\0');
      parts.push(header('././@LongLink', n.length, 'L'), padded(n));
      name = name.slice(0, 99);
    } else if (e.longName === 'pax') {
      const rec = (k: string, v: string) => {
        const body = ` ${k}=${v}\n`;
        let len = body.length + 1;
        while (String(len).length + body.length !== len) len = String(len).length + body.length;
        return `${len}${body}`;
      };
      const p = Buffer.from(rec('path', name));
      parts.push(header('PaxHeader', p.length, 'x'), padded(p));
      name = name.slice(0, 99);
    } else if (e.longName === 'prefix') {
      const cut = name.lastIndexOf('/');
      prefix = name.slice(0, cut);
      name = name.slice(cut + 1);
    }
    parts.push(header(name, type === '5' ? 0 : data.length, type, prefix));
    if (type !== '5') parts.push(padded(data));
  }
  parts.push(Buffer.alloc(1024));
  return Buffer.concat(parts);
}

export function tarGz(entries: TarInput[]): Buffer {
  return gzipSync(tarBytes(entries));
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => void;

/** Run fn with a local HTTP server on 127.0.0.1; returns fn's result. */
export async function withServer<T>(handler: Handler, fn: (base: string) => Promise<T>): Promise<T> {
  const server: Server = createServer(handler);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const addr = server.address();
  const port = typeof addr === 'object' && addr !== null ? addr.port : 0;
  try {
    return await fn(`http://127.0.0.1:${port}`);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

/** A port nothing listens on (bound then released). */
export async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const addr = s.address();
  await new Promise<void>((r) => s.close(() => r()));
  return typeof addr === 'object' && addr !== null ? addr.port : 1;
}

/**
 * Point CODED_DATA at a fresh temporary directory for the rest of this test file, so no
 * test writes into the user's cache; removed (and the variable restored) after the file.
 */
export function isolateCache(after: (fn: () => void) => void): string {
  const cache = mkdtempSync(join(tmpdir(), 'coded-cache-'));
  const saved = process.env.CODED_DATA;
  process.env.CODED_DATA = cache;
  after(() => {
    if (saved === undefined) delete process.env.CODED_DATA;
    else process.env.CODED_DATA = saved;
    rmSync(cache, { recursive: true, force: true });
    for (const d of created.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  return cache;
}
