// Replication as a code (the simplest member of the abstraction and the serving baseline):
// k = 1, each query is sent to 1 + r base-model workers; decoding returns the first copy
// that arrived. Nothing is ever reconstructed.
import type { Tensor } from '../engine/tensor.js';
import type { Module } from '../nn/module.js';
import { registerCodeFamily } from './family-table.js';
import {
  UndecodableError,
  availabilityOf,
  checkGroupInput,
  checkOutputs,
  type Availability,
  type Code,
  type CodeConfig,
  type CodedQuery,
  type Decoded,
} from './code.js';

export class ReplicationCode implements Code {
  readonly family = 'replication';
  readonly k = 1;
  readonly systematic = true;
  readonly n: number;
  constructor(readonly r: number) {
    if (!Number.isInteger(r) || r < 1) throw new RangeError(`replication: r must be a positive integer, got ${r}`);
    this.n = 1 + r;
  }
  get name(): string {
    return `replication(r=${this.r})`;
  }
  encode(x: Tensor): CodedQuery[] {
    checkGroupInput(this, x);
    const q = x.select(1, 0);
    return Array.from({ length: this.n }, (_, i) => ({ fn: { kind: 'base' as const }, inputs: [i === 0 ? q : q.share()] }));
  }
  canDecode(available: Availability): boolean {
    return available.length === this.n && available.some(Boolean);
  }
  decode(outputs: readonly (Tensor | null)[]): Decoded {
    checkOutputs(this, outputs);
    const first = outputs.find((o): o is Tensor => o !== null);
    if (first === undefined) throw new UndecodableError(this.name, availabilityOf(outputs), 'no copy arrived');
    return { outputs: [first.share()], reconstructed: [false] };
  }
  evaluationPatterns(): Availability[] {
    return [];
  }
  modules(): Map<string, Module> {
    return new Map();
  }
  config(): CodeConfig {
    return { family: this.family, k: 1, r: this.r };
  }
}

registerCodeFamily('replication', (c) => {
  if (c.k !== 1) throw new RangeError(`replication codes have k = 1, got k = ${c.k}`);
  return new ReplicationCode(c.r);
});
