// `coded compare`: every coding scheme side by side on one harness (src/eval/compare.ts): given
// trained checkpoints (parity models, learned codes, Lagrange codes), the training-free codes
// (Berrut, LeTCC, B-spline), replication and no code, for one or more (K, N). This file parses
// the options; the run is runComparison (src/eval/compare-run.ts).
import { parse, choiceOption, intOption, UsageError } from '../args.js';
import { codeFromConfig } from '../../codes/registry.js';
import { parseCodeSpec } from '../../codes/spec.js';
import type { CodeConfig } from '../../codes/code.js';
import '../../codes/index.js';
import { runComparison, writeComparison, type CompareEntry } from '../../eval/compare-run.js';

const DEFAULT_CODES = 'none replication berrut letcc bspline';

export const usage = `coded compare --base CKPT --k K --n N [--codes "ENTRY ..."] [--pick-smoothing] [--out DIR] [--json]

Every scheme on one harness: the base model's test set in coding groups of k; for every number
of stragglers s = 0..N-K every pattern of s late workers is decoded. One table per (K, N)
(accuracy of the k answers by s, recovery, workers per query, extra multiply-adds per query,
encode and decode time per group, all measured in this run) and one plot.

Options:
  --base CKPT        base model (e.g. models/fashion-mnist-base-mlp.safetensors)
  --k LIST           queries per group: 2, 2,3,4 or 2..4
  --n LIST           workers: 4, 3,4,5 or 3..5 (every combination with n >= k), or
  --r LIST           extra workers: N = K + R for each K (e.g. --k 2..4 --r 1..3)
  --codes "E ..."    entries, space-separated (default "${DEFAULT_CODES}"); the option may repeat:
                       none | replication (round-robin over the N workers)
                       berrut | letcc | bspline, or with parameters: letcc:lambdaDec=0.001
                       CKPT.safetensors: a trained code (coded train parity|learned|polynomial),
                       compared in every (K, N) that matches its own
  --pick-smoothing   LeTCC entries without lambdas get them picked on the base model's
                     validation hold-out, for each (K, N)
  --out DIR          write DIR/compare.md, DIR/compare.json, DIR/compare.svg, DIR/compare.png
  --data-dir DIR     where datasets live
  --device D         cpu | cuda (default cpu)
  --seed N           coding-group permutation (default 1)
  --json             print the results as JSON instead of markdown`;

/** "2", "2,3,4" or "2..4" -> integers >= min */
export function parseIntList(v: string, name: string, min: number): number[] {
  const out: number[] = [];
  for (const part of v.split(',')) {
    const m = /^\s*(\d+)\s*(?:\.\.\s*(\d+)\s*)?$/.exec(part);
    if (m === null) throw new UsageError(`--${name}: '${part}' is not an integer or a range A..B (e.g. 2, 2,3,4 or 2..4)`);
    const a = Number(m[1]);
    const b = m[2] === undefined ? a : Number(m[2]);
    if (b < a) throw new UsageError(`--${name}: empty range ${part}`);
    for (let x = a; x <= b; x++) out.push(x);
  }
  for (const x of out) if (x < min) throw new UsageError(`--${name}: values must be >= ${min}, got ${x}`);
  return [...new Set(out)];
}

function parseEntries(lists: readonly string[]): CompareEntry[] {
  const out: CompareEntry[] = [];
  for (const raw of lists.flatMap((l) => l.split(/\s+/)).filter((s) => s !== '')) {
    if (raw === 'none') out.push({ kind: 'none' });
    else if (raw === 'replication') out.push({ kind: 'replication' });
    else if (raw.endsWith('.safetensors')) out.push({ kind: 'checkpoint', path: raw });
    else {
      const colon = raw.indexOf(':');
      const family = colon < 0 ? raw : raw.slice(0, colon);
      if (!['berrut', 'letcc', 'bspline'].includes(family)) {
        throw new UsageError(
          `--codes: unknown entry '${raw}' (none, replication, berrut, letcc, bspline, FAMILY:key=value,..., or a checkpoint .safetensors)`,
        );
      }
      // the parameters only: k and n come from --k / --n
      const body = colon < 0 ? '' : raw.slice(colon + 1);
      if (/(^|,)\s*(k|n|r)\s*=/.test(body)) throw new UsageError(`--codes: '${raw}': k and n come from --k and --n`);
      let cfg: CodeConfig;
      try {
        cfg = parseCodeSpec(`${family}:k=1,n=1${body ? `,${body}` : ''}`);
      } catch (e) {
        throw new UsageError(`--codes: '${raw}': ${(e as Error).message.replace(/^code spec '[^']*': /, '')}`);
      }
      const { family: _f, k: _k, r: _r, ...params } = cfg;
      out.push({ kind: 'spec', family, params, text: raw });
    }
  }
  if (out.length === 0) throw new UsageError('--codes: no entries');
  return out;
}

export async function compareCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      base: { type: 'string' },
      k: { type: 'string' },
      n: { type: 'string' },
      r: { type: 'string' },
      codes: { type: 'string', multiple: true },
      'pick-smoothing': { type: 'boolean' },
      out: { type: 'string' },
      'data-dir': { type: 'string' },
      device: { type: 'string' },
      seed: { type: 'string' },
      json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  if (positionals.length > 0)
    throw new UsageError(`unexpected argument(s) ${positionals.join(' ')} (checkpoints go in --codes)\n\n${usage}`);
  if (values.base === undefined) throw new UsageError(`--base CKPT is required\n\n${usage}`);
  if (values.k === undefined) throw new UsageError(`--k is required\n\n${usage}`);
  if ((values.n === undefined) === (values.r === undefined)) throw new UsageError(`give exactly one of --n and --r\n\n${usage}`);
  const ks = parseIntList(values.k, 'k', 1);
  const configs: { k: number; n: number }[] = [];
  for (const k of ks) {
    if (values.n !== undefined)
      for (const n of parseIntList(values.n, 'n', 1)) {
        if (n >= k) configs.push({ k, n });
      }
    else for (const r of parseIntList(values.r!, 'r', 0)) configs.push({ k, n: k + r });
  }
  if (configs.length === 0) throw new UsageError('no (K, N) with N >= K in --k x --n');
  const entries = parseEntries(values.codes ?? [DEFAULT_CODES]);
  for (const c of configs) {
    for (const e of entries) {
      if (e.kind !== 'spec') continue;
      try {
        codeFromConfig({ family: e.family, k: c.k, r: c.n - c.k, ...e.params });
      } catch (err) {
        throw new UsageError(`--codes ${e.text} with K = ${c.k}, N = ${c.n}: ${(err as Error).message}`);
      }
    }
  }
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  const seed = intOption(values.seed, 'seed', 1, { min: 0 });
  const say = (s: string) => process.stderr.write(s + '\n');
  const run = await runComparison({
    basePath: values.base,
    configs,
    entries,
    pickSmoothing: values['pick-smoothing'] === true,
    dataDir: values['data-dir'],
    device,
    seed,
    command: `coded compare ${argv.join(' ')}`,
    log: say,
  });
  if (values.out !== undefined) await writeComparison(values.out, run, say);
  console.log(values.json ? JSON.stringify(run.json) : run.markdown);
}
