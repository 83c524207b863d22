// `coded train parity ...` (parity-model training for the addition, linear and concat codes:
// one run, or a sweep of runs from a JSON config): parses the options and calls runParity /
// runParitySweep (src/train/parity-run.ts).
import { join } from 'node:path';
import { parse, intOption, numberOption, choiceOption, UsageError } from '../args.js';
import { epochBars } from '../progress.js';
import { pct } from '../../train/sweep.js';
import { cudaAvailable, setDeterministic } from '../../engine/runtime.js';
import { modelNames } from '../../models/registry.js';
import { forwardOnlySupport } from '../../serve/forward-only-base.js';
import { Progress } from '../progress.js';
import { PARITY_CODES, defaultBatchSize, runParity, runParitySweep } from '../../train/parity-run.js';

export const trainUsage = `coded train parity --base CKPT --code addition|linear|concat --k K [options]
coded train parity --config SWEEP.json [--data-dir DIR] [--device D] [--json]

Trains the r parity models of a ParM code for a trained base model (frozen): targets are what
the decoder expects (sum_i a_ji F(X_i), from base outputs computed once), MSE loss, Adam; the
checkpoint with the best validation degraded-mode accuracy A_d is kept and evaluated on the
test set with every erasure pattern.

Options:
  --base CKPT        base checkpoint from \`coded train base\` (e.g. models/fashion-mnist-base-mlp.safetensors),
                     or a TorchScript file FILE.pt (torch.jit.trace/script + save; with --data),
                     or, forward only (F's outputs computed once on --data: batched, retried with
                     backoff; no --augment, no --parity-model base): an ONNX file FILE.onnx or a
                     running V2 server (Triton, KServe, coded serve instance): v2://HOST:PORT/MODEL
                     (gRPC) or http://HOST:PORT/v2/models/MODEL (REST)
  --data DIR|FILE    with a TorchScript base: your data, split 80/10/10 with --seed (see
                     examples/own-model/): a tensors file (FILE.safetensors or FILE.npz with
                     \`inputs\` [N, C, H, W] float32, normalised as F expects, and optional
                     \`labels\` [N]; FILE.npy: inputs only; without labels F's answers are used),
                     or an image folder DIR/<class>/<image>.png|.jpg (classes in sorted order),
                     resized to --input-shape and normalised with --mean/--std
  --input-shape CxHxW  with a TorchScript base: per-example input shape (default: the data's;
                     an image folder: 3 x its first image's size)
  --mean M[,M,M] --std S[,S,S]  with an image folder: normalisation (pixel/255 - mean) / std
                     (default 0 and 1); recorded in the checkpoint and in served metadata
  --code C           addition (r = 1) | linear (Cauchy coefficients, any r) | concat (image tiling, r = 1)
  --k K              queries per coding group (>= 2)
  --r R              parity models (default 1; only linear takes R > 1)
  --parity-model M   parity architecture (default: the base model's; ${modelNames().join(' | ')});
                     with a TorchScript base: base (copies of F's own module, trained from F's
                     weights, also saved as DIR/parity-<j>.pt for Triton) or a zoo architecture
  --epochs N         (default 20)
  --batch-size B     coding groups per batch (default 64 for k = 2, 32 otherwise)
  --lr X             Adam learning rate (default 1e-3)
  --weight-decay X   L2 penalty (default 1e-5)
  --schedule S       constant | cosine (default cosine)
  --target T         base (default: the base model's outputs) | labels (one-hot true labels)
  --loss L           mse (default, ParM: F_P(P) vs its target) | kl-decoded (KL between the base
                     output and the subtraction decoder's reconstruction from F_P(P)) |
                     xent-decoded (cross-entropy of that reconstruction vs the true label); target base
  --temperature T    kl-decoded: distillation temperature (default 1)
  --label-weight A   kl-decoded: mix in the true labels, (1 - A) T^2 KL + A cross-entropy (default 0)
  --ema D            validate, keep and test an exponential moving average of the parity
                     weights with decay D (e.g. 0.999); default off
  --augment A        none (default) | crop | crop-flip: random 2-pixel-padded crops (and flips) of
                     the training queries; base outputs computed on them (target base)
  --device D         cpu | cuda (default cpu)
  --seed N           (default 1)
  --deterministic    deterministic libtorch algorithms (and cuDNN): reruns of a seed give identical
                     results on one machine (on the GPU: maybe slower; an op without a deterministic
                     version fails, naming it)
  --out DIR          output directory (default runs/parity/<dataset>-<model>-<code>-k<K>-r<R>)
  --resume           continue from DIR/last.safetensors
  --data-dir DIR     where datasets live
  --json             one JSON object with the result on stdout (with --config: the results rows)
  --config FILE      a sweep (see src/codes/README.md, examples/parity-sweep.json): every
                     combination of base x code x k x r x parity model x target is trained in
                     turn into OUT/<run>; combinations a code cannot take (addition or concat
                     with r > 1) are skipped; a failed run is recorded and the sweep goes on;
                     the config's "out" directory gets results.md and results.json after every run

Writes DIR/best.safetensors (code + parity weights + base identity), DIR/last.safetensors
(resumable), DIR/log.jsonl, DIR/test-eval.json, DIR/test-eval.md and DIR/overall-accuracy.{svg,png}.`;

export async function trainParityCommand(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      base: { type: 'string' },
      code: { type: 'string' },
      k: { type: 'string' },
      r: { type: 'string' },
      'parity-model': { type: 'string' },
      data: { type: 'string' },
      'input-shape': { type: 'string' },
      mean: { type: 'string' },
      std: { type: 'string' },
      epochs: { type: 'string' },
      'batch-size': { type: 'string' },
      lr: { type: 'string' },
      'weight-decay': { type: 'string' },
      schedule: { type: 'string' },
      target: { type: 'string' },
      loss: { type: 'string' },
      augment: { type: 'string' },
      temperature: { type: 'string' },
      'label-weight': { type: 'string' },
      ema: { type: 'string' },
      device: { type: 'string' },
      seed: { type: 'string' },
      out: { type: 'string' },
      resume: { type: 'boolean' },
      'data-dir': { type: 'string' },
      json: { type: 'boolean' },
      config: { type: 'string' },
      deterministic: { type: 'boolean' },
    },
    trainUsage,
  );
  if (values.help) return void console.log(trainUsage);
  if (values.deterministic) setDeterministic(true);
  if (values.config !== undefined) {
    const other = Object.keys(values).filter((f) => !['config', 'data-dir', 'device', 'json', 'deterministic'].includes(f));
    if (other.length > 0)
      throw new UsageError(
        `--config takes only --data-dir, --device, --deterministic and --json (the rest is in the config file), got ${other.map((f) => `--${f}`).join(', ')}`,
      );
    const rows = await runParitySweep(values.config, { dataDir: values['data-dir'], device: values.device });
    if (values.json) console.log(JSON.stringify(rows));
    else
      console.log(
        `sweep done: ${rows.filter((x) => x.error === undefined).length} of ${rows.length} runs trained; ${join(rows.out, 'results.md')}`,
      );
    return;
  }
  if (values.base === undefined) throw new UsageError(`--base is required\n\n${trainUsage}`);
  if (values.code === undefined) throw new UsageError(`--code is required (addition, linear, concat)\n\n${trainUsage}`);
  const codeName = choiceOption(values.code, 'code', PARITY_CODES, 'addition');
  if (values.k === undefined) throw new UsageError('--k is required');
  const k = intOption(values.k, 'k', 2, { min: 2 });
  const r = intOption(values.r, 'r', 1, { min: 1 });
  if (codeName !== 'linear' && r !== 1) throw new UsageError(`--code ${codeName} has r = 1; use --code linear for r = ${r}`);
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  if (device === 'cuda' && !cudaAvailable()) throw new UsageError('--device cuda: this build of the addon has no CUDA');
  const res = await runParity({
    base: values.base,
    cfg: {
      code: codeName,
      k,
      r,
      parityModel: values['parity-model'],
      epochs: intOption(values.epochs, 'epochs', 20),
      batchSize: intOption(values['batch-size'], 'batch-size', defaultBatchSize(k)),
      lr: numberOption(values.lr, 'lr', 1e-3),
      weightDecay: numberOption(values['weight-decay'], 'weight-decay', 1e-5),
      schedule: choiceOption(values.schedule, 'schedule', ['constant', 'cosine'] as const, 'cosine'),
      target: choiceOption(values.target, 'target', ['base', 'labels'] as const, 'base'),
      loss: choiceOption(values.loss, 'loss', ['mse', 'kl-decoded', 'xent-decoded'] as const, 'mse'),
      augment: choiceOption(values.augment, 'augment', ['none', 'crop', 'crop-flip'] as const, 'none'),
      temperature: numberOption(values.temperature, 'temperature', 1),
      ...(values['label-weight'] !== undefined ? { labelWeight: numberOption(values['label-weight'], 'label-weight', 0) } : {}),
      ...(values.ema !== undefined ? { ema: numberOption(values.ema, 'ema', 0.999) } : {}),
      seed: intOption(values.seed, 'seed', 1, { min: 0 }),
      device,
    },
    outDir: values.out,
    dataDir: values['data-dir'],
    resume: values.resume ?? false,
    ...(values.data !== undefined ? { data: values.data } : {}),
    ...(values['input-shape'] !== undefined ? { inputShape: inputShapeOption(values['input-shape']) } : {}),
    ...(values.mean !== undefined ? { mean: listOption(values.mean, 'mean') } : {}),
    ...(values.std !== undefined ? { std: listOption(values.std, 'std') } : {}),
    forwardOnly: forwardOnlyWithProgress(),
    command: ['coded', 'train', 'parity', ...argv].join(' '),
    quiet: false,
    bars: (metric) => epochBars(intOption(values.epochs, 'epochs', 20), { metric }),
  });
  const { config, dataset: _d, baseModel: _m, outDir: _o, ...result } = res;
  if (values.json) console.log(JSON.stringify({ config, base: values.base, ...result }));
  else {
    console.log(
      `best epoch ${res.bestEpoch}: validation A_d ${pct(res.bestValDegradedAccuracy)}; test A_a ${pct(res.test.baseAccuracy)}, ` +
        `A_d ${pct(res.test.degraded.accuracy)}, recovery ${pct(res.test.degraded.recovery)}; ${res.seconds.toFixed(0)} s; checkpoint ${res.bestCheckpoint}`,
    );
  }
}

/** Forward-only bases (V2 servers, ONNX files) with a progress bar over F's outputs and a line per retry. */
function forwardOnlyWithProgress() {
  let bar: Progress | null = null;
  let done = 0;
  return forwardOnlySupport({
    onProgress: (base, d, total) => {
      bar ??= new Progress(`F's outputs (${base})`, total, { unit: 'examples' });
      bar.tick(d - done);
      done = d;
      if (d >= total) bar.finish();
    },
    onRetry: (base, a, e, ms) => process.stderr.write(`${base}: attempt ${a} failed (${e.message.split('\n')[0]}); retrying in ${ms} ms\n`),
  });
}

function listOption(text: string, name: string): number[] {
  const v = text.split(',').map((x) => Number(x.trim()));
  if (v.length === 0 || v.some((x) => !Number.isFinite(x) || text.trim() === ''))
    throw new UsageError(`bad --${name} '${text}': numbers joined by commas (one, or one per channel)`);
  return v;
}

function inputShapeOption(text: string): number[] {
  const dims = text.split('x');
  if (!dims.every((d) => /^\d+$/.test(d) && Number(d) >= 1))
    throw new UsageError(`bad --input-shape '${text}': positive integers joined by x, per example (e.g. 3x32x32)`);
  return dims.map(Number);
}
