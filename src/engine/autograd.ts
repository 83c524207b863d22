// Autograd entry points beyond Tensor.backward(): grad() and noGrad().
import { native } from './native.js';
import { Tensor } from './tensor.js';

/** Run fn with gradient recording off (restored afterwards, also on throw). */
export function noGrad<T>(fn: () => T): T {
  const prev = native.isGradEnabled();
  native.setGradEnabled(false);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

/** Run fn with gradient recording on (inside a noGrad block, for example). */
export function enableGrad<T>(fn: () => T): T {
  const prev = native.isGradEnabled();
  native.setGradEnabled(true);
  try {
    return fn();
  } finally {
    native.setGradEnabled(prev);
  }
}

export function isGradEnabled(): boolean {
  return native.isGradEnabled();
}

export interface GradOptions {
  /** seeds for non-scalar outputs (default: ones for scalars) */
  gradOutputs?: Tensor[];
  retainGraph?: boolean;
  /** build a graph of the gradient itself (for higher-order derivatives) */
  createGraph?: boolean;
  /** return null for inputs the outputs do not depend on instead of throwing */
  allowUnused?: boolean;
}

/** d(sum of outputs)/d(inputs), like torch.autograd.grad; does not touch .grad. */
export function grad(outputs: Tensor | Tensor[], inputs: Tensor[], o: GradOptions = {}): (Tensor | null)[] {
  const outs = Array.isArray(outputs) ? outputs : [outputs];
  const createGraph = o.createGraph ?? false;
  const res = native.gradOf(
    outs.map((t) => t.handle),
    inputs.map((t) => t.handle),
    o.gradOutputs ? o.gradOutputs.map((t) => t.handle) : null,
    o.retainGraph ?? createGraph,
    createGraph,
    o.allowUnused ?? false,
  );
  return res.map((h) => (h === null ? null : new Tensor(h)));
}
