// `coded eval --code SPEC --base CKPT` (training-free codes: Berrut, LeTCC, B-spline,
// replication, built from a spec and the base model alone): the shared code evaluation on the
// base model's test set. `--pick-smoothing` (LeTCC) first picks lambdaEnc and lambdaDec on the
// base model's validation hold-out. Code checkpoints (Lagrange ones included) are `coded eval
// CKPT` (eval.ts).
import { parse, choiceOption, intOption, UsageError } from '../args.js';
import { isDatasetName, loadDataset, disposeDataset } from '../../data/registry.js';
import { codeFromConfig } from '../../codes/registry.js';
import { parseCodeSpec } from '../../codes/spec.js';
import type { CodeConfig } from '../../codes/code.js';
import '../../codes/index.js';
import { evaluateCode, formatCodeEvaluation, writeOverallAccuracyPlot } from '../../eval/code-metrics.js';
import { pickSmoothing } from '../../eval/pick-smoothing.js';
import { loadBaseCheckpoint } from '../../models/base-checkpoint.js';

export const specUsage = `coded eval --code SPEC --base CKPT [--pick-smoothing] [--data-dir DIR] [--device cpu|cuda] [--seed N] [--plot PREFIX] [--json]

Evaluates a training-free code (its workers run the unchanged base model) on the base model's
test set: SPEC is FAMILY:k=K,n=N[,key=value...], e.g.
  berrut:k=2,n=4                     Berrut rational interpolation (BACC)
  letcc:k=2,n=4[,lambdaEnc=X,lambdaDec=Y]   LeTCC smoothing-spline encoder and decoder
  bspline:k=2,n=4[,encoder=bspline,basis=B] Berrut encoder, cubic B-spline decoder
  replication:n=3                    one query, n copies
Reported as for every code: accuracy by number of stragglers (0..N-K), recovery, A_o(f).
--pick-smoothing (letcc) picks lambdaEnc and lambdaDec on the base model's validation hold-out
first (the grid and every trial are printed) and evaluates the picked code.`;

export async function evalSpecCommand(argv: string[]): Promise<void> {
  const { values, positionals } = parse(
    argv,
    {
      code: { type: 'string' },
      base: { type: 'string' },
      'pick-smoothing': { type: 'boolean' },
      'data-dir': { type: 'string' },
      device: { type: 'string' },
      seed: { type: 'string' },
      plot: { type: 'string' },
      json: { type: 'boolean' },
    },
    specUsage,
  );
  if (values.help) return void console.log(specUsage);
  if (positionals.length > 0)
    throw new UsageError(
      `--code evaluates a spec, not a checkpoint (got ${positionals.join(' ')}); evaluate a checkpoint with \`coded eval CKPT\`\n\n${specUsage}`,
    );
  if (values.code === undefined) throw new UsageError(`--code SPEC is required\n\n${specUsage}`);
  if (values.base === undefined)
    throw new UsageError(
      `--base CKPT is required (the base model the workers run, e.g. models/fashion-mnist-base-mlp.safetensors)\n\n${specUsage}`,
    );
  let config: CodeConfig;
  try {
    config = parseCodeSpec(values.code);
    codeFromConfig(config); // the family's own parameter checks, before any data is loaded
  } catch (e) {
    throw new UsageError(`--code: ${(e as Error).message}`);
  }
  if (values['pick-smoothing'] && config.family !== 'letcc')
    throw new UsageError(`--pick-smoothing applies to letcc codes (smoothing parameters); ${config.family} has none`);
  if (values['pick-smoothing'] && (config.lambdaEnc !== undefined || config.lambdaDec !== undefined))
    throw new UsageError('--pick-smoothing picks lambdaEnc and lambdaDec: leave them out of the spec');
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  const seed = intOption(values.seed, 'seed', 1, { min: 0 });
  const say = (s: string) => process.stderr.write(s + '\n');
  const { model: base, meta } = loadBaseCheckpoint(values.base);
  try {
    if (!isDatasetName(meta.dataset)) throw new Error(`${values.base}: unknown dataset '${meta.dataset}' in metadata`);
    base.to(device).eval();
    let picked: ReturnType<typeof pickSmoothing> | null = null;
    if (values['pick-smoothing']) {
      // the base model's own validation hold-out (its training seed), which it never trained on
      const splitSeed = (meta.config as { seed?: number } | undefined)?.seed ?? 1;
      const vs = await loadDataset(meta.dataset, { dataDir: values['data-dir'], seed: splitSeed, log: say });
      try {
        if (vs.validation === null) throw new Error('internal: no validation split');
        say(`picking lambdaEnc, lambdaDec for letcc(k=${config.k}, n=${config.k + config.r}) on ${vs.validation.size} validation samples`);
        picked = pickSmoothing({
          k: config.k,
          n: config.k + config.r,
          base,
          validation: vs.validation,
          classes: meta.classes.length,
          device,
          seed,
          onTrial: (t) =>
            say(
              `  lambdaEnc ${t.lambdaEnc}, lambdaDec ${t.lambdaDec}: validation A_d ${(100 * t.accuracy).toFixed(2)}%, recovery ${(100 * t.recovery).toFixed(2)}%`,
            ),
        });
        say(`picked lambdaEnc ${picked.lambdaEnc}, lambdaDec ${picked.lambdaDec}`);
        config = { ...config, lambdaEnc: picked.lambdaEnc, lambdaDec: picked.lambdaDec };
      } finally {
        disposeDataset(vs);
      }
    }
    const code = codeFromConfig(config);
    const ds = await loadDataset(meta.dataset, { dataDir: values['data-dir'], validation: 0, log: say });
    try {
      const e = evaluateCode({ code, workers: { base }, test: ds.test, classes: meta.classes, device, seed });
      if (values.plot) await writeOverallAccuracyPlot(e, values.plot);
      if (values.json)
        console.log(
          JSON.stringify({
            spec: values.code,
            config: code.config(),
            base: values.base,
            ...(picked ? { pickSmoothing: picked } : {}),
            ...e,
          }),
        );
      else {
        const pick = picked
          ? `; lambdaEnc ${picked.lambdaEnc}, lambdaDec ${picked.lambdaDec} picked on ${picked.samples} validation samples`
          : '';
        console.log(
          `${code.name} with base ${values.base} (${meta.model} on ${meta.dataset})${pick}; config ${JSON.stringify(code.config())}\n\n${formatCodeEvaluation(e)}`,
        );
      }
    } finally {
      disposeDataset(ds);
    }
  } finally {
    base.dispose();
  }
}
