// Plumbing shared by the training sweeps (`coded train learned --config FILE`, `coded train
// parity --config FILE`): a JSON config checked against a TypeBox schema with the errors
// listed, and the results table (results.json + results.md in the sweep's "out" directory),
// rewritten after every run so an interrupted sweep keeps what it finished.
import { writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { TSchema } from '@sinclair/typebox';

/** TypeBox's `Type` builder (a type only: typebox itself is loaded when a sweep is parsed). */
export type TypeBuilder = typeof import('@sinclair/typebox')['Type'];

/** The fields every training sweep has: where results go, data, device, seed, epochs and the base checkpoints. */
export function commonSweepFields(Type: TypeBuilder) {
  return {
    out: Type.String({ minLength: 1 }),
    dataDir: Type.Optional(Type.String()),
    device: Type.Optional(Type.Union([Type.Literal('cpu'), Type.Literal('cuda')])),
    seed: Type.Optional(Type.Integer({ minimum: 0 })),
    epochs: Type.Integer({ minimum: 1 }),
    base: Type.Array(Type.String({ minLength: 1 }), { minItems: 1 }),
  };
}

/**
 * Parse `text` as JSON and check it against the schema `build(Type)` makes; on mismatch the
 * error lists the problems (up to 10), one per line with its JSON path. TypeBox is imported
 * here, so single (non-sweep) runs need no node_modules at run time.
 */
export async function parseSweepConfig<T>(text: string, path: string, build: (Type: TypeBuilder) => TSchema): Promise<T> {
  const { Type } = await import('@sinclair/typebox');
  const { Value } = await import('@sinclair/typebox/value');
  const schema = build(Type);
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`${path}: not valid JSON (${(e as Error).message})`);
  }
  if (!Value.Check(schema, raw)) {
    const errs = [...Value.Errors(schema, raw)].slice(0, 10).map((e) => `  ${e.path || '/'}: ${e.message}`);
    throw new Error(`${path} does not match the sweep schema:\n${errs.join('\n')}`);
  }
  return raw as T;
}

/** A checkpoint path's file name without `.safetensors`: the first part of a sweep run's name. */
export function checkpointStem(path: string): string {
  return basename(path).replace(/\.safetensors$/, '');
}

export const pct = (v: number): string => `${(100 * v).toFixed(2)}%`;

/** One column of a sweep's results.md: header and the cell text of a row. */
export interface SweepColumn<R> {
  header: string;
  cell: (row: R) => string;
}

/** Text safe inside a markdown table cell (no pipes or line breaks). */
export function tableCell(s: string): string {
  return s.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');
}

/** Write `rows` to out/results.json (as they are) and out/results.md (a table with `columns`). */
export function writeSweepResults<R>(out: string, rows: readonly R[], columns: readonly SweepColumn<R>[]): void {
  writeFileSync(join(out, 'results.json'), JSON.stringify(rows, null, 2) + '\n');
  const md = [
    `| ${columns.map((c) => c.header).join(' | ')} |`,
    `|${columns.map(() => '---|').join('')}`,
    ...rows.map((row) => `| ${columns.map((c) => c.cell(row)).join(' | ')} |`),
  ];
  writeFileSync(join(out, 'results.md'), md.join('\n') + '\n');
}
