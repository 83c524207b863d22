// `coded demo`: the end-to-end engine demo — train Base-MLP (784-200-100-10) on
// Fashion-MNIST and report test accuracy per class.
import { parse, intOption, choiceOption } from '../args.js';
import { Progress } from '../progress.js';
import { loadMnistFamily, CLASS_NAMES, type MnistFamily } from '../../data/mnist-family.js';
import { manualSeed, getNumThreads, setNumThreads, torchVersion } from '../../engine/runtime.js';
import { trainDemoMlp } from '../../train/engine-demo.js';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadCodeCheckpoint, type ParityCheckpointMeta } from '../../codes/checkpoint.js';
import { evaluateCode, type CodeEvaluation } from '../../eval/code-metrics.js';
import { loadTestSet, disposeTestSet } from '../../data/registry.js';

export const usage = `coded demo [options]

Part 1 trains Base-MLP (784-200-100-10, ReLU) on Fashion-MNIST with Adam (lr 1e-3, L2 1e-5,
batch 64) and prints test accuracy, overall and per class.
Part 2 runs coded inference with the shipped models: the trained Base-MLP and its parity
model (image-concatenation code, k = 2, r = 1) from models/; every test image is grouped
with another, one base output of each group is taken away, and the parity output
reconstructs it. Prints base accuracy A_a, degraded-mode accuracy A_d (accuracy of the
reconstructions), recovery and A_o(f) = (1 - f) A_a + f A_d.

Options:
  --dataset fashion-mnist|mnist   (default fashion-mnist)
  --data-dir DIR                  where datasets live (default $CODED_DATA or ~/.cache/coded;
                                  Fashion-MNIST also from /usr/share/datasets/fashion-mnist)
  --epochs N                      (default 1)
  --seed N                        (default 1)
  --threads N                     libtorch intra-op threads (default: all cores)
  --no-coded                      skip part 2
  --json                          print one JSON object instead of text
  -h, --help

coded demo serve [options]: coded serving end to end (instances, frontends, live accuracy
and latency); see \`coded demo serve --help\`.

coded demo localization [options]: regression outputs (box IoU) with a parity model on a
synthetic localization dataset; see \`coded demo localization --help\`.`;

export async function demo(argv: string[]): Promise<void> {
  if (argv[0] === 'serve') return (await import('./demo-serve.js')).demoServe(argv.slice(1));
  if (argv[0] === 'localization') return (await import('./demo-localization.js')).demoLocalization(argv.slice(1));
  const { values } = parse(
    argv,
    {
      dataset: { type: 'string' },
      'data-dir': { type: 'string' },
      epochs: { type: 'string' },
      seed: { type: 'string' },
      threads: { type: 'string' },
      json: { type: 'boolean' },
      'no-coded': { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  const dataset = choiceOption(values.dataset, 'dataset', ['fashion-mnist', 'mnist'] as const, 'fashion-mnist') as MnistFamily;
  const epochs = intOption(values.epochs, 'epochs', 1);
  const seed = intOption(values.seed, 'seed', 1, { min: 0 });
  if (values.threads !== undefined) setNumThreads(intOption(values.threads, 'threads', 1));
  const json = values.json ?? false;
  const log = (s: string) => {
    if (!json) console.log(s);
  };

  manualSeed(seed);
  log(`libtorch ${torchVersion()}, ${getNumThreads()} threads; loading ${dataset} ...`);
  const train = loadMnistFamily(dataset, { dataDir: values['data-dir'], split: 'train' });
  const test = loadMnistFamily(dataset, { dataDir: values['data-dir'], split: 'test' });
  let bar: Progress | null = null;
  let smooth = NaN;
  const { history, testAccuracy, perClass } = trainDemoMlp(train, test, {
    epochs,
    onEpochStart: (epoch, batches) => {
      bar = new Progress(`epoch ${epoch}/${epochs}`, batches, { enabled: !json, unit: 'batch' });
      smooth = NaN;
    },
    onBatch: (loss) => {
      smooth = Number.isNaN(smooth) ? loss : 0.98 * smooth + 0.02 * loss;
      bar?.tick(1, { loss: smooth });
    },
    onEpoch: (e) => {
      bar?.finish();
      log(
        `epoch ${e.epoch}: mean loss ${e.loss.toFixed(4)}, ${e.seconds.toFixed(1)} s (${Math.round(train.size / e.seconds)} img/s), test accuracy ${(100 * e.testAccuracy).toFixed(2)}%`,
      );
    },
  });
  if (!json) {
    log('per-class test accuracy:');
    perClass.forEach((c, i) => log(`  ${CLASS_NAMES[dataset][i].padEnd(12)} ${(100 * c.accuracy).toFixed(1)}%`));
  }
  for (const t of [train.images, train.labels, test.images, test.labels]) t.dispose();

  const coded = values['no-coded'] ? null : await codedPart(dataset, values['data-dir'], log);
  if (json) {
    console.log(
      JSON.stringify({
        dataset,
        model: 'base-mlp',
        epochs,
        seed,
        threads: getNumThreads(),
        history,
        testAccuracy,
        perClass: perClass.map((c, i) => ({ name: CLASS_NAMES[dataset][i], accuracy: c.accuracy })),
        coded: coded && {
          checkpoint: coded.checkpoint,
          code: coded.e.code,
          k: coded.e.k,
          r: coded.e.r,
          baseAccuracy: coded.e.baseAccuracy,
          degradedAccuracy: coded.e.degraded.accuracy,
          recovery: coded.e.degraded.recovery,
          overall: coded.e.overall,
          defaultBaseline: coded.e.defaultBaseline,
        },
      }),
    );
  }
}

/** Part 2: the shipped parity code for the shipped base model, evaluated on the test set. */
async function codedPart(
  dataset: MnistFamily,
  dataDir: string | undefined,
  log: (s: string) => void,
): Promise<{ checkpoint: string; e: CodeEvaluation } | null> {
  const checkpoint = fileURLToPath(new URL(`../../../../models/${dataset}-base-mlp-concat-k2.safetensors`, import.meta.url));
  if (!existsSync(checkpoint)) {
    log(
      `(part 2 skipped: ${checkpoint} is missing; train one with \`coded train parity --base models/${dataset}-base-mlp.safetensors --code concat --k 2\`)`,
    );
    return null;
  }
  log(`\ncoded inference: shipped Base-MLP + parity model (${checkpoint.split('/').pop()}) on the ${dataset} test set ...`);
  const loaded = loadCodeCheckpoint(checkpoint, { parity: 'required' });
  const { code, workers } = loaded;
  const metadata = loaded.metadata as ParityCheckpointMeta;
  log(`  parity model: ${metadata.parity?.model ?? '(none)'} (the base model is ${metadata.base.model})`);
  const ds = await loadTestSet(dataset, { dataDir });
  try {
    const e = evaluateCode({ code, workers, test: ds.test, classes: ds.info.classes });
    const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
    const f10 = e.overall.find((o) => Math.abs(o.f - 0.1) < 1e-9)?.accuracy ?? NaN;
    log(`  code ${e.code}: ${e.k} queries + ${e.r} parity query per group, ${e.groups} groups`);
    log(`  base accuracy A_a (all outputs on time)        ${pct(e.baseAccuracy)}`);
    log(
      `  degraded-mode accuracy A_d (reconstructions)   ${pct(e.degraded.accuracy)}   (no code: default answer ${pct(e.defaultBaseline)})`,
    );
    log(`  recovery (reconstruction agrees with F)        ${pct(e.degraded.recovery)}`);
    log(
      `  overall accuracy with 10% of outputs late      ${pct(f10)}   (without a code: ${pct(0.9 * e.baseAccuracy + 0.1 * e.defaultBaseline)})`,
    );
    return { checkpoint, e };
  } finally {
    disposeTestSet(ds);
    loaded.dispose();
  }
}
