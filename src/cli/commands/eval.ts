// `coded eval`: one command for every code checkpoint (parity codes from `coded train parity`,
// learned codes from `coded train learned`, with or without parity models, Lagrange codes from
// `coded train polynomial`), loaded by the one loader (loadCodeCheckpoint), evaluated by the
// shared code evaluation on the base model's test set. `coded eval --code SPEC` (training-free
// codes) and `coded eval base CKPT` have their own commands.
import { parse, choiceOption, intOption, UsageError } from '../args.js';
import { isDatasetName, loadTestSet, disposeTestSet } from '../../data/registry.js';
import { splitTensors } from '../../data/tensors-file.js';
import { loadOwnData, imageOptionsOf } from '../../data/own-data.js';
import { evalForwardOnlyCode } from './eval-forward-only.js';
import { noGrad } from '../../engine/autograd.js';
import { tidy } from '../../engine/scope.js';
import '../../codes/index.js';
import { loadCodeCheckpoint } from '../../codes/checkpoint.js';
import { codeState } from '../../codes/code-state.js';
import { LagrangeCode } from '../../codes/lagrange.js';
import type { BaseIdentity } from '../../models/base-checkpoint.js';
import { evaluateCode, formatCodeEvaluation, writeOverallAccuracyPlot, type CodeEvaluation } from '../../eval/code-metrics.js';
import { baseOutputs } from '../../train/parity-training.js';

export const evalUsage = `coded eval CODE_CKPT [--base CKPT] [--data-dir DIR | --data FILE.safetensors] [--device cpu|cuda] [--seed N] [--plot PREFIX] [--json]
coded eval --code SPEC --base CKPT ...   (training-free codes: berrut, letcc, bspline; \`coded eval --code x --help\`)
coded eval base CKPT ...   (base-model accuracy)

Evaluates a code checkpoint (from \`coded train parity\`, \`coded train learned\` or \`coded train
polynomial\`) on its base model's test set, grouped into coding groups of k: A_a, degraded-mode
accuracy A_d over every erasure pattern, recovery accuracy, top-5, per pattern and by number of
missing outputs, A_o(f), recovery by base correctness, ranks of wrong reconstructions. Prints a
markdown report (or JSON); --plot PREFIX also writes PREFIX.svg and PREFIX.png of A_o versus f.
The base checkpoint is the one recorded in the code checkpoint unless --base is given; it must
be the same file (SHA-256) the code was trained for (Lagrange codes record none: the default is
models/<dataset>-base-mlp.safetensors, whose accuracy is A_a). For a TorchScript base (\`coded
train parity --base FILE.pt --data FILE\`), --data names the tensors file: the evaluation uses
the test split training cut from it (the run's seed). For a forward-only base (a V2 server or an ONNX
file), F's outputs on --data are computed again through it (--base: another address of the
same model).`;

interface CodeMeta {
  base?: BaseIdentity;
  parity?: { model: string; count: number };
  config?: { seed?: number };
}

export async function evalCodeCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      base: { type: 'string' },
      'data-dir': { type: 'string' },
      data: { type: 'string' },
      device: { type: 'string' },
      seed: { type: 'string' },
      plot: { type: 'string' },
      json: { type: 'boolean' },
    },
    evalUsage,
  );
  if (values.help) return void console.log(evalUsage);
  if (positionals.length !== 1) throw new UsageError(`expected one code checkpoint path\n\n${evalUsage}`);
  const path = positionals[0];
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  const seed = intOption(values.seed, 'seed', 1, { min: 0 });
  // parity codes for a forward-only F (a V2 server, an ONNX file): F's outputs computed again
  if (await evalForwardOnlyCode(path, values)) return;
  const l = loadCodeCheckpoint(path, { basePath: values.base });
  const { code, workers, base } = l;
  const meta = l.metadata as CodeMeta & Record<string, unknown>;
  const family = code.family;
  const report = async (e: CodeEvaluation, json: Record<string, unknown>, text: string) => {
    if (values.plot) await writeOverallAccuracyPlot(e, values.plot);
    if (values.json) console.log(JSON.stringify({ checkpoint: path, ...json, ...e }));
    else console.log(`${path}: ${text}\n\n${formatCodeEvaluation(e)}`);
  };
  try {
    if (family === 'learned' && meta.base === undefined)
      throw new Error(`${path} is not a learned-code checkpoint from \`coded train learned\` (no "base" identity in its metadata)`);
    if (code instanceof LagrangeCode) code.train(false);
    base.model.to(device).eval();
    codeState(code, l.parity).to(device);
    if (meta.base?.model === 'torchscript' || values.data !== undefined) {
      // a TorchScript F: its tensors file, split as in training (the run's seed), labels from the file or F
      if (values.data === undefined)
        throw new UsageError(
          `${path} was trained for the TorchScript base ${meta.base!.path}: pass --data FILE.safetensors|FILE.npz|FILE.npy|DIR (the data it was trained on)`,
        );
      if (meta.base?.model !== 'torchscript')
        throw new UsageError(`--data goes with parity codes for a TorchScript base; ${path} evaluates on its base's dataset`);
      // an image folder is read with the preprocessing recorded at training
      const data = await loadOwnData(values.data, imageOptionsOf(meta.base, values.data));
      const labels =
        data.labels ??
        tidy(() =>
          noGrad(() =>
            baseOutputs(workers.base, { images: data.inputs, labels: data.inputs, size: data.inputs.shape[0] }, 'cpu').argmax(1).keep(),
          ),
        );
      const splits = splitTensors(data.inputs, labels, { seed: meta.config?.seed ?? 1 });
      data.inputs.dispose();
      labels.dispose();
      try {
        const classes = Array.from({ length: meta.base.classes ?? base.meta.classes.length }, (_, i) => String(i));
        const e = evaluateCode({ code, workers, test: splits.test, classes, device, seed });
        await report(
          e,
          { base: meta.base },
          `parity models (${meta.parity?.model}) for TorchScript base ${meta.base.path} on the test split of ${values.data}`,
        );
      } finally {
        for (const sp of [splits.train, splits.validation, splits.test]) {
          sp.images.dispose();
          sp.labels.dispose();
        }
      }
      return;
    }
    const dataset = base.meta.dataset;
    if (!isDatasetName(dataset)) throw new Error(`unknown dataset '${dataset}' in the base checkpoint`);
    const ds = await loadTestSet(dataset, { dataDir: values['data-dir'], log: (s) => process.stderr.write(s + '\n') });
    try {
      const e = evaluateCode({ code, workers, test: ds.test, classes: base.meta.classes, device, seed });
      if (code instanceof LagrangeCode) {
        await report(
          e,
          { base: l.basePath, R: code.R },
          `${code.name} (any R = ${code.R} of ${code.n} workers decode), A_a from base ${l.basePath}`,
        );
      } else if (family === 'learned') {
        const pm = meta.parity;
        const with_ = pm ? `, with ${pm.count} ${pm.model} parity model(s) on the parity queries` : '';
        await report(
          e,
          { base: meta.base, parity: pm ?? null },
          `learned code for base ${l.basePath} (${base.meta.model} on ${base.meta.dataset})${with_}`,
        );
      } else {
        await report(
          e,
          { base: meta.base },
          `parity models (${meta.parity?.model}) for base ${meta.base?.path} (${meta.base?.model} on ${meta.base?.dataset})`,
        );
      }
    } finally {
      disposeTestSet(ds);
    }
  } finally {
    l.dispose();
  }
}

/** `coded eval ...`: `eval base CKPT` to the base-model command, `eval --code SPEC` to the spec command, `eval CODE_CKPT` (or `eval code CODE_CKPT`) here. */
export async function evalCommand(argv: string[]): Promise<void> {
  const [what] = argv;
  if (what === undefined)
    throw new UsageError(`expected a checkpoint to evaluate\n\n${evalUsage}\n\n${(await import('./evaluate.js')).usage}`);
  if (what === '--help' || what === '-h') {
    console.log(`${evalUsage}\n\n${(await import('./evaluate.js')).usage}`);
    return;
  }
  if (what === 'base') return (await import('./evaluate.js')).evaluate(argv);
  const rest = what === 'code' ? argv.slice(1) : argv;
  // training-free codes from a spec (--code berrut:k=2,n=4): their own command
  if (rest.some((a) => a === '--code' || a.startsWith('--code='))) return (await import('./eval-family.js')).evalSpecCommand(rest);
  return evalCodeCommand(rest);
}
