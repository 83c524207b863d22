// LeTCC, learning-theoretic coded computing (Moradi, Tahmasebi, Maddah-Ali, NeurIPS 2024): a
// training-free, non-systematic approximate code that works with any base model F, like Berrut
// codes, with the encoder and the decoder fitted as cubic smoothing splines (the optimal
// encoder and decoder in the second-order Sobolev space, per the paper).
//
// Encoding: the K queries X_1..X_K sit at the data points beta_k (Chebyshev points of the first
// kind, as the Berrut code here); u_enc is the cubic smoothing spline fitted to (beta_k, X_k)
// with smoothing parameter lambdaEnc, and worker n runs F on u_enc(alpha_n) (alpha_n: Chebyshev
// points of the second kind). Decoding: u_dec is the cubic smoothing spline fitted to the
// (alpha_n, F(u_enc(alpha_n))) pairs that arrived, with smoothing parameter lambdaDec, and
// answer k is u_dec(beta_k). A smoothing spline minimises (1/m) sum (y_j - f(x_j))^2 + lambda
// integral_{-1}^{1} f''^2: lambda = 0 interpolates (natural cubic spline), larger lambda trades
// fidelity at the returned points for smoothness (the paper's regulariser against the error
// F adds). Both fits are linear in the data, so the code is two fixed matrices (fitted-code.ts).
// Any non-empty set of outputs decodes. `coded eval --code letcc:... --pick-smoothing` picks
// the two parameters on the base model's validation split.
import { registerCodeFamily } from './family-table.js';
import type { CodeConfig } from './code.js';
import { FittedCode, nonNegativeParam } from './fitted-code.js';
import { chebyshevFirstKind, chebyshevSecondKind } from './interpolation.js';
import { smoothingSplineMatrix } from './splines.js';

/** the encoder interpolates by default (noiseless inputs: nothing to smooth) */
export const DEFAULT_LAMBDA_ENC = 0;
/**
 * the decoder's default smoothing: small. On Fashion-MNIST Base-MLP the validation accuracy is
 * flat for lambdaDec <= 1e-4 and falls from 1e-2 on (docs/RESULTS.md, "Issue 17"); picks ranged 0 .. 1
 */
export const DEFAULT_LAMBDA_DEC = 1e-4;

export interface LetccOptions {
  k: number;
  /** workers (N >= k) */
  n: number;
  /** encoder smoothing parameter (default 0: interpolation) */
  lambdaEnc?: number;
  /** decoder smoothing parameter (default DEFAULT_LAMBDA_DEC) */
  lambdaDec?: number;
}

export class LetccCode extends FittedCode {
  readonly family = 'letcc';
  readonly lambdaEnc: number;
  readonly lambdaDec: number;
  /** the queries' data points (Chebyshev, first kind) */
  readonly betas: number[];
  /** the workers' evaluation points (Chebyshev, second kind) */
  readonly alphas: number[];

  constructor({ k, n, lambdaEnc = DEFAULT_LAMBDA_ENC, lambdaDec = DEFAULT_LAMBDA_DEC }: LetccOptions) {
    super(k, n, 'letcc');
    this.lambdaEnc = nonNegativeParam('letcc', 'lambdaEnc', lambdaEnc, DEFAULT_LAMBDA_ENC);
    this.lambdaDec = nonNegativeParam('letcc', 'lambdaDec', lambdaDec, DEFAULT_LAMBDA_DEC);
    this.betas = chebyshevFirstKind(k);
    this.alphas = chebyshevSecondKind(n);
  }

  get name(): string {
    return `letcc(k=${this.k}, n=${this.n}, lambdaEnc=${this.lambdaEnc}, lambdaDec=${this.lambdaDec})`;
  }

  protected encoderMatrix(): number[][] {
    return smoothingSplineMatrix(this.betas, this.alphas, this.lambdaEnc);
  }

  protected decoderMatrix(idx: readonly number[]): number[][] {
    return smoothingSplineMatrix(
      idx.map((i) => this.alphas[i]),
      this.betas,
      this.lambdaDec,
    );
  }

  config(): CodeConfig {
    return { family: this.family, k: this.k, r: this.r, lambdaEnc: this.lambdaEnc, lambdaDec: this.lambdaDec };
  }
}

registerCodeFamily(
  'letcc',
  (c) =>
    new LetccCode({
      k: c.k,
      n: c.k + c.r,
      lambdaEnc: nonNegativeParam('letcc', 'lambdaEnc', c.lambdaEnc, DEFAULT_LAMBDA_ENC),
      lambdaDec: nonNegativeParam('letcc', 'lambdaDec', c.lambdaDec, DEFAULT_LAMBDA_DEC),
    }),
);
