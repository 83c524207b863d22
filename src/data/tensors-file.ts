// Your own data as a tensors file: a safetensors file with `inputs` [N, ...] (float32, already
// normalised as the model expects) and optional `labels` [N] (integer class indices). Split
// into train / validation / test with a seeded permutation (the same seed, the same split).
// (.npy/.npz are not read yet: convert with safetensors.torch.save_file or numpy.)
import { existsSync } from 'node:fs';
import { loadSafetensors } from '../nn/safetensors.js';
import { tensor, type Tensor } from '../engine/tensor.js';
import { tidy } from '../engine/scope.js';
import { seededPermutation } from './rng.js';
import type { Split } from './split.js';

export interface TensorsFile {
  path: string;
  /** [N, ...] float32 */
  inputs: Tensor;
  /** [N] int64, or null when the file has none */
  labels: Tensor | null;
}

const HOW =
  'a safetensors file with `inputs` [N, ...] (float32) and optional `labels` [N] (integer classes), e.g. safetensors.torch.save_file({"inputs": x, "labels": y}, PATH)';

/** Read a tensors file; errors name the file and the expected layout. */
export function loadTensorsFile(path: string): TensorsFile {
  if (!existsSync(path)) throw new Error(`${path}: no such file (expected ${HOW})`);
  if (!/\.safetensors$/i.test(path)) throw new Error(`${path}: only safetensors tensors files are read (expected ${HOW})`);
  const { tensors } = loadSafetensors(path);
  const inputs = tensors.get('inputs');
  const labels = tensors.get('labels') ?? null;
  const fail = (why: string): never => {
    for (const t of tensors.values()) t.dispose();
    throw new Error(`${path}: ${why} (expected ${HOW})`);
  };
  if (inputs === undefined) return fail(`no tensor named 'inputs' (it has ${[...tensors.keys()].join(', ') || 'none'})`);
  if (inputs.dtype !== 'float32' || inputs.rank < 2)
    fail(`'inputs' is ${inputs.dtype} [${inputs.shape.join(', ')}]; it must be float32 with a batch dimension`);
  if (
    labels !== null &&
    (!['int64', 'int32', 'uint8'].includes(labels.dtype) || labels.rank !== 1 || labels.shape[0] !== inputs.shape[0])
  ) {
    fail(`'labels' is ${labels.dtype} [${labels.shape.join(', ')}]; it must be integer [${inputs.shape[0]}]`);
  }
  for (const [k, t] of tensors) if (k !== 'inputs' && k !== 'labels') t.dispose();
  const l = labels === null ? null : labels.dtype === 'int64' ? labels : tidy(() => labels.to('int64').keep());
  if (l !== labels) labels?.dispose();
  return { path, inputs: inputs.keep(), labels: l === null ? null : l.keep() };
}

/** Cut [N, ...] inputs and [N] labels into seeded train / validation / test splits (fractions of N; default 80/10/10). */
export function splitTensors(
  inputs: Tensor,
  labels: Tensor,
  { seed = 1, validation = 0.1, test = 0.1 } = {},
): { train: Split; validation: Split; test: Split } {
  const n = inputs.shape[0];
  const nv = Math.max(1, Math.round(n * validation));
  const nt = Math.max(1, Math.round(n * test));
  if (n - nv - nt < 2) throw new Error(`${n} examples are too few to split into train / validation / test`);
  const perm = seededPermutation(n, seed, 'tensors-file-split');
  const take = (from: number, count: number): Split =>
    tidy(() => {
      const idx = tensor(Int32Array.from(perm.subarray(from, from + count)), [count], { dtype: 'int32' }).to('int64');
      return { images: inputs.indexSelect(0, idx).keep(), labels: labels.indexSelect(0, idx).keep(), size: count };
    });
  return { test: take(0, nt), validation: take(nt, nv), train: take(nt + nv, n - nt - nv) };
}
