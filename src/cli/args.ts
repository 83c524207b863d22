// Shared argument handling: strict parsing with errors that say what was wrong.
import { parseArgs, type ParseArgsConfig } from 'node:util';

import { UsageError, choiceOption } from '../util/usage-error.js';

export { UsageError, choiceOption };

export type Options = NonNullable<ParseArgsConfig['options']>;

export type Parsed<O extends Options> = {
  values: { [K in keyof O]?: O[K]['multiple'] extends true ? string[] : O[K]['type'] extends 'boolean' ? boolean : string } & {
    help?: boolean;
  };
  positionals: string[];
};

export function parse<O extends Options>(argv: string[], options: O, usage: string): Parsed<O> {
  // a negative number after a string option is its value (`--grpc-port -1`), not an option
  const args: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = argv[i + 1];
    const name = a.startsWith('--') ? a.slice(2) : null;
    if (name !== null && !name.includes('=') && options[name]?.type === 'string' && next !== undefined && /^-\d/.test(next)) {
      args.push(`${a}=${next}`);
      i++;
    } else args.push(a);
  }
  const all: Options = { help: { type: 'boolean', short: 'h' }, ...options };
  try {
    return parseArgs({ args, options: all, allowPositionals: true, strict: true }) as unknown as Parsed<O>;
  } catch (e) {
    const err = e as Error & { code?: string };
    const unknown = err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? /Unknown option '([^']+)'/.exec(err.message)?.[1] : undefined;
    if (unknown !== undefined) {
      const guess = closestOption(unknown, Object.keys(all));
      throw new UsageError(`unknown option '${unknown}'${guess !== undefined ? ` (did you mean --${guess}?)` : ''}\n\n${usage}`);
    }
    throw new UsageError(`${err.message}\n\n${usage}`);
  }
}

/** Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent swaps cost 1. */
export function editDistance(a: string, b: string): number {
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
    Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
  );
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/**
 * The known option closest to a mistyped one ('--epoch', '-epochs', '--Epochs=3'), for a
 * "did you mean" hint: a unique option it is a prefix of, else the nearest within a third of
 * its length (at least 2 edits); undefined when nothing is close.
 */
export function closestOption(typed: string, known: string[]): string | undefined {
  const name = typed.replace(/^-+/, '').split('=')[0].toLowerCase();
  if (name === '') return undefined;
  if (known.includes(name)) return name;
  const prefixed = known.filter((k) => k.startsWith(name));
  if (prefixed.length === 1) return prefixed[0];
  let best: string | undefined;
  let bestD = Math.max(2, Math.floor(name.length / 3)) + 1;
  for (const k of known) {
    const dist = editDistance(name, k);
    if (dist < bestD) {
      best = k;
      bestD = dist;
    }
  }
  return best;
}

export function intOption(value: string | undefined, name: string, fallback: number, { min = 1 } = {}): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${value}'`);
  return n;
}

export function numberOption(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isFinite(n)) throw new UsageError(`--${name} must be a number, got '${value}'`);
  return n;
}
