// Runs inside an AsyncForward worker thread: builds the model an instance serves.
import { manualSeed } from '../engine/runtime.js';
import { buildModel } from '../models/registry.js';
import { TorchScriptModule } from '../models/torchscript.js';
import { readCheckpoint } from '../nn/checkpoint.js';
import type { Module } from '../nn/module.js';
import { ModuleDict, ModuleList } from '../nn/containers.js';
import { readCodeCheckpoint } from '../codes/checkpoint.js';
import { codeState } from '../codes/code-state.js';
import '../codes/index.js';

export type BuildOptions =
  | { kind: 'checkpoint'; path: string }
  /** the index-th parity model of a parity-code checkpoint (`coded train parity`) */
  | { kind: 'parity'; path: string; index: number }
  | { kind: 'linear'; inFeatures: number; classes: number; seed: number }
  /** a zoo model with seeded random weights (`random:MODEL:CxHxW:CLASSES[:SEED]`) */
  | { kind: 'random'; model: string; input: { channels: number; height: number; width: number }; classes: number; seed: number }
  /** a family-specific worker network of a code checkpoint (e.g. a Lagrange code's H) */
  | { kind: 'code-worker'; path: string; name: string; index: number }
  /** a TorchScript file (libtorch JIT) */
  | { kind: 'torchscript'; path: string };

export default function build(o: BuildOptions): Module {
  if (o.kind === 'torchscript') return TorchScriptModule.load(o.path);
  if (o.kind === 'linear') {
    manualSeed(o.seed);
    return buildModel('logistic-regression', { channels: 1, height: 1, width: o.inFeatures, classes: o.classes });
  }
  if (o.kind === 'random') {
    manualSeed(o.seed);
    return buildModel(o.model, { ...o.input, classes: o.classes });
  }
  if (o.kind === 'code-worker' || o.kind === 'parity') {
    // the one code-checkpoint reader (no base model needed here): keep the one network served
    const { code, parity, extra } = readCodeCheckpoint(o.path, { parity: o.kind === 'parity' ? 'required' : 'none' });
    for (const t of extra.values()) t.dispose();
    const keep = o.kind === 'parity' ? parity[o.index] : code.workerModules?.().get(o.name)?.[o.index];
    // free the code's state (codeState: its modules, parity models under "parity") but the kept network
    disposeAllBut(codeState(code, parity), keep);
    if (keep === undefined) {
      throw new Error(
        o.kind === 'parity'
          ? `${o.path} has ${parity.length} parity model(s); no parity index ${o.index}`
          : `${o.path} (${code.name}) has no worker ${o.name}[${o.index}]`,
      );
    }
    return keep;
  }
  const ck = readCheckpoint(o.path);
  const meta = ck.metadata as { model?: string; input?: { channels: number; height: number; width: number }; classes?: string[] };
  const all = [...ck.state.values(), ...ck.extra.values()];
  try {
    if (!meta.model || !meta.input || !meta.classes) throw new Error(`${o.path} is not a base-model checkpoint`);
    const m = buildModel(meta.model, { ...meta.input, classes: meta.classes.length });
    m.loadStateDict(ck.state);
    return m;
  } finally {
    for (const t of all) t.dispose();
  }
}

/** Dispose every module in the tree but `keep` (a member of one of its containers, which hold no tensors of their own). */
function disposeAllBut(m: Module, keep: Module | undefined): void {
  if (m === keep) return;
  if (m instanceof ModuleDict || m instanceof ModuleList) for (const [, c] of m.children()) disposeAllBut(c, keep);
  else m.dispose();
}
