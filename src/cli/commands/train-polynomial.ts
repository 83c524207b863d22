// `coded train polynomial`: end-to-end training of a Lagrange (AICC) code, or of the
// centralized baselines it is compared with (issue 6). The code's loss is cross-entropy of
// D(beta_k) = H(E(beta_k)) against the true labels of the K images of each coding group.
import { appendFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { parse, intOption, numberOption, choiceOption, UsageError } from '../args.js';
import { Progress } from '../progress.js';
import { DATASET_NAMES, DEFAULT_DATASET, isDatasetName, loadDataset, disposeDataset } from '../../data/registry.js';
import { GroupSampler, gatherGroups } from '../../data/group-sampler.js';
import type { Split } from '../../data/split.js';
import { manualSeed, cudaAvailable, setDeterministic } from '../../engine/runtime.js';
import { noGrad } from '../../engine/autograd.js';
import { tidy } from '../../engine/scope.js';
import { crossEntropy } from '../../engine/ops.js';
import { Adam } from '../../engine/optim/adam.js';
import type { Tensor } from '../../engine/tensor.js';
import type { Device } from '../../engine/dtype.js';
import { readCheckpoint, saveCheckpoint } from '../../nn/checkpoint.js';
import type { Module } from '../../nn/module.js';
import { buildModel } from '../../models/registry.js';
import { BaseMLP } from '../../models/base-mlp.js';
import { loadCode, saveCode } from '../../codes/registry.js';
import { CnnBaseline, LagrangeCode, type PolyArch, type PolyWorkerDesign } from '../../codes/lagrange.js';
import { evaluateCode } from '../../eval/code-metrics.js';

export const usage = `coded train polynomial --worker HB|HS --encoder mlp|cnn --computation mlp|cnn [options]
coded train polynomial --centralized mlp|cnn [options]

Trains a Lagrange code with learned coefficient networks (AICC): encoder degree G, worker
H_B (activation-free network on the encoded image; R = G + 1) or H_S (coefficient maps sent
along; R = G P + 1), N workers at alpha_n = n / (N + 1), decoded at beta_k = k / K.
Loss: cross-entropy of H(E(beta_k)) against the labels; Adam; the best-validation code is kept.
--centralized trains the non-distributable baselines instead (Base-MLP with ReLU, or the
dilated convolution stack then Base-MLP, with ReLU).

Options:
  --dataset D        ${DATASET_NAMES.join(' | ')} (default ${DEFAULT_DATASET})
  --k K              queries per coding group (default 2)
  --n N              workers (default max(K, R) + 1)
  --degree G         encoder degree (default 1)
  --power P          H_S's power (default 1)
  --epochs E         (default 20)
  --batch-size B     coding groups per batch (default 64 for K = 2, 32 otherwise)
  --lr X             Adam learning rate (default 1e-3)
  --base CKPT        base model whose accuracy is reported as A_a by the test evaluation
                     (default models/<dataset>-base-mlp.safetensors)
  --device D         cpu | cuda (default cpu)
  --seed N           (default 1)
  --deterministic    deterministic libtorch algorithms (and cuDNN): reruns of a seed give identical
                     results on one machine (on the GPU: maybe slower; an op without a deterministic
                     version fails, naming it)
  --out DIR          (default runs/polynomial/<dataset>-<config>)
  --resume           continue from DIR/last.safetensors
  --eval-only        no training: the test evaluation of DIR/best.safetensors (e.g. of a run cut short)
  --data-dir DIR     where datasets live
  --json             one JSON object with the result on stdout

Writes DIR/best.safetensors (a code checkpoint for \`coded eval\`), DIR/last.safetensors and DIR/log.jsonl.`;

interface EpochRecord { epoch: number; trainLoss: number; valAccuracy: number; seconds: number; best: boolean }

function accuracyOn(split: Split, k: number, batch: number, device: Device, logits: (x: Tensor) => Tensor): number {
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

export async function trainPolynomialCommand(argv: string[]): Promise<void> {
  const { values } = parse(argv, {
    dataset: { type: 'string' }, k: { type: 'string' }, n: { type: 'string' }, degree: { type: 'string' }, power: { type: 'string' },
    worker: { type: 'string' }, encoder: { type: 'string' }, computation: { type: 'string' }, centralized: { type: 'string' },
    epochs: { type: 'string' }, 'batch-size': { type: 'string' }, lr: { type: 'string' }, base: { type: 'string' }, device: { type: 'string' },
    seed: { type: 'string' }, out: { type: 'string' }, resume: { type: 'boolean' }, 'eval-only': { type: 'boolean' }, 'data-dir': { type: 'string' }, json: { type: 'boolean' }, deterministic: { type: 'boolean' },
  }, usage);
  if (values.help) return void console.log(usage);
  if (values.deterministic) setDeterministic(true);
  const dataset = values.dataset ?? DEFAULT_DATASET;
  if (!isDatasetName(dataset)) throw new UsageError(`--dataset must be one of ${DATASET_NAMES.join(', ')}, got '${dataset}'`);
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  if (device === 'cuda' && !cudaAvailable()) throw new UsageError('--device cuda: this build of the addon has no CUDA');
  const centralized = values.centralized === undefined ? null : choiceOption(values.centralized, 'centralized', ['mlp', 'cnn'] as const, 'mlp');
  const k = intOption(values.k, 'k', 2, { min: 1 });
  const degree = intOption(values.degree, 'degree', 1, { min: 1 });
  const power = intOption(values.power, 'power', 1, { min: 1 });
  let worker: PolyWorkerDesign = 'HB';
  let encoder: PolyArch = 'cnn';
  let computation: PolyArch = 'cnn';
  if (centralized === null) {
    if (values.worker === undefined || values.encoder === undefined || values.computation === undefined) {
      throw new UsageError(`--worker, --encoder and --computation are required (or --centralized)\n\n${usage}`);
    }
    worker = choiceOption(values.worker, 'worker', ['HB', 'HS'] as const, 'HB');
    encoder = choiceOption(values.encoder, 'encoder', ['mlp', 'cnn'] as const, 'cnn');
    computation = choiceOption(values.computation, 'computation', ['mlp', 'cnn'] as const, 'cnn');
  }
  const R = degree * (worker === 'HS' ? power : 1) + 1;
  const n = intOption(values.n, 'n', Math.max(k, R) + 1, { min: 1 });
  const epochs = intOption(values.epochs, 'epochs', 20, { min: 1 });
  const batchSize = intOption(values['batch-size'], 'batch-size', k === 2 ? 64 : 32, { min: 1 });
  const lr = numberOption(values.lr, 'lr', 1e-3);
  const seed = intOption(values.seed, 'seed', 1, { min: 0 });
  const tag = centralized !== null ? `centralized-${centralized}` : `${worker}-${encoder}+${computation}-k${k}-n${n}-G${degree}${worker === 'HS' ? `-P${power}` : ''}`;
  const outDir = values.out ?? join('runs', 'polynomial', `${dataset}-${tag}`);
  const say = (s: string) => process.stderr.write(s + '\n');
  const command = ['coded', 'train', 'polynomial', ...argv].join(' ');

  manualSeed(seed);
  const ds = await loadDataset(dataset, { dataDir: values['data-dir'], seed, log: say, device });
  if (ds.validation === null) throw new Error('internal: no validation split');
  const input = [ds.info.channels, ds.info.height, ds.info.width];
  const classes = ds.info.classes.length;
  manualSeed(seed);
  // the trained object: a Lagrange code, or a centralized baseline (k = 1 for its batches)
  const code = centralized === null ? new LagrangeCode({ k, n, degree, power, worker, encoder, computation, input, classes }) : null;
  const net: Module | null = centralized === 'cnn' ? new CnnBaseline(input, classes) : centralized === 'mlp' ? new BaseMLP({ inFeatures: input[0] * input[1] * input[2], numClasses: classes }) : null;
  const modules: Module[] = code !== null ? [...code.modules().values()] : [net!];
  for (const m of modules) m.to(device);
  const params = modules.flatMap((m) => m.parameters());
  const numParams = params.reduce((a, t) => a + t.size, 0);
  const gk = code !== null ? k : 1;
  const logits = (x: Tensor): Tensor => (code !== null ? code.trainingLogits(x) : net!.forward(x.reshape([-1, ...input])).reshape([x.shape[0], 1, -1]));
  const opt = new Adam(params, { lr });
  mkdirSync(outDir, { recursive: true });
  const files = { best: join(outDir, 'best.safetensors'), last: join(outDir, 'last.safetensors'), log: join(outDir, 'log.jsonl') };
  const name = code?.name ?? `centralized-${centralized}`;
  say(`training ${name} (${numParams.toLocaleString('en')} parameters) on ${dataset}: ${epochs} epochs, Adam lr ${lr}, batch ${batchSize} groups, ${device}; output ${outDir}`);
  const history: EpochRecord[] = [];
  let best = { epoch: 0, valAccuracy: -1 };
  let start = 1;
  const cfg = { dataset, k, n, degree, power, worker, encoder, computation, centralized, epochs, batchSize, lr, seed };
  const sampler = new GroupSampler({ size: ds.train.size, k: gk, groupsPerBatch: batchSize, seed });
  const t0 = performance.now();
  try {
    if (values['eval-only']) {
      if (!existsSync(files.best)) throw new Error(`--eval-only: ${files.best} does not exist`);
      const ck = readCheckpoint(files.best);
      for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
      const meta = ck.metadata as { epoch?: number; valAccuracy?: number };
      best = { epoch: meta.epoch ?? 0, valAccuracy: meta.valAccuracy ?? NaN };
      start = epochs + 1;
    } else if (values.resume) {
      if (!existsSync(files.last)) throw new Error(`--resume: ${files.last} does not exist (nothing to resume in ${outDir})`);
      const ck = readCheckpoint(files.last);
      const meta = ck.metadata as { training?: typeof cfg; epoch?: number; best?: typeof best; history?: EpochRecord[]; optimizer?: { steps: number[]; hyper: Record<string, number> } };
      try {
        if (JSON.stringify({ ...meta.training, epochs: 0 }) !== JSON.stringify({ ...cfg, epochs: 0 })) throw new Error(`--resume: ${files.last} was trained with another configuration`);
        const all = new Map([...ck.state, ...ck.extra]);
        if (code !== null) {
          for (const [mn, m] of code.modules()) {
            const sd = new Map<string, Tensor>();
            for (const [key, t] of all) if (key.startsWith(`${mn}.`)) sd.set(key.slice(mn.length + 1), t);
            m.loadStateDict(sd);
          }
        } else {
          net!.loadStateDict(ck.state);
        }
        const tensors: Record<string, Tensor> = {};
        for (const [key, t] of all) if (key.startsWith('optim.')) tensors[key.slice(6)] = t;
        if (meta.optimizer) opt.loadStateDict({ ...meta.optimizer, tensors } as never);
      } finally {
        for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
      }
      start = (meta.epoch ?? 0) + 1;
      best = meta.best ?? best;
      history.push(...(meta.history ?? []));
      say(`resuming at epoch ${start}`);
    } else {
      rmSync(files.log, { force: true });
    }
    const save = (path: string, extraMeta: Record<string, unknown>, extra = new Map<string, Tensor>()) => {
      const meta = { dataset, classes: ds.info.classes, normalization: ds.info.normalization, training: cfg, command, ...extraMeta };
      if (code !== null) saveCode(path, code, meta, extra);
      else saveCheckpoint(path, net!, { kind: 'centralized-baseline', ...meta }, extra);
    };
    for (let epoch = start; epoch <= epochs; epoch++) {
      manualSeed(seed * 100003 + epoch);
      const te = performance.now();
      for (const m of modules) m.train();
      const bar = new Progress(`epoch ${epoch}/${epochs}`, sampler.batchesPerEpoch, { unit: 'batch' });
      let lossSum = 0;
      let nb = 0;
      let smooth = NaN;
      for (const batch of sampler.batches(epoch)) {
        const l = tidy(() => {
          const g = gatherGroups(ds.train, batch);
          const x = g.images.to(device);
          const y = g.labels.to(device);
          opt.zeroGrad();
          const z = logits(x);
          const loss = crossEntropy(z.reshape([-1, classes]), y.reshape([-1]));
          loss.backward();
          opt.step();
          return loss.item();
        });
        if (!Number.isFinite(l)) throw new Error(`epoch ${epoch} batch ${batch.index}: the loss is ${l} (diverged); try a smaller --lr`);
        lossSum += l;
        nb++;
        smooth = Number.isNaN(smooth) ? l : 0.98 * smooth + 0.02 * l;
        bar.tick(1, { loss: smooth });
      }
      bar.finish();
      for (const m of modules) m.eval();
      const valAccuracy = accuracyOn(ds.validation, gk, 500, device, logits);
      const isBest = valAccuracy > best.valAccuracy;
      const rec: EpochRecord = { epoch, trainLoss: lossSum / Math.max(1, nb), valAccuracy, seconds: (performance.now() - te) / 1000, best: isBest };
      history.push(rec);
      if (isBest) {
        best = { epoch, valAccuracy };
        save(files.best, { epoch, valAccuracy, created: new Date().toISOString() });
      }
      const s = opt.stateDict();
      const extra = new Map<string, Tensor>();
      for (const [key, t] of Object.entries(s.tensors)) extra.set(`optim.${key}`, t);
      save(files.last, { epoch, best, history, optimizer: { steps: s.steps, hyper: s.hyper } }, extra);
      appendFileSync(files.log, JSON.stringify({ ...rec, time: new Date().toISOString() }) + '\n');
      say(`epoch ${epoch}: train loss ${rec.trainLoss.toFixed(4)}, val acc ${(100 * valAccuracy).toFixed(2)}%${isBest ? ' (best)' : ''}, ${rec.seconds.toFixed(1)} s`);
    }
    if (best.epoch === 0) throw new Error('no epoch was trained (is --epochs below the resumed epoch?)');
  } finally {
    opt.dispose();
  }
  // test: the best-validation checkpoint
  let result: Record<string, unknown>;
  try {
    if (code !== null) {
      const { code: bestCode } = loadCode(files.best);
      const lc = bestCode as LagrangeCode;
      lc.to(device);
      lc.train(false);
      const baseCkpt = values.base ?? join('models', `${dataset}-base-mlp.safetensors`);
      let base: Module;
      if (existsSync(baseCkpt)) {
        const ck = readCheckpoint(baseCkpt);
        const meta = ck.metadata as { model: string; dataset?: string; input: { channels: number; height: number; width: number } };
        if (meta.dataset !== dataset) {
          for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
          throw new Error(`--base ${baseCkpt} is a ${meta.dataset} model, this code was trained on ${dataset} (its checkpoint ${files.best} is kept)`);
        }
        base = buildModel(meta.model, { ...meta.input, classes });
        base.loadStateDict(ck.state);
        for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
        base.to(device).eval();
      } else {
        throw new Error(`no base model for the test evaluation's A_a: ${baseCkpt} does not exist (pass --base CKPT)`);
      }
      const ev = noGrad(() => evaluateCode({ code: lc, workers: lc.workerSet(base), test: ds.test, classes, device }));
      const direct = accuracyOn(ds.test, k, 500, device, (x) => lc.trainingLogits(x));
      result = {
        code: lc.name, R: lc.R, parameters: numParams, bestEpoch: best.epoch, bestValAccuracy: best.valAccuracy,
        testAccuracy: ev.degraded.accuracy, testDirect: direct, baseAccuracy: ev.baseAccuracy,
        byStragglers: ev.byMissing.map((m) => ({ missing: m.missing, patterns: m.patterns, accuracy: m.accuracy })),
      };
      base.dispose();
      lc.dispose();
    } else {
      const ck = readCheckpoint(files.best);
      net!.loadStateDict(ck.state);
      for (const t of [...ck.state.values(), ...ck.extra.values()]) t.dispose();
      net!.eval();
      result = { code: name, parameters: numParams, bestEpoch: best.epoch, bestValAccuracy: best.valAccuracy, testAccuracy: accuracyOn(ds.test, 1, 500, device, logits) };
    }
  } finally {
    disposeDataset(ds);
    for (const m of modules) m.dispose();
  }
  result.seconds = (performance.now() - t0) / 1000;
  result.command = command;
  if (values.json) console.log(JSON.stringify(result));
  else console.log(`${result.code}: best epoch ${best.epoch}, validation ${(100 * best.valAccuracy).toFixed(2)}%, test ${(100 * (result.testAccuracy as number)).toFixed(2)}%; ${(result.seconds as number).toFixed(0)} s; ${files.best}`);
}
