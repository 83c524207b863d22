// `coded eval base CKPT`: test accuracy (overall and per class) of a base-model checkpoint.
import { parse, choiceOption, UsageError } from '../args.js';
import { isDatasetName, loadDataset, disposeDataset } from '../../data/registry.js';
import { buildModel } from '../../models/registry.js';
import { readCheckpoint } from '../../nn/checkpoint.js';
import { classifierAccuracy } from '../../eval/classifier-accuracy.js';

export const usage = `coded eval base CKPT [--data-dir DIR] [--device cpu|cuda] [--json]

Test accuracy, overall and per class, of a base-model checkpoint written by
\`coded train base\` (the checkpoint names its dataset, model and normalisation).`;

interface BaseMeta {
  kind?: string;
  dataset?: string;
  model?: string;
  input?: { channels: number; height: number; width: number };
  classes?: string[];
}

export async function evaluate(argv: string[]): Promise<void> {
  const [what, ...rest] = argv;
  if (what === undefined || what === '--help' || what === '-h') return void console.log(usage);
  if (what !== 'base') throw new UsageError(`unknown evaluation target '${what}' (available: base)\n\n${usage}`);
  const { values, positionals } = parse(rest, { 'data-dir': { type: 'string' }, device: { type: 'string' }, json: { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage);
  if (positionals.length !== 1) throw new UsageError(`expected one checkpoint path\n\n${usage}`);
  const path = positionals[0];
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  const ck = readCheckpoint(path);
  const meta = ck.metadata as BaseMeta;
  if (meta.kind !== 'base' || !meta.dataset || !meta.model || !meta.input || !meta.classes) {
    for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
    throw new Error(`${path} is not a base-model checkpoint from \`coded train base\` (its metadata lacks kind/dataset/model/input)`);
  }
  if (!isDatasetName(meta.dataset)) throw new Error(`${path}: unknown dataset '${meta.dataset}' in metadata`);
  const model = buildModel(meta.model, { ...meta.input, classes: meta.classes.length });
  try {
    model.loadStateDict(ck.state);
  } finally {
    for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
  }
  model.to(device);
  const ds = await loadDataset(meta.dataset, { dataDir: values['data-dir'], validation: 0, log: (s) => process.stderr.write(s + '\n') });
  try {
    const r = classifierAccuracy(model, ds.test, { numClasses: meta.classes.length, device });
    const perClass = r.perClass.map((c, i) => ({ name: meta.classes![i], accuracy: c.accuracy, correct: c.correct, total: c.total }));
    if (values.json) {
      console.log(JSON.stringify({ checkpoint: path, dataset: meta.dataset, model: meta.model, testAccuracy: r.accuracy, correct: r.correct, total: r.total, perClass }));
    } else {
      console.log(`${meta.model} on ${meta.dataset} test set: ${(100 * r.accuracy).toFixed(2)}% (${r.correct}/${r.total})`);
      for (const c of perClass) console.log(`  ${c.name.padEnd(14)} ${(100 * c.accuracy).toFixed(2)}%`);
    }
  } finally {
    disposeDataset(ds);
    model.dispose();
  }
}
