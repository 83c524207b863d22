// Adam (Kingma & Ba) with L2 weight decay added to the gradient, as torch.optim.Adam.
import { noGrad } from '../autograd.js';
import { tidy } from '../scope.js';
import { Optimizer } from './optimizer.js';
import type { Tensor } from '../tensor.js';

export interface AdamOptions {
  lr?: number;
  betas?: [number, number];
  eps?: number;
  /** L2 penalty: grad += weightDecay * param */
  weightDecay?: number;
  amsgrad?: boolean;
}

export class Adam extends Optimizer {
  readonly betas: [number, number];
  readonly eps: number;
  readonly weightDecay: number;
  readonly amsgrad: boolean;

  constructor(
    params: Iterable<Tensor>,
    { lr = 1e-3, betas = [0.9, 0.999], eps = 1e-8, weightDecay = 0, amsgrad = false }: AdamOptions = {},
  ) {
    super(params, lr);
    if (!(betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1))
      throw new RangeError(`Adam betas must be in [0, 1), got [${betas.join(', ')}]`);
    if (!(eps >= 0)) throw new RangeError(`Adam eps must be >= 0, got ${eps}`);
    if (!(weightDecay >= 0)) throw new RangeError(`Adam weightDecay must be >= 0, got ${weightDecay}`);
    this.betas = betas;
    this.eps = eps;
    this.weightDecay = weightDecay;
    this.amsgrad = amsgrad;
  }

  protected hyper() {
    return { betas: [...this.betas], eps: this.eps, weightDecay: this.weightDecay, amsgrad: this.amsgrad };
  }

  step(): void {
    const [b1, b2] = this.betas;
    noGrad(() =>
      tidy(() => {
        this.params.forEach((p, i) => {
          const g0 = p.grad;
          if (g0 === null) return;
          const g = this.weightDecay !== 0 ? g0.add(p, this.weightDecay) : g0;
          const t = ++this.steps[i];
          const m = this.slot(i, 'exp_avg', () => p.zerosLike());
          const v = this.slot(i, 'exp_avg_sq', () => p.zerosLike());
          m.mul_(b1).add_(g, 1 - b1);
          v.mul_(b2).addcmul_(g, g, 1 - b2);
          const bc1 = 1 - b1 ** t;
          const bc2 = 1 - b2 ** t;
          let second = v;
          if (this.amsgrad) {
            const vmax = this.slot(i, 'max_exp_avg_sq', () => p.zerosLike());
            vmax.copy_(vmax.maximum(v));
            second = vmax;
          }
          const denom = second.sqrt().div_(Math.sqrt(bc2)).add_(this.eps);
          p.addcdiv_(m, denom, -this.lr / bc1);
        });
      }),
    );
  }
}
