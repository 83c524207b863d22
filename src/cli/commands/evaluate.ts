// `coded eval base CKPT`: test accuracy (overall and per class) of a base-model checkpoint.
import { parse, choiceOption, UsageError } from '../args.js';
import { isDatasetName, loadTestSet, disposeTestSet } from '../../data/registry.js';
import { loadBaseCheckpoint } from '../../models/base-checkpoint.js';
import { classifierAccuracy } from '../../eval/classifier-accuracy.js';

export const usage = `coded eval base CKPT [--data-dir DIR] [--device cpu|cuda] [--json]

Test accuracy, overall and per class, of a base-model checkpoint written by
\`coded train base\` (the checkpoint names its dataset, model and normalisation).`;

export async function evaluate(argv: string[]): Promise<void> {
  const [what, ...rest] = argv;
  if (what === '--help' || what === '-h') return void console.log(usage);
  if (what === undefined) throw new UsageError(`expected 'base CKPT'\n\n${usage}`);
  if (what !== 'base') throw new UsageError(`unknown evaluation target '${what}' (available: base)\n\n${usage}`);
  const { values, positionals } = parse(
    rest,
    { 'data-dir': { type: 'string' }, device: { type: 'string' }, json: { type: 'boolean' } },
    usage,
  );
  if (values.help) return void console.log(usage);
  if (positionals.length !== 1) throw new UsageError(`expected one checkpoint path\n\n${usage}`);
  const path = positionals[0];
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  const { model, meta } = loadBaseCheckpoint(path);
  if (!isDatasetName(meta.dataset)) {
    model.dispose();
    throw new Error(`${path}: unknown dataset '${meta.dataset}' in metadata`);
  }
  let ds: Awaited<ReturnType<typeof loadTestSet>> | null = null;
  try {
    model.to(device);
    ds = await loadTestSet(meta.dataset, { dataDir: values['data-dir'], log: (s) => process.stderr.write(s + '\n') });
    const r = classifierAccuracy(model, ds.test, { numClasses: meta.classes.length, device });
    const perClass = r.perClass.map((c, i) => ({ name: meta.classes[i], accuracy: c.accuracy, correct: c.correct, total: c.total }));
    if (values.json) {
      console.log(
        JSON.stringify({
          checkpoint: path,
          dataset: meta.dataset,
          model: meta.model,
          testAccuracy: r.accuracy,
          correct: r.correct,
          total: r.total,
          perClass,
        }),
      );
    } else {
      console.log(`${meta.model} on ${meta.dataset} test set: ${(100 * r.accuracy).toFixed(2)}% (${r.correct}/${r.total})`);
      for (const c of perClass) console.log(`  ${c.name.padEnd(14)} ${(100 * c.accuracy).toFixed(2)}%`);
    }
  } finally {
    if (ds !== null) disposeTestSet(ds);
    model.dispose();
  }
}
