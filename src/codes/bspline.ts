// B-spline assisted coded computing (after Borah, Harshan, Lalitha, "Basis-Spline Assisted
// Coded Computing: Strategies and Error Bounds", 2026): a training-free, non-systematic
// approximate code that works with any base model F. Berrut codes decode with a rational
// interpolant of global support; here the master reconstructs with cubic B-splines, whose local
// support keeps a missing output's effect local when many workers straggle.
//
// Encoding (the paper encodes with an interpolatory basis such as Berrut's; the default here):
// the K queries sit at Chebyshev points of the first kind beta_k, Berrut's interpolant through
// (beta_k, X_k) is evaluated at the N workers' Chebyshev points of the second kind alpha_n
// (exactly the Berrut code's encoder, so the two differ only in decoding); `encoder: "bspline"`
// uses cubic B-spline interpolation through the K queries instead. Decoding: the cubic
// B-spline fitted to the (alpha_n, output) pairs that arrived (interpolation, not-a-knot knots;
// `basis: B` fits min(B, returned) basis functions by least squares instead), evaluated at
// beta_k. Fewer than 4 returned outputs: the degree drops (a polynomial through them). Any
// non-empty set of outputs decodes.
import { registerCodeFamily } from './family-table.js';
import type { CodeConfig } from './code.js';
import { FittedCode } from './fitted-code.js';
import { berrutMatrix, chebyshevFirstKind, chebyshevSecondKind } from './interpolation.js';
import { bsplineFitMatrix } from './splines.js';

export const BSPLINE_ENCODERS = ['berrut', 'bspline'] as const;
export type BsplineEncoder = (typeof BSPLINE_ENCODERS)[number];

export interface BsplineOptions {
  k: number;
  /** workers (N >= k) */
  n: number;
  /** encoder interpolant (default berrut, as the paper) */
  encoder?: BsplineEncoder;
  /** decoder basis functions (default: as many as returned outputs, i.e. interpolation) */
  basis?: number;
}

export class BsplineCode extends FittedCode {
  readonly family = 'bspline';
  readonly encoderKind: BsplineEncoder;
  readonly basis: number | undefined;
  readonly betas: number[];
  readonly alphas: number[];

  constructor({ k, n, encoder = 'berrut', basis }: BsplineOptions) {
    super(k, n, 'bspline');
    if (!(BSPLINE_ENCODERS as readonly string[]).includes(encoder))
      throw new RangeError(`bspline: encoder must be one of ${BSPLINE_ENCODERS.join(', ')}, got '${encoder}'`);
    if (basis !== undefined && !(Number.isInteger(basis) && basis >= 1))
      throw new RangeError(`bspline: basis must be a positive integer, got ${basis}`);
    this.encoderKind = encoder;
    this.basis = basis;
    this.betas = chebyshevFirstKind(k);
    this.alphas = chebyshevSecondKind(n);
  }

  get name(): string {
    return `bspline(k=${this.k}, n=${this.n}${this.encoderKind === 'berrut' ? '' : `, encoder=${this.encoderKind}`}${this.basis === undefined ? '' : `, basis=${this.basis}`})`;
  }

  protected encoderMatrix(): number[][] {
    return this.encoderKind === 'berrut' ? berrutMatrix(this.betas, this.alphas) : bsplineFitMatrix(this.betas, this.alphas);
  }

  protected decoderMatrix(idx: readonly number[]): number[][] {
    return bsplineFitMatrix(
      idx.map((i) => this.alphas[i]),
      this.betas,
      this.basis === undefined ? {} : { basis: this.basis },
    );
  }

  config(): CodeConfig {
    const c: CodeConfig = { family: this.family, k: this.k, r: this.r };
    if (this.encoderKind !== 'berrut') c.encoder = this.encoderKind;
    if (this.basis !== undefined) c.basis = this.basis;
    return c;
  }
}

registerCodeFamily(
  'bspline',
  (c) =>
    new BsplineCode({
      k: c.k,
      n: c.k + c.r,
      encoder: (c.encoder ?? 'berrut') as BsplineEncoder,
      basis: c.basis === undefined ? undefined : Number(c.basis),
    }),
);
