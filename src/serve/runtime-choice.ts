// Which runtime serves a model that exists both as TorchScript (libtorch's JIT) and as ONNX (ONNX
// Runtime): `coded serve instance --model F.pt` with F.onnx beside it (or the other way round).
// Both are loaded, must agree on one input, and are timed side by side (interleaved batch-1
// forwards); the faster one serves, the other is closed. Measured once at start-up: the choice
// and both times are logged and published in the model's description.
import { existsSync } from 'node:fs';
import { TORCHSCRIPT_EXTENSIONS, isOnnxPath, isTorchScriptPath } from '../models/file-kinds.js';
import type { ServedModel } from './served-model.js';

/** The same model in the other format next to `path` (F.pt -> F.onnx; F.onnx -> F.pt / F.pth / F.torchscript), or null. */
export function siblingModelFile(path: string): string | null {
  const stem = path.replace(/\.[^./]+$/, '');
  if (isTorchScriptPath(path)) return existsSync(`${stem}.onnx`) ? `${stem}.onnx` : null;
  if (isOnnxPath(path)) {
    for (const e of TORCHSCRIPT_EXTENSIONS) if (existsSync(stem + e)) return stem + e;
  }
  return null;
}

export interface RuntimeCandidate {
  path: string;
  model: ServedModel;
}

export interface RuntimeChoice {
  chosen: RuntimeCandidate;
  /** median batch-1 forward time of each candidate (ms), in the order given; empty when not timed */
  times: { path: string; medianMs: number }[];
  /** one line for the log */
  reason: string;
}

export interface ChooseOptions {
  device: string;
  threads: number;
  /** timed forwards per candidate (default 20, after 3 warm-up forwards each) */
  reps?: number;
  /** largest allowed max. abs. difference of the outputs, relative to 1 + max |output| (default 1e-4) */
  tolerance?: number;
  /** the clock (ms); injected by tests */
  now?: () => number;
}

function probeInput(n: number): Float32Array {
  // a fixed pseudo-random input in [-1, 1) (LCG), so the comparison is the same on every start
  const x = new Float32Array(n);
  let s = 12345;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = (s / 2 ** 32) * 2 - 1;
  }
  return x;
}

/**
 * Load every candidate, check that they compute the same outputs, time them side by side and
 * keep the fastest (the first when outputs differ); the others are closed.
 */
export async function chooseFasterRuntime(candidates: RuntimeCandidate[], o: ChooseOptions): Promise<RuntimeChoice> {
  if (candidates.length === 0) throw new Error('internal: no runtime candidates');
  const keep = (chosen: RuntimeCandidate, times: RuntimeChoice['times'], reason: string): Promise<RuntimeChoice> =>
    Promise.all(candidates.filter((c) => c !== chosen).map((c) => c.model.close())).then(() => ({ chosen, times, reason }));
  if (candidates.length === 1) return { chosen: candidates[0], times: [], reason: `${candidates[0].path}: the only runtime` };
  for (const c of candidates) await c.model.load(o.device, o.threads);
  const first = candidates[0];
  const shape = first.model.inputShape;
  for (const c of candidates.slice(1)) {
    if (c.model.inputShape.join('x') !== shape.join('x') || c.model.outputShape.join('x') !== first.model.outputShape.join('x')) {
      return keep(
        first,
        [],
        `${c.path} takes [${c.model.inputShape}] -> [${c.model.outputShape}], ${first.path} [${shape}] -> [${first.model.outputShape}]: serving ${first.path}`,
      );
    }
  }
  const x = probeInput(shape.reduce((a, b) => a * b, 1));
  const ys = [];
  for (const c of candidates) ys.push(await c.model.forward(x, 1));
  const tol = o.tolerance ?? 1e-4;
  const scale = 1 + Math.max(...Array.from(ys[0], Math.abs));
  for (let j = 1; j < ys.length; j++) {
    let d = 0;
    for (let i = 0; i < ys[0].length; i++) d = Math.max(d, Math.abs(ys[0][i] - ys[j][i]));
    if (!(d <= tol * scale)) {
      return keep(
        first,
        [],
        `${candidates[j].path} and ${first.path} answer differently (max abs. difference ${d.toExponential(2)}): serving ${first.path}; remove the file that is not your model`,
      );
    }
  }
  const now = o.now ?? (() => performance.now());
  const reps = o.reps ?? 20;
  const samples: number[][] = candidates.map(() => []);
  for (let w = 0; w < 3; w++) for (const c of candidates) await c.model.forward(x, 1);
  for (let r = 0; r < reps; r++) {
    // interleaved, the order reversed every other round, so drift affects each alike
    const order = r % 2 === 0 ? candidates.map((_, i) => i) : candidates.map((_, i) => candidates.length - 1 - i);
    for (const i of order) {
      const t0 = now();
      await candidates[i].model.forward(x, 1);
      samples[i].push(now() - t0);
    }
  }
  const median = (a: number[]) => [...a].sort((p, q) => p - q)[(a.length - 1) >> 1];
  const times = candidates.map((c, i) => ({ path: c.path, medianMs: median(samples[i]) }));
  let best = 0;
  for (let i = 1; i < times.length; i++) if (times[i].medianMs < times[best].medianMs) best = i;
  const chosen = candidates[best];
  return keep(
    chosen,
    times,
    `runtimes timed side by side (${reps} batch-1 forwards each): ${times.map((t) => `${t.path} ${t.medianMs.toFixed(3)} ms`).join(', ')}; serving ${chosen.path}`,
  );
}
