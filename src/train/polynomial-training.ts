// Training a Lagrange (AICC) code end to end, or one of the centralized baselines it is
// compared with (`coded train polynomial`). The code's loss is cross-entropy of
// D(beta_k) = H(E(beta_k)) against the true labels of the K images of each coding group; Adam;
// the best-validation code is kept (the training-run skeleton, run.ts), then tested: the
// shared code evaluation with a base model's accuracy as A_a, and the direct accuracy of
// H(E(beta_k)).
import { existsSync } from 'node:fs';
import { GroupSampler, gatherGroups } from '../data/group-sampler.js';
import type { Split } from '../data/split.js';
import { manualSeed } from '../engine/runtime.js';
import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import { crossEntropy } from '../engine/ops.js';
import { Adam } from '../engine/optim/adam.js';
import type { Tensor } from '../engine/tensor.js';
import type { Device } from '../engine/dtype.js';
import { readCheckpoint, readCheckpointHeader, saveCheckpoint } from '../nn/checkpoint.js';
import type { Module } from '../nn/module.js';
import { BaseMLP } from '../models/base-mlp.js';
import { saveCode } from '../codes/checkpoint.js';
import { loadCodeCheckpoint } from '../codes/checkpoint.js';
import { codeState } from '../codes/code-state.js';
import { CnnBaseline, LagrangeCode, type PolyArch, type PolyWorkerDesign } from '../codes/lagrange.js';
import { evaluateCode } from '../eval/code-metrics.js';
import { runFiles } from './run-files.js';
import { runEpochs } from './run.js';

export interface PolynomialTrainingConfig {
  dataset: string;
  k: number;
  n: number;
  degree: number;
  power: number;
  worker: PolyWorkerDesign;
  encoder: PolyArch;
  computation: PolyArch;
  /** train a centralized baseline instead of a code (null: the code) */
  centralized: 'mlp' | 'cnn' | null;
  epochs: number;
  /** coding groups per batch */
  batchSize: number;
  lr: number;
  seed: number;
}

export interface PolynomialTrainingData {
  train: Split;
  validation: Split;
  test: Split;
  classes: string[];
  normalization: { mean: readonly number[]; std: readonly number[] };
  /** one query's shape [C, H, W] */
  input: number[];
}

export interface PolynomialEpochRecord {
  epoch: number;
  trainLoss: number;
  valAccuracy: number;
  seconds: number;
  best: boolean;
}

export interface PolynomialTrainingOptions {
  device?: Device;
  resume?: boolean;
  /** no training: the test evaluation of DIR/best.safetensors (e.g. of a run cut short) */
  evalOnly?: boolean;
  /** the base checkpoint whose accuracy is A_a of the code's test evaluation (default models/<dataset>-base-mlp.safetensors) */
  basePath?: string;
  /** the command line recorded in the checkpoints */
  command?: string;
  log?: (s: string) => void;
  onBatch?: (epoch: number, batch: number, batches: number, loss: number) => void;
  onEpoch?: (r: PolynomialEpochRecord) => void;
}

export interface PolynomialTrainingResult {
  code: string;
  R?: number;
  parameters: number;
  bestEpoch: number;
  bestValAccuracy: number;
  testAccuracy: number;
  /** the code: accuracy of H(E(beta_k)) with every worker */
  testDirect?: number;
  baseAccuracy?: number;
  byStragglers?: { missing: number; patterns: number; accuracy: number }[];
  epochs: PolynomialEpochRecord[];
  bestCheckpoint: string;
  seconds: number;
}

/** Accuracy of logits(x) [G, k, classes] on a split cut into coding groups of k (seed 1). */
export function groupAccuracy(split: Split, k: number, batch: number, device: Device, logits: (x: Tensor) => Tensor): number {
  const sampler = new GroupSampler({ size: split.size, k, groupsPerBatch: batch, seed: 1 });
  let correct = 0;
  let total = 0;
  noGrad(() => {
    for (const b of sampler.batches(1)) {
      correct += tidy(() => {
        const g = gatherGroups(split, b);
        const y = logits(g.images.to(device)).argmax(-1);
        total += y.size;
        return y.eq(g.labels.to(device).reshape(y.shape)).sum().item();
      });
    }
  });
  return correct / Math.max(1, total);
}

/** The name of a run's configuration, e.g. "HB-cnn+cnn-k2-n4-G1" or "centralized-mlp". */
export function polynomialRunTag(
  cfg: Pick<PolynomialTrainingConfig, 'centralized' | 'worker' | 'encoder' | 'computation' | 'k' | 'n' | 'degree' | 'power'>,
): string {
  return cfg.centralized !== null
    ? `centralized-${cfg.centralized}`
    : `${cfg.worker}-${cfg.encoder}+${cfg.computation}-k${cfg.k}-n${cfg.n}-G${cfg.degree}${cfg.worker === 'HS' ? `-P${cfg.power}` : ''}`;
}

export function trainPolynomial(
  cfg: PolynomialTrainingConfig,
  data: PolynomialTrainingData,
  outDir: string,
  o: PolynomialTrainingOptions = {},
): PolynomialTrainingResult {
  const device = o.device ?? 'cpu';
  const say = o.log ?? (() => {});
  const { input } = data;
  const classes = data.classes.length;
  const { k, centralized } = cfg;
  manualSeed(cfg.seed);
  // the trained object: a Lagrange code, or a centralized baseline (k = 1 for its batches)
  const code =
    centralized === null
      ? new LagrangeCode({
          k,
          n: cfg.n,
          degree: cfg.degree,
          power: cfg.power,
          worker: cfg.worker,
          encoder: cfg.encoder,
          computation: cfg.computation,
          input,
          classes,
        })
      : null;
  const net: Module | null =
    centralized === 'cnn'
      ? new CnnBaseline(input, classes)
      : centralized === 'mlp'
        ? new BaseMLP({ inFeatures: input[0] * input[1] * input[2], numClasses: classes })
        : null;
  const trained: Module = code !== null ? codeState(code) : net!;
  trained.to(device);
  const numParams = trained.numParameters();
  const gk = code !== null ? k : 1;
  const logits = (x: Tensor): Tensor =>
    code !== null ? code.trainingLogits(x) : net!.forward(x.reshape([-1, ...input])).reshape([x.shape[0], 1, -1]);
  const opt = new Adam(trained.parameters(), { lr: cfg.lr });
  const files = runFiles(outDir);
  const name = code?.name ?? `centralized-${centralized}`;
  say(
    `training ${name} (${numParams.toLocaleString('en')} parameters) on ${cfg.dataset}: ${cfg.epochs} epochs, Adam lr ${cfg.lr}, batch ${cfg.batchSize} groups, ${device}; output ${outDir}`,
  );
  const sampler = new GroupSampler({ size: data.train.size, k: gk, groupsPerBatch: cfg.batchSize, seed: cfg.seed });
  const t0 = performance.now();
  const save = (path: string, extraMeta: Record<string, unknown>, extra: Map<string, Tensor>) => {
    const meta = {
      dataset: cfg.dataset,
      classes: data.classes,
      normalization: data.normalization,
      training: cfg,
      command: o.command ?? null,
      ...extraMeta,
    };
    if (code !== null) saveCode(path, code, meta, extra);
    else saveCheckpoint(path, net!, { kind: 'centralized-baseline', ...meta }, extra);
  };
  let best: { epoch: number; valAccuracy: number };
  let history: PolynomialEpochRecord[] = [];
  try {
    if (o.evalOnly) {
      if (!existsSync(files.best)) throw new Error(`--eval-only: ${files.best} does not exist`);
      const meta = readCheckpointHeader(files.best) as { epoch?: number; valAccuracy?: number };
      best = { epoch: meta.epoch ?? 0, valAccuracy: meta.valAccuracy ?? NaN };
    } else {
      const run = runEpochs<PolynomialEpochRecord>({
        outDir,
        resume: o.resume ?? false,
        epochs: cfg.epochs,
        seed: cfg.seed,
        scoreName: 'valAccuracy',
        optimizers: [opt],
        readLast: (path) => {
          const ck = readCheckpoint(path);
          const meta = ck.metadata as { training?: PolynomialTrainingConfig };
          const all = new Map([...ck.state, ...ck.extra]);
          const free = () => {
            for (const t of all.values()) t.dispose();
          };
          try {
            if (JSON.stringify({ ...meta.training, epochs: 0 }) !== JSON.stringify({ ...cfg, epochs: 0 }))
              throw new Error(`--resume: ${path} was trained with another configuration`);
            // the trained module's own tensors by state-dict name; the rest (optimizer state) is extra
            const own = trained.stateDict();
            trained.loadStateDict(new Map([...all].filter(([key]) => own.has(key))));
          } catch (e) {
            free();
            throw e;
          }
          say(`resuming at epoch ${((ck.metadata.epoch as number | undefined) ?? 0) + 1}`);
          return { metadata: ck.metadata, extra: code !== null ? all : ck.extra, dispose: free };
        },
        epoch: (epoch) => {
          const te = performance.now();
          trained.train();
          let lossSum = 0;
          let nb = 0;
          for (const batch of sampler.batches(epoch)) {
            const l = tidy(() => {
              const g = gatherGroups(data.train, batch);
              const x = g.images.to(device);
              const y = g.labels.to(device);
              opt.zeroGrad();
              const z = logits(x);
              const loss = crossEntropy(z.reshape([-1, classes]), y.reshape([-1]));
              loss.backward();
              opt.step();
              return loss.item();
            });
            if (!Number.isFinite(l))
              throw new Error(`epoch ${epoch} batch ${batch.index}: the loss is ${l} (diverged); try a smaller --lr`);
            lossSum += l;
            nb++;
            o.onBatch?.(epoch, batch.index, sampler.batchesPerEpoch, l);
          }
          trained.eval();
          const valAccuracy = groupAccuracy(data.validation, gk, 500, device, logits);
          const record: PolynomialEpochRecord = {
            epoch,
            trainLoss: lossSum / Math.max(1, nb),
            valAccuracy,
            seconds: (performance.now() - te) / 1000,
            best: false,
          };
          return { record, score: valAccuracy };
        },
        save,
        afterEpoch: (rec) => {
          o.onEpoch?.(rec);
          say(
            `epoch ${rec.epoch}: train loss ${rec.trainLoss.toFixed(4)}, val acc ${(100 * rec.valAccuracy).toFixed(2)}%${rec.best ? ' (best)' : ''}, ${rec.seconds.toFixed(1)} s`,
          );
        },
      });
      best = { epoch: run.bestEpoch, valAccuracy: run.bestScore };
      history = run.epochs;
    }
  } finally {
    opt.dispose();
  }
  // test: the best-validation checkpoint
  let result: Omit<PolynomialTrainingResult, 'epochs' | 'bestCheckpoint' | 'seconds'>;
  try {
    if (code !== null) {
      const basePath = o.basePath ?? `models/${cfg.dataset}-base-mlp.safetensors`;
      if (!existsSync(basePath))
        throw new Error(`no base model for the test evaluation's A_a: ${basePath} does not exist (pass --base CKPT)`);
      const l = loadCodeCheckpoint(files.best, { basePath });
      try {
        const lc = l.code as LagrangeCode;
        lc.to(device);
        lc.train(false);
        l.base.model.to(device).eval();
        const ev = noGrad(() => evaluateCode({ code: lc, workers: l.workers, test: data.test, classes, device }));
        const direct = groupAccuracy(data.test, k, 500, device, (x) => lc.trainingLogits(x));
        result = {
          code: lc.name,
          R: lc.R,
          parameters: numParams,
          bestEpoch: best.epoch,
          bestValAccuracy: best.valAccuracy,
          testAccuracy: ev.degraded.accuracy,
          testDirect: direct,
          baseAccuracy: ev.baseAccuracy,
          byStragglers: ev.byMissing.map((m) => ({ missing: m.missing, patterns: m.patterns, accuracy: m.accuracy })),
        };
      } finally {
        l.dispose();
      }
    } else {
      const ck = readCheckpoint(files.best);
      net!.loadStateDict(ck.state);
      for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
      net!.eval();
      result = {
        code: name,
        parameters: numParams,
        bestEpoch: best.epoch,
        bestValAccuracy: best.valAccuracy,
        testAccuracy: groupAccuracy(data.test, 1, 500, device, logits),
      };
    }
  } finally {
    trained.dispose();
  }
  return { ...result, epochs: history, bestCheckpoint: files.best, seconds: (performance.now() - t0) / 1000 };
}
