// `coded eval CKPT --data DIR|FILE` for parity codes trained for a forward-only F (a V2 server
// or an ONNX file, `coded train parity --base v2://...|FILE.onnx`): F's outputs are computed
// again on the data (through the server or ONNX Runtime), the data split as in training (the
// run's seed), and the code evaluated on the test split.
import { basename } from 'node:path';
import { UsageError, intOption } from '../args.js';
import { loadCodeCheckpoint, type ParityCheckpointMeta } from '../../codes/checkpoint.js';
import { loadOwnData, imageOptionsOf } from '../../data/own-data.js';
import { splitTensors } from '../../data/tensors-file.js';
import { noGrad } from '../../engine/autograd.js';
import { tidy } from '../../engine/scope.js';
import { evaluateCode, formatCodeEvaluation, writeOverallAccuracyPlot } from '../../eval/code-metrics.js';
import type { BaseIdentity } from '../../models/base-checkpoint.js';
import { loadForwardOnlyBase } from '../../serve/forward-only-base.js';
import { baseOutputs } from '../../train/parity-training.js';
import { readCheckpointMetadata } from '../../serve/served-model.js';

export interface EvalValues {
  base?: string;
  data?: string;
  seed?: string;
  plot?: string;
  json?: boolean;
}

/** Evaluate `ckpt` if it was trained for a forward-only F; false (nothing done) otherwise. */
export async function evalForwardOnlyCode(
  ckpt: string,
  values: EvalValues,
  log: (s: string) => void = (s) => process.stderr.write(s + '\n'),
): Promise<boolean> {
  let meta: { base?: BaseIdentity; config?: { seed?: number } };
  try {
    meta = readCheckpointMetadata(ckpt) as typeof meta;
  } catch {
    return false; // the general loader reports what is wrong with the file
  }
  const rec = meta.base;
  if (rec === undefined || (rec.model !== 'v2' && rec.model !== 'onnx')) return false;
  if (values.data === undefined)
    throw new UsageError(
      `${ckpt} was trained for the forward-only base ${rec.path}: pass --data FILE.safetensors|FILE.npz|FILE.npy|DIR (the data it was trained on)`,
    );
  const basePath = values.base ?? rec.path;
  const data = await loadOwnData(values.data, imageOptionsOf(rec, values.data));
  let f: Awaited<ReturnType<typeof loadForwardOnlyBase>>;
  try {
    f = await loadForwardOnlyBase(basePath, data.inputs, {
      dataset: basename(values.data),
      onRetry: (a, e, ms) => log(`${basePath}: attempt ${a} failed (${e.message.split('\n')[0]}); retrying in ${ms} ms`),
    });
  } catch (e) {
    data.inputs.dispose();
    data.labels?.dispose();
    throw e;
  }
  if (f.identity.sha256 !== rec.sha256) {
    const why = `${basePath} differs from the F ${ckpt} was trained for (${rec.model === 'onnx' ? 'file' : "F's outputs on the data"}: sha256 ${f.identity.sha256.slice(0, 12)}… vs ${rec.sha256.slice(0, 12)}…)`;
    if (rec.model === 'onnx') {
      f.model.dispose();
      data.inputs.dispose();
      data.labels?.dispose();
      throw new Error(why);
    }
    // a server's outputs may differ in the last bits (another thread count or batch composition): warn only
    log(`warning: ${why}; evaluating anyway`);
  }
  const lp = loadCodeCheckpoint(ckpt, { base: false, parity: 'required' });
  const labels =
    data.labels ??
    tidy(() =>
      noGrad(() => baseOutputs(f.model, { images: data.inputs, labels: data.inputs, size: data.inputs.shape[0] }, 'cpu').argmax(1).keep()),
    );
  const splits = splitTensors(data.inputs, labels, { seed: meta.config?.seed ?? 1 });
  data.inputs.dispose();
  labels.dispose();
  try {
    const classes = data.classNames?.length === f.classes ? data.classNames : Array.from({ length: f.classes }, (_, i) => String(i));
    const e = evaluateCode({
      code: lp.code,
      workers: { base: f.model, parity: lp.parity },
      test: splits.test,
      classes,
      device: 'cpu',
      seed: intOption(values.seed, 'seed', 1, { min: 0 }),
    });
    if (values.plot) await writeOverallAccuracyPlot(e, values.plot);
    if (values.json) console.log(JSON.stringify({ checkpoint: ckpt, base: rec, ...e }));
    else
      console.log(
        `${ckpt}: parity models (${(lp.metadata as ParityCheckpointMeta).parity.model}) for the forward-only base ${basePath} on the test split of ${values.data}\n\n${formatCodeEvaluation(e)}`,
      );
  } finally {
    f.model.dispose();
    lp.dispose();
    for (const sp of [splits.train, splits.validation, splits.test]) {
      sp.images.dispose();
      sp.labels.dispose();
    }
  }
  return true;
}
