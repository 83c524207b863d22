// The base model F behind one interface, from any source: a zoo checkpoint from `coded train
// base` (.safetensors) or a TorchScript file (.pt, .pth, .torchscript). Training, evaluation
// and parity-code loading all go through loadBaseModel, and every source is identified by
// the SHA-256 of its file, so a code trained for one F refuses another.
import { noGrad } from '../engine/autograd.js';
import { tidy } from '../engine/scope.js';
import { zeros } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';
import { fileSha256, loadBaseCheckpoint, type BaseIdentity } from './base-checkpoint.js';
import { TorchScriptModule } from './torchscript.js';

import { isTorchScriptPath } from './file-kinds.js';

export interface LoadedBaseModel {
  model: Module;
  identity: BaseIdentity;
  /** class count (the length of F's output per example) */
  classes: number;
  format: 'checkpoint' | 'torchscript';
}

/**
 * Load F. A TorchScript file needs its per-example input shape CxHxW (`inputShape`; the file
 * does not record it, a parity checkpoint's identity does); its class count comes from one
 * forward of zeros, which also checks the shape.
 */
export function loadBaseModel(path: string, o: { inputShape?: number[]; dataset?: string } = {}): LoadedBaseModel {
  if (!isTorchScriptPath(path)) {
    const b = loadBaseCheckpoint(path);
    return { model: b.model, identity: b.identity, classes: b.meta.classes.length, format: 'checkpoint' };
  }
  const shape = o.inputShape;
  if (shape === undefined)
    throw new Error(`${path}: TorchScript files do not record their input shape; pass --input-shape CxHxW (e.g. 3x32x32)`);
  if (shape.length !== 3)
    throw new Error(`${path}: --input-shape ${shape.join('x')}: coded training takes image-shaped inputs CxHxW (3 dimensions) for now`);
  const model = TorchScriptModule.load(path);
  try {
    model.eval();
    const out = tidy(() => noGrad(() => model.forward(zeros([1, ...shape])).shape));
    if (out.length !== 2)
      throw new Error(
        `${path}: F returns [${out.join(', ')}] for one example; coding needs [batch, outputs] (logits or regression outputs)`,
      );
    const input = { channels: shape[0], height: shape[1], width: shape[2] };
    return {
      model,
      classes: out[1],
      format: 'torchscript',
      identity: { path, sha256: fileSha256(path), dataset: o.dataset ?? 'tensors-file', model: 'torchscript', input, classes: out[1] },
    };
  } catch (e) {
    model.dispose();
    throw e;
  }
}
