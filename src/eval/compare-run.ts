// A whole `coded compare` run (the CLI parses the options and calls this): the base model and
// its dataset, the trained code checkpoints (each moved to the device with its workers as one
// Module, workerSetState), the training-free codes built for every (K, N) (LeTCC's smoothing
// optionally picked on the validation hold-out), compareSchemes per (K, N), and the report:
// markdown, JSON and the plot (compare.ts formats them).
import { mkdirSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import type { Device } from '../engine/dtype.js';
import { readCheckpointHeader } from '../nn/checkpoint.js';
import { isDatasetName, loadDataset, disposeDataset } from '../data/registry.js';
import { loadBaseCheckpoint } from '../models/base-checkpoint.js';
import { codeFromConfig } from '../codes/registry.js';
import { loadCodeCheckpoint } from '../codes/checkpoint.js';
import { workerSetState } from '../codes/code-state.js';
import { LagrangeCode } from '../codes/lagrange.js';
import '../codes/index.js';
import { UsageError } from '../util/usage-error.js';
import { compareSchemes, comparisonSpec, formatComparison, type ComparisonSection, type Scheme } from './compare.js';
import { pickSmoothing } from './pick-smoothing.js';
import { renderVegaLite } from './code-metrics.js';

/** One entry of the comparison: no code, replication, a training-free code with parameters, or a trained code checkpoint. */
export type CompareEntry =
  | { kind: 'none' }
  | { kind: 'replication' }
  /** `text` is the entry as given (the scheme's label unless it is the bare family) */
  | { kind: 'spec'; family: string; params: Record<string, unknown>; text: string }
  | { kind: 'checkpoint'; path: string };

export interface CompareRunOptions {
  /** the base checkpoint */
  basePath: string;
  /** every (K, N) compared */
  configs: readonly { k: number; n: number }[];
  entries: readonly CompareEntry[];
  /** LeTCC entries without lambdas get them picked on the base model's validation hold-out */
  pickSmoothing?: boolean;
  dataDir?: string;
  device?: Device;
  seed?: number;
  /** the command line, recorded in the report */
  command: string;
  log?: (line: string) => void;
}

export interface ComparePick {
  k: number;
  n: number;
  lambdaEnc: number;
  lambdaDec: number;
  samples: number;
}

export interface CompareRun {
  sections: ComparisonSection[];
  /** the report as markdown: a table per (K, N) */
  markdown: string;
  /** the results as written to compare.json */
  json: { base: string; dataset: string; model: string; command: string; picks: ComparePick[]; sections: ComparisonSection[] };
}

interface LoadedCheckpoint {
  path: string;
  scheme: Scheme & { kind: 'code' };
  dispose(): void;
}

function loadCheckpoint(path: string, basePath: string): LoadedCheckpoint {
  const header = readCheckpointHeader(path) as { kind?: string; code?: { family?: string } };
  if (header.kind !== 'code') throw new Error(`--codes: ${path} is not a code checkpoint (from coded train parity|learned|polynomial)`);
  const label = `${header.code?.family} (${basename(path)})`;
  // the one loader: the code, its own parity models or worker networks, and its own copy of the base model
  const l = loadCodeCheckpoint(path, { basePath });
  if (l.code instanceof LagrangeCode) l.code.train(false);
  return { path, scheme: { label, kind: 'code', code: l.code, workers: l.workers }, dispose: () => l.dispose() };
}

/** Run the comparison: every entry in every (K, N) it fits, on the base model's test set. */
export async function runComparison(o: CompareRunOptions): Promise<CompareRun> {
  const { configs, entries } = o;
  const device = o.device ?? 'cpu';
  const seed = o.seed ?? 1;
  const say = o.log ?? (() => {});
  const { model: base, meta } = loadBaseCheckpoint(o.basePath);
  const checkpoints: LoadedCheckpoint[] = [];
  try {
    if (!isDatasetName(meta.dataset)) throw new Error(`${o.basePath}: unknown dataset '${meta.dataset}' in metadata`);
    base.to(device).eval();
    for (const e of entries) if (e.kind === 'checkpoint') checkpoints.push(loadCheckpoint(e.path, o.basePath));
    for (const c of checkpoints) {
      workerSetState(c.scheme.code, c.scheme.workers).to(device);
      const { k, n } = c.scheme.code;
      if (!configs.some((x) => x.k === k && x.n === n)) {
        throw new UsageError(
          `--codes ${c.path}: its code has K = ${k}, N = ${n}, which no --k / --n configuration has (${configs.map((x) => `${x.k}/${x.n}`).join(', ')})`,
        );
      }
    }
    const classes = meta.classes.length;
    let validation: Awaited<ReturnType<typeof loadDataset>> | null = null;
    const wantsPick =
      o.pickSmoothing === true &&
      entries.some(
        (e) => e.kind === 'spec' && e.family === 'letcc' && e.params.lambdaEnc === undefined && e.params.lambdaDec === undefined,
      );
    if (o.pickSmoothing && !wantsPick) throw new UsageError('--pick-smoothing: no letcc entry without lambdas to pick for');
    const ds = await loadDataset(meta.dataset, { dataDir: o.dataDir, validation: 0, log: say });
    const sections: ComparisonSection[] = [];
    const picks: ComparePick[] = [];
    try {
      if (wantsPick) {
        const splitSeed = (meta.config as { seed?: number } | undefined)?.seed ?? 1;
        validation = await loadDataset(meta.dataset, { dataDir: o.dataDir, seed: splitSeed, log: say });
      }
      for (const c of configs) {
        const schemes: Scheme[] = [];
        for (const e of entries) {
          if (e.kind === 'none') schemes.push({ label: 'no code', kind: 'replication', k: c.k, n: c.k });
          else if (e.kind === 'replication') schemes.push({ label: 'replication', kind: 'replication', k: c.k, n: c.n });
          else if (e.kind === 'checkpoint') {
            const l = checkpoints.find((x) => x.path === e.path)!;
            if (l.scheme.code.k === c.k && l.scheme.code.n === c.n) schemes.push(l.scheme);
          } else {
            let params = e.params;
            if (e.family === 'letcc' && wantsPick && params.lambdaEnc === undefined && params.lambdaDec === undefined) {
              say(`K = ${c.k}, N = ${c.n}: picking LeTCC smoothing on ${validation!.validation!.size} validation samples`);
              const p = pickSmoothing({ k: c.k, n: c.n, base, validation: validation!.validation!, classes, device, seed });
              say(`  picked lambdaEnc ${p.lambdaEnc}, lambdaDec ${p.lambdaDec}`);
              picks.push({ k: c.k, n: c.n, lambdaEnc: p.lambdaEnc, lambdaDec: p.lambdaDec, samples: p.samples });
              params = { lambdaEnc: p.lambdaEnc, lambdaDec: p.lambdaDec };
            }
            const code = codeFromConfig({ family: e.family, k: c.k, r: c.n - c.k, ...params });
            schemes.push({ label: e.text === e.family ? e.family : e.text, kind: 'code', code, workers: { base } });
          }
        }
        say(`K = ${c.k}, N = ${c.n}: ${schemes.length} schemes`);
        const results = compareSchemes({
          schemes,
          base,
          test: ds.test,
          classes,
          maxStragglers: c.n - c.k,
          device,
          seed,
          onScheme: (label) => say(`  ${label}`),
        });
        sections.push({ k: c.k, n: c.n, results });
      }
    } finally {
      disposeDataset(ds);
      if (validation !== null) disposeDataset(validation);
    }
    const header =
      `## coded compare: ${meta.model} on ${meta.dataset} (base ${o.basePath})\n\n\`${o.command}\`` +
      (picks.length
        ? `\n\nLeTCC smoothing picked on the validation hold-out: ${picks.map((p) => `K=${p.k}, N=${p.n}: lambdaEnc ${p.lambdaEnc}, lambdaDec ${p.lambdaDec}`).join('; ')}`
        : '');
    const markdown = formatComparison(sections, header);
    const json = { base: o.basePath, dataset: meta.dataset, model: meta.model, command: o.command, picks, sections };
    return { sections, markdown, json };
  } finally {
    for (const c of checkpoints) c.dispose();
    base.dispose();
  }
}

/** Write DIR/compare.md, compare.json, compare.svg and compare.png (a plot that cannot be rendered is a warning). */
export async function writeComparison(dir: string, run: CompareRun, log: (line: string) => void = () => {}): Promise<void> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'compare.md'), run.markdown + '\n');
  writeFileSync(join(dir, 'compare.json'), JSON.stringify(run.json, null, 2) + '\n');
  try {
    await renderVegaLite(comparisonSpec(run.sections), join(dir, 'compare.svg'), join(dir, 'compare.png'));
  } catch (e) {
    log(`warning: the plot was not written (${(e as Error).message}); the results are in ${join(dir, 'compare.json')}`);
  }
  log(`wrote ${join(dir, 'compare.md')}, compare.json, compare.svg, compare.png`);
}
