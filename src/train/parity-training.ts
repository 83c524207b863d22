// Training parity models (ParM) for a linear-family code (addition, linear, concat): the
// base model F is frozen and its outputs on every training and validation image are
// computed once and cached; each epoch cuts the training set into fresh coding groups of k
// (GroupSampler), encodes them, and trains parity model j with MSE towards what the decoder
// expects from it (code.parityTarget: sum_i a_ji F(X_i); or the same combination of one-hot
// true labels). Adam with L2, the papers' initialisation (from the model zoo); after every
// epoch the validation degraded-mode accuracy A_d decides the best checkpoint; a JSONL log
// and a resumable last checkpoint (parity weights + optimizer state) are written.
import { runFiles } from './run-files.js';
import { learningRate } from './lr-schedule.js';
import { Adam } from '../engine/optim/adam.js';
import { noGrad } from '../engine/autograd.js';
import { manualSeed } from '../engine/runtime.js';
import { tidy } from '../engine/scope.js';
import { cat, crossEntropy, klDiv, mseLoss, oneHot } from '../engine/ops.js';
import type { Device } from '../engine/dtype.js';
import { tensor, type Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';
import type { Split } from '../data/split.js';
import { GroupSampler } from '../data/group-sampler.js';
import { randomCropFlip } from '../data/augment.js';
import { Rng, deriveSeed } from '../data/rng.js';
import type { LinearCode } from '../codes/linear.js';
import { buildParityModels, saveParityCode, type BaseIdentity, type ParityMeta } from '../codes/parity-models.js';
import { loadCodeCheckpoint } from '../codes/checkpoint.js';
import { evaluateCode, type CodeEvaluation } from '../eval/code-metrics.js';
import { ModuleList } from '../nn/containers.js';
import { runEpochs } from './run.js';

export interface ParityTrainingConfig {
  code: string;
  k: number;
  r: number;
  parityModel: string;
  epochs: number;
  /** coding groups per batch */
  batchSize: number;
  lr: number;
  weightDecay: number;
  schedule: 'constant' | 'cosine';
  /** 'base': targets from the base model's outputs; 'labels': from one-hot true labels */
  target: 'base' | 'labels';
  /**
   * 'mse' (default, ParM): MSE of F_P(P_j) against its target. 'kl-decoded': the loss is taken
   * on what the decoder makes of F_P(P_j): for every data slot i, the reconstruction of F(X_i)
   * from parity j and the other outputs, scored by KL(softmax F(X_i) || softmax reconstruction)
   * (the learned codes' KL-Base, applied to the subtraction decoder); needs target 'base'.
   * 'xent-decoded': the same reconstructions scored by cross-entropy against the true labels
   * (the learned codes' XENT-Label).
   */
  loss?: 'mse' | 'kl-decoded' | 'xent-decoded';
  /**
   * Random 2-pixel-padded crops (and horizontal flips) of the training queries before they are
   * encoded; the base outputs are then computed on the augmented queries (not cached).
   * Default 'none'. Needs target 'base'.
   */
  augment?: 'none' | 'crop' | 'crop-flip';
  /** kl-decoded only: distillation temperature T (both sides divided by T, loss scaled by T^2; default 1) */
  temperature?: number;
  /**
   * kl-decoded only: weight A in [0, 1] of the true labels in the loss, as in knowledge
   * distillation: (1 - A) T^2 KL + A cross-entropy(reconstruction, label). Default 0 (pure KL);
   * A = 1 is xent-decoded.
   */
  labelWeight?: number;
  /**
   * Exponential moving average of the parity weights (Polyak averaging) with this decay, e.g.
   * 0.999: validation, the best checkpoint and the test use the averaged weights. Default off.
   */
  ema?: number;
  seed: number;
  device: Device;
}

export interface ParityEpochRecord {
  epoch: number;
  trainLoss: number;
  valDegradedAccuracy: number;
  valRecovery: number;
  lr: number;
  seconds: number;
  best: boolean;
}

export interface ParityTrainingData {
  train: Split;
  validation: Split;
  test: Split;
  classes: string[];
  /** what padded pixels are in the images' (normalised) units, per channel; default 0 */
  paddingFill?: number | readonly number[];
}

export interface ParityTrainingResult {
  bestCheckpoint: string;
  bestEpoch: number;
  bestValDegradedAccuracy: number;
  test: CodeEvaluation;
  epochs: ParityEpochRecord[];
  seconds: number;
  resumedFrom: number;
}

export interface ParityTrainingHooks {
  onBatch?: (epoch: number, batch: number, batches: number, loss: number) => void;
  onEpoch?: (r: ParityEpochRecord) => void;
  command?: string;
}

export const parityFiles = runFiles;

/** The base model's outputs on a whole split [N, classes], computed once without gradients. */
export function baseOutputs(base: Module, split: Split, device: Device, batch = 1000): Tensor {
  base.eval();
  return noGrad(() =>
    tidy(() => {
      const parts: Tensor[] = [];
      for (let s = 0; s < split.size; s += batch) {
        const x = split.images.narrow(0, s, Math.min(batch, split.size - s));
        parts.push(base.forward(device === 'cpu' ? x : x.to(device)));
      }
      return parts.length === 1 ? parts[0] : cat(parts, 0);
    }),
  );
}

/**
 * The decoder-aware losses: for each data slot i, the reconstruction the code's decoder
 * (code.decode, the decode plan serving uses) makes of F(X_i) from parity output `pred` of
 * parity j and the other k - 1 data outputs outs [G, k, m] (for the subtraction decoder:
 * F(X_i) + (F_P(P_j) - target_j) / a_ji), scored by KL against softmax F(X_i) at temperature
 * T (scaled by T^2), or, given labels [G, k], by cross-entropy; averaged over the k slots.
 */
export function decodedParityLoss(
  code: LinearCode,
  j: number,
  pred: Tensor,
  outs: Tensor,
  labels: Tensor | null,
  T: number,
  labelWeight: number,
): Tensor {
  const soft = (t: Tensor) => (T === 1 ? t : t.mul(1 / T));
  let sum: Tensor | null = null;
  for (let i = 0; i < code.k; i++) {
    const out = outs.select(1, i);
    // slot i and every parity but j erased: the decoder reconstructs slot i from parity j
    const outputs = Array.from({ length: code.n }, (_, t) =>
      t < code.k ? (t === i ? null : outs.select(1, t)) : t === code.k + j ? pred : null,
    );
    const rec = code.decode(outputs).outputs[i];
    const kl = labelWeight < 1 ? klDiv(soft(rec).logSoftmax(-1), soft(out).softmax(-1)).mul(T * T * (1 - labelWeight)) : null;
    const xent = labelWeight > 0 ? crossEntropy(rec, labels!.select(1, i).contiguous()).mul(labelWeight) : null;
    const li = kl === null ? xent! : xent === null ? kl : kl.add(xent);
    sum = sum === null ? li : sum.add(li);
  }
  return sum!.mul(1 / code.k);
}

export function trainParity(
  cfg: ParityTrainingConfig,
  code: LinearCode,
  base: Module,
  baseIdentity: BaseIdentity,
  input: ParityMeta['input'],
  data: ParityTrainingData,
  outDir: string,
  { resume = false } = {},
  hooks: ParityTrainingHooks = {},
): ParityTrainingResult {
  const t0 = performance.now();
  if (code.k !== cfg.k || code.r !== cfg.r) throw new Error(`internal: code ${code.name} does not match k = ${cfg.k}, r = ${cfg.r}`);
  if (cfg.ema !== undefined && !(cfg.ema > 0 && cfg.ema < 1)) throw new Error(`ema must be a decay in (0, 1), got ${cfg.ema}`);
  if (cfg.ema !== undefined && resume) throw new Error('--resume does not restore the weight average (--ema): start the run again');
  if (cfg.temperature !== undefined && !(cfg.temperature > 0)) throw new Error(`temperature must be > 0, got ${cfg.temperature}`);
  if (cfg.labelWeight !== undefined && !(cfg.labelWeight >= 0 && cfg.labelWeight <= 1))
    throw new Error(`label weight must be in [0, 1], got ${cfg.labelWeight}`);
  if ((cfg.labelWeight ?? 0) > 0 && cfg.loss !== 'kl-decoded')
    throw new Error(`a label weight mixes the true labels into the kl-decoded loss: use --loss kl-decoded (got ${cfg.loss ?? 'mse'})`);
  if ((cfg.augment ?? 'none') !== 'none' && cfg.target !== 'base')
    throw new Error("augmented training queries need target 'base' (their base outputs are computed on the fly)");
  if ((cfg.loss === 'kl-decoded' || cfg.loss === 'xent-decoded') && cfg.target !== 'base')
    throw new Error(
      `loss '${cfg.loss}' scores the decoder's reconstructions, which are built from the base model's outputs: it needs target 'base'`,
    );
  const parityMeta: ParityMeta = { model: cfg.parityModel, input, count: cfg.r };
  manualSeed(cfg.seed);
  const parity = buildParityModels(parityMeta, baseIdentity);
  for (const m of parity) m.to(cfg.device);
  base.to(cfg.device).eval();
  const params = parity.flatMap((m) => m.parameters());
  const opt = new Adam(params, { lr: cfg.lr, weightDecay: cfg.weightDecay });
  const meta = { parity: parityMeta, base: baseIdentity, config: cfg, classes: data.classes, command: hooks.command ?? null };

  // the weight average (--ema), started from the initial (or resumed) weights: made after the resume below
  let ema: Tensor[] | null = null;
  // cached base outputs (or one-hot labels) on the training split: the parity targets' source
  // (none with --augment: the base outputs of augmented queries are computed per batch)
  const augment = (cfg.augment ?? 'none') !== 'none';
  let trainOut: Tensor | null = null;
  const decoded = cfg.loss === 'kl-decoded' || cfg.loss === 'xent-decoded';
  // weight of the true labels in the decoded loss (xent-decoded: labels only)
  const labelWeight = cfg.loss === 'xent-decoded' ? 1 : (cfg.labelWeight ?? 0);
  const sampler = new GroupSampler({ size: data.train.size, k: cfg.k, groupsPerBatch: cfg.batchSize, seed: cfg.seed });
  const batches = sampler.batchesPerEpoch;
  const lrAt = learningRate(cfg, batches);
  let run: ReturnType<typeof runEpochs<ParityEpochRecord>>;
  let lastValBase = 0;
  let started = false;
  const start = () => {
    if (started) return;
    started = true;
    ema = cfg.ema === undefined ? null : tidy(() => noGrad(() => params.map((p) => p.detach().clone().keep())));
    trainOut = augment
      ? null
      : cfg.target === 'base'
        ? baseOutputs(base, data.train, cfg.device).keep()
        : tidy(() => oneHot(data.train.labels, data.classes.length).float().to(cfg.device)).keep();
  };
  try {
    run = runEpochs<ParityEpochRecord>({
      outDir,
      resume,
      epochs: cfg.epochs,
      seed: cfg.seed,
      scoreName: 'valDegradedAccuracy',
      optimizers: [opt],
      readLast: (path) => {
        const lp = loadCodeCheckpoint(path, { base: false, parity: 'required', keepExtra: true });
        const m = lp.metadata as unknown as { config?: ParityTrainingConfig; base: BaseIdentity };
        const free = () => {
          lp.dispose();
          for (const t of lp.extra.values()) t.dispose();
        };
        try {
          if (
            m.config?.code !== cfg.code ||
            m.config?.k !== cfg.k ||
            m.config?.r !== cfg.r ||
            m.config?.parityModel !== cfg.parityModel ||
            m.base.sha256 !== baseIdentity.sha256
          ) {
            throw new Error(
              `--resume: ${path} was trained as ${m.config?.code} k=${m.config?.k} r=${m.config?.r} (${m.config?.parityModel}) for base ${m.base.path}; not this configuration`,
            );
          }
          new ModuleList(parity).loadStateDict(new ModuleList(lp.parity).stateDict());
        } catch (e) {
          free();
          throw e;
        }
        return { metadata: lp.metadata, extra: lp.extra, dispose: free };
      },
      epoch: (epoch) => {
        start();
        const te = performance.now();
        for (const m of parity) m.train();
        const augRng = augment ? new Rng(deriveSeed(cfg.seed, 'parity-augment', epoch)) : null;
        let lossSum = 0;
        for (const batch of sampler.batches(epoch)) {
          opt.lr = lrAt(epoch, batch.index);
          const loss = tidy(() => {
            const idx = tensor(batch.indices, [batch.indices.length], { dtype: 'int64' });
            let xs = data.train.images.indexSelect(0, idx);
            if (augRng !== null)
              xs = randomCropFlip(xs, augRng, { padding: 2, flip: cfg.augment === 'crop-flip', fill: data.paddingFill ?? 0 });
            const [, ...rest] = xs.shape;
            let x = xs.reshape([batch.groups, cfg.k, ...rest]);
            if (cfg.device !== 'cpu') x = x.to(cfg.device);
            const outs =
              trainOut === null
                ? noGrad(() => base.forward(cfg.device === 'cpu' ? xs : xs.to(cfg.device))).reshape([batch.groups, cfg.k, -1])
                : (trainOut as Tensor).indexSelect(0, cfg.device === 'cpu' ? idx : idx.to(cfg.device)).reshape([batch.groups, cfg.k, -1]);
            const labels = labelWeight > 0 ? data.train.labels.indexSelect(0, idx).reshape([batch.groups, cfg.k]).to(cfg.device) : null;
            const queries = code.encode(x);
            opt.zeroGrad();
            let l: Tensor | null = null;
            for (let j = 0; j < cfg.r; j++) {
              const pred = parity[j].forward(queries[cfg.k + j].inputs[0]);
              const lj = decoded
                ? decodedParityLoss(code, j, pred, outs, labels, cfg.temperature ?? 1, labelWeight)
                : mseLoss(pred, code.parityTarget(outs, j));
              l = l === null ? lj : l.add(lj);
            }
            l!.backward();
            opt.step();
            if (ema !== null) noGrad(() => ema!.forEach((e, i) => e.lerp_(params[i], 1 - cfg.ema!)));
            return l!.item();
          });
          lossSum += loss;
          hooks.onBatch?.(epoch, batch.index, batches, loss);
        }
        // with --ema, validate (and save as best) the averaged weights, then put the trained ones back
        const avg: Tensor[] | null = ema;
        const trained =
          avg === null
            ? null
            : noGrad(() =>
                params.map((p, i) => {
                  const keep = p.clone().keep();
                  p.copy_(avg[i]);
                  return keep;
                }),
              );
        const restore = () => {
          if (trained === null) return;
          noGrad(() => params.forEach((p, i) => p.copy_(trained[i])));
          for (const t of trained) t.dispose();
        };
        let val: CodeEvaluation;
        try {
          val = evaluateCode({
            code,
            workers: { base, parity },
            test: data.validation,
            classes: data.classes,
            device: cfg.device,
            seed: cfg.seed,
          });
        } catch (e) {
          restore();
          throw e;
        }
        lastValBase = val.baseAccuracy;
        const record: ParityEpochRecord = {
          epoch,
          trainLoss: lossSum / batches,
          valDegradedAccuracy: val.degraded.accuracy,
          valRecovery: val.degraded.recovery,
          lr: lrAt(epoch, 0),
          seconds: (performance.now() - te) / 1000,
          best: false,
        };
        return { record, score: val.degraded.accuracy, restore };
      },
      save: (path, m, extra) => saveParityCode(path, code, parity, { ...meta, ...m }, extra),
      bestMetadata: () => ({ valBaseAccuracy: lastValBase }),
      afterEpoch: (r) => void hooks.onEpoch?.(r),
    });
  } finally {
    opt.dispose();
    (trainOut as Tensor | null)?.dispose();
    for (const e of (ema as Tensor[] | null) ?? []) e.dispose();
  }

  // test evaluation of the best-validation parity models
  const lp = loadCodeCheckpoint(run.bestCheckpoint, { base: false, parity: 'required' });
  try {
    for (const m of lp.parity) m.to(cfg.device);
    const test = evaluateCode({
      code: lp.code,
      workers: { base, parity: lp.parity },
      test: data.test,
      classes: data.classes,
      device: cfg.device,
      seed: cfg.seed,
    });
    const bestMeta = lp.metadata as unknown as Record<string, unknown>;
    saveParityCode(run.bestCheckpoint, lp.code, lp.parity, {
      ...(bestMeta as { parity: ParityMeta; base: BaseIdentity }),
      testDegradedAccuracy: test.degraded.accuracy,
      testRecovery: test.degraded.recovery,
      testBaseAccuracy: test.baseAccuracy,
    });
    return {
      bestCheckpoint: run.bestCheckpoint,
      bestEpoch: run.bestEpoch,
      bestValDegradedAccuracy: run.bestScore,
      test,
      epochs: run.epochs,
      seconds: (performance.now() - t0) / 1000,
      resumedFrom: run.resumedFrom,
    };
  } finally {
    lp.dispose();
    for (const m of parity) m.dispose();
  }
}
