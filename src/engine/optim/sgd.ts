// Stochastic gradient descent with momentum, dampening, Nesterov and L2 weight decay,
// as torch.optim.SGD.
import { noGrad } from '../autograd.js';
import { tidy } from '../scope.js';
import { Optimizer } from './optimizer.js';
import type { Tensor } from '../tensor.js';

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export class SGD extends Optimizer {
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;

  constructor(params: Iterable<Tensor>, { lr, momentum = 0, dampening = 0, nesterov = false, weightDecay = 0 }: SgdOptions) {
    super(params, lr);
    if (!(momentum >= 0)) throw new RangeError(`SGD momentum must be >= 0, got ${momentum}`);
    if (nesterov && (momentum <= 0 || dampening !== 0)) throw new RangeError('SGD: Nesterov momentum needs momentum > 0 and dampening 0');
    this.momentum = momentum;
    this.dampening = dampening;
    this.nesterov = nesterov;
    this.weightDecay = weightDecay;
  }

  protected hyper() {
    return { momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov, weightDecay: this.weightDecay };
  }

  step(): void {
    noGrad(() =>
      tidy(() => {
        this.params.forEach((p, i) => {
          const g0 = p.grad;
          if (g0 === null) return;
          let g = this.weightDecay !== 0 ? g0.add(p, this.weightDecay) : g0;
          this.steps[i]++;
          if (this.momentum !== 0) {
            const fresh = !this.state[i].has('momentum_buffer');
            const buf = this.slot(i, 'momentum_buffer', () => g.detach().clone());
            if (!fresh) buf.mul_(this.momentum).add_(g, 1 - this.dampening);
            g = this.nesterov ? g.add(buf, this.momentum) : buf;
          }
          p.add_(g, -this.lr);
        });
      }),
    );
  }
}
