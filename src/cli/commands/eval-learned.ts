// `coded eval CODE_CKPT` for learned-code checkpoints (from `coded train learned`): the shared
// code evaluation on the base model's test set. The base checkpoint is the recorded one unless
// --base is given; either way its SHA-256 must equal the one recorded at training time.
import { existsSync } from 'node:fs';
import { parse, choiceOption, intOption, UsageError } from '../args.js';
import { isDatasetName, loadDataset, disposeDataset } from '../../data/registry.js';
import { loadCode } from '../../codes/registry.js';
import '../../codes/index.js';
import { evaluateCode, formatCodeEvaluation, writeOverallAccuracyPlot } from '../../eval/code-metrics.js';
import { fileSha256 } from '../../train/learned-training.js';
import { loadBase } from './train-learned.js';

export const usage = `coded eval LEARNED_CODE_CKPT [--base CKPT] [--data-dir DIR] [--device cpu|cuda] [--seed N] [--plot PREFIX] [--json]`;

interface LearnedMeta {
  base?: { path?: string; sha256?: string; model?: string; dataset?: string };
}

export async function evalLearnedCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(argv, {
    base: { type: 'string' }, 'data-dir': { type: 'string' }, device: { type: 'string' }, seed: { type: 'string' },
    plot: { type: 'string' }, json: { type: 'boolean' },
  }, usage);
  if (values.help) return void console.log(usage);
  if (positionals.length !== 1) throw new UsageError(`expected one code checkpoint path\n\n${usage}`);
  const path = positionals[0];
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  const { code, metadata, extra } = loadCode(path);
  for (const t of extra.values()) t.dispose();
  const disposeCode = () => { for (const [, m] of code.modules()) m.dispose(); };
  const rec = (metadata as unknown as LearnedMeta).base;
  if (code.family !== 'learned' || rec?.sha256 === undefined || rec.path === undefined) {
    disposeCode();
    throw new Error(`${path} is not a learned-code checkpoint from \`coded train learned\` (no "base" identity in its metadata)`);
  }
  const bp = values.base ?? rec.path;
  if (!existsSync(bp)) {
    disposeCode();
    throw new Error(`${path}: its base checkpoint ${bp} does not exist here; pass --base CKPT (the same file, e.g. models/${rec.dataset}-${rec.model}.safetensors)`);
  }
  const sha = fileSha256(bp);
  if (sha !== rec.sha256) {
    disposeCode();
    throw new Error(`${path}: it was trained for base checkpoint ${rec.path} (sha256 ${rec.sha256.slice(0, 12)}…), but ${bp} differs (sha256 ${sha.slice(0, 12)}…)`);
  }
  let base;
  try {
    base = loadBase(bp);
  } catch (e) {
    disposeCode();
    throw e;
  }
  try {
    if (!isDatasetName(base.meta.dataset)) throw new Error(`unknown dataset '${base.meta.dataset}' in the base checkpoint`);
    base.model.to(device).eval();
    for (const [, m] of code.modules()) m.to(device);
    const ds = await loadDataset(base.meta.dataset, { dataDir: values['data-dir'], validation: 0, log: (s) => process.stderr.write(s + '\n') });
    try {
      const e = evaluateCode({ code, workers: { base: base.model }, test: ds.test, classes: base.meta.classes, device, seed: intOption(values.seed, 'seed', 1, { min: 0 }) });
      if (values.plot) await writeOverallAccuracyPlot(e, values.plot);
      if (values.json) console.log(JSON.stringify({ checkpoint: path, base: rec, ...e }));
      else console.log(`${path}: learned code for base ${bp} (${base.meta.model} on ${base.meta.dataset})\n\n${formatCodeEvaluation(e)}`);
    } finally {
      disposeDataset(ds);
    }
  } finally {
    base.model.dispose();
    disposeCode();
  }
}

/** Whether a checkpoint holds a learned code (cheap: reads the safetensors header only). */
export { isLearnedCheckpoint } from '../../train/learned-training.js';
