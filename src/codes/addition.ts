// The addition/subtraction parity code (ParM's basic code), r = 1: the parity query is the
// sum of the k queries, its parity model is trained towards the sum of their outputs, and a
// missing output is F_P(P) minus the sum of the other k - 1 outputs. It is the linear code
// with an all-ones coefficient row.
import { registerCodeFamily } from './family-table.js';
import type { CodeConfig } from './code.js';
import { LinearCode } from './linear.js';

export class AdditionCode extends LinearCode {
  override readonly family: string = 'addition';
  constructor(k: number) {
    super({ k, r: 1, coefficients: [Array<number>(k).fill(1)] });
    if (k < 2) throw new RangeError(`addition code: k must be >= 2, got ${k}`);
  }
  override config(): CodeConfig {
    return { family: this.family, k: this.k, r: 1 };
  }
}

registerCodeFamily('addition', (c) => {
  if (c.r !== 1) throw new RangeError(`addition codes have r = 1, got r = ${c.r} (use the 'linear' family for r > 1)`);
  return new AdditionCode(c.k);
});
