// Parameter initialisers (in place), with PyTorch's fan and gain conventions.
import { noGrad } from './autograd.js';
import type { Tensor } from './tensor.js';

/** [fanIn, fanOut] of a weight [out, in, ...kernel]. */
export function fans(t: Tensor): [number, number] {
  const s = t.shape;
  if (s.length < 2) throw new RangeError(`fan in/out need a tensor of rank >= 2, got shape [${s.join(', ')}]`);
  const receptive = s.slice(2).reduce((a, b) => a * b, 1);
  return [s[1] * receptive, s[0] * receptive];
}

export type Nonlinearity = 'linear' | 'relu' | 'leaky_relu' | 'tanh' | 'sigmoid';
export function calculateGain(nonlinearity: Nonlinearity, param = 0.01): number {
  switch (nonlinearity) {
    case 'linear':
    case 'sigmoid':
      return 1;
    case 'tanh':
      return 5 / 3;
    case 'relu':
      return Math.SQRT2;
    case 'leaky_relu':
      return Math.sqrt(2 / (1 + param * param));
  }
}

export function zeros_(t: Tensor): Tensor {
  return noGrad(() => t.zero_());
}
export function constant_(t: Tensor, v: number): Tensor {
  return noGrad(() => t.fill_(v));
}
export function normal_(t: Tensor, mean = 0, std = 1): Tensor {
  return noGrad(() => t.normal_(mean, std));
}
export function uniform_(t: Tensor, low = 0, high = 1): Tensor {
  return noGrad(() => t.uniform_(low, high));
}
/** Glorot/Xavier uniform: U(-a, a), a = gain * sqrt(6 / (fanIn + fanOut)). */
export function xavierUniform_(t: Tensor, gain = 1): Tensor {
  const [fi, fo] = fans(t);
  const a = gain * Math.sqrt(6 / (fi + fo));
  return uniform_(t, -a, a);
}
export function xavierNormal_(t: Tensor, gain = 1): Tensor {
  const [fi, fo] = fans(t);
  return normal_(t, 0, gain * Math.sqrt(2 / (fi + fo)));
}
export interface KaimingOptions {
  /** negative slope for leaky_relu */
  a?: number;
  mode?: 'fanIn' | 'fanOut';
  nonlinearity?: Nonlinearity;
}
/** He uniform: U(-b, b), b = gain * sqrt(3 / fan). */
export function kaimingUniform_(t: Tensor, { a = 0, mode = 'fanIn', nonlinearity = 'leaky_relu' }: KaimingOptions = {}): Tensor {
  const [fi, fo] = fans(t);
  const std = calculateGain(nonlinearity, a) / Math.sqrt(mode === 'fanIn' ? fi : fo);
  const bound = Math.sqrt(3) * std;
  return uniform_(t, -bound, bound);
}
/** He normal: N(0, gain / sqrt(fan)). */
export function kaimingNormal_(t: Tensor, { a = 0, mode = 'fanIn', nonlinearity = 'leaky_relu' }: KaimingOptions = {}): Tensor {
  const [fi, fo] = fans(t);
  return normal_(t, 0, calculateGain(nonlinearity, a) / Math.sqrt(mode === 'fanIn' ? fi : fo));
}
