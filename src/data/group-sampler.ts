// The k-group sampler for coded training: each epoch, a seeded permutation of the dataset
// is cut into coding groups of k distinct samples (the remainder that does not fill a
// group is dropped), so every sample appears at most once per epoch; groups are batched
// B at a time. Epoch e's order depends only on (seed, e), so any epoch can be replayed.
import { tensor, type Tensor } from '../engine/tensor.js';
import { tidy } from '../engine/scope.js';
import { seededPermutation } from './rng.js';
import type { Split } from './split.js';

export interface GroupSamplerOptions {
  /** number of samples in the dataset */
  size: number;
  /** samples per coding group */
  k: number;
  /** groups per batch (B) */
  groupsPerBatch: number;
  seed: number;
  /** drop a last batch with fewer than B groups (default false) */
  dropLastBatch?: boolean;
}

export interface GroupBatch {
  /** batch number within the epoch */
  index: number;
  /** groups in this batch (B, or fewer for a last partial batch) */
  groups: number;
  k: number;
  /** sample indices, group-major: group g is indices[g*k .. g*k+k-1] */
  indices: Int32Array;
}

export class GroupSampler {
  readonly size: number;
  readonly k: number;
  readonly groupsPerBatch: number;
  readonly seed: number;
  readonly dropLastBatch: boolean;

  constructor(o: GroupSamplerOptions) {
    for (const [name, v] of [
      ['size', o.size],
      ['k', o.k],
      ['groupsPerBatch', o.groupsPerBatch],
    ] as const) {
      if (!(Number.isInteger(v) && v >= 1)) throw new RangeError(`GroupSampler: ${name} must be a positive integer, got ${v}`);
    }
    if (o.k > o.size) throw new RangeError(`GroupSampler: k = ${o.k} is larger than the dataset (${o.size} samples)`);
    this.size = o.size;
    this.k = o.k;
    this.groupsPerBatch = o.groupsPerBatch;
    this.seed = o.seed;
    this.dropLastBatch = o.dropLastBatch ?? false;
  }

  /** Complete groups per epoch: floor(size / k). */
  get groupsPerEpoch(): number {
    return Math.floor(this.size / this.k);
  }

  get batchesPerEpoch(): number {
    const g = this.groupsPerEpoch;
    return this.dropLastBatch ? Math.floor(g / this.groupsPerBatch) : Math.ceil(g / this.groupsPerBatch);
  }

  /** All of an epoch's groups, group-major (groupsPerEpoch * k distinct indices). */
  epochGroups(epoch: number): Int32Array {
    return seededPermutation(this.size, this.seed, 'k-groups', epoch).subarray(0, this.groupsPerEpoch * this.k);
  }

  /** The epoch's batches of groups, in order. */
  *batches(epoch: number): Generator<GroupBatch> {
    const all = this.epochGroups(epoch);
    const per = this.groupsPerBatch * this.k;
    for (let b = 0; b < this.batchesPerEpoch; b++) {
      const indices = all.subarray(b * per, Math.min((b + 1) * per, all.length));
      yield { index: b, groups: indices.length / this.k, k: this.k, indices };
    }
  }
}

/** A batch's samples as tensors: images [G, k, C, H, W] and labels [G, k]. */
export function gatherGroups(split: Split, batch: GroupBatch): { images: Tensor; labels: Tensor } {
  return tidy(() => {
    const idx = tensor(batch.indices, [batch.indices.length], { dtype: 'int64', device: split.images.device });
    const x = split.images.indexSelect(0, idx);
    const [, ...rest] = x.shape;
    return {
      images: x.reshape([batch.groups, batch.k, ...rest]),
      labels: split.labels.indexSelect(0, idx).reshape([batch.groups, batch.k]),
    };
  });
}
