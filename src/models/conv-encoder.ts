// ConvEncoder: the learned-code encoder that maps k stacked input images [N, k, H, W] to
// one parity image [N, outChannels, H, W]. Six 3x3 convolutions with dilations
// 1, 1, 2, 4, 8, 1 and 'same' padding (the receptive field grows to 35 x 35 without
// losing resolution), then a 1x1 convolution; ReLU between layers, none after the last.
//
// Initialisation (ENCODER_INITS):
//   'reference' (default) the reference code's (util/util.py init_weights): Xavier-uniform with
//               the ReLU gain sqrt 2, biases zero (applyReferenceInit). Each layer then keeps
//               about the variance of its input (Xavier's 2 / (fan in + fan out) times 2).
//   'xavier'    Xavier-uniform with gain 1, biases zero: our default before issue 19 (stored
//               by older configs as 'paper', still read). The first layer (fan in 9k, fan out
//               180k) keeps ~1/10 of the input's variance and each hidden layer halves it, so
//               at initialisation the parity's std is ~3% of the input's.
//   'kaiming'   He-normal (fan in, ReLU gain sqrt 2), biases zero.
import { kaimingNormal_, zeros_ } from '../engine/init.js';
import type { Tensor } from '../engine/tensor.js';
import { Conv2d } from '../nn/conv2d.js';
import { ReLU } from '../nn/layers.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { applyReferenceInit } from './paper-init.js';

/** Initialisations of the ConvEncoder: the reference code's (default), Xavier gain 1, or He (Kaiming). */
export const ENCODER_INITS = ['reference', 'xavier', 'kaiming'] as const;
export type EncoderInit = (typeof ENCODER_INITS)[number];
/** Names older code configs may hold, and what they mean now ('paper' was Xavier gain 1). */
export const LEGACY_ENCODER_INITS: Readonly<Record<string, EncoderInit>> = { paper: 'xavier' };

/** The init a config value names (a current name, or a legacy one), or undefined if none. */
export function encoderInitNamed(name: unknown): EncoderInit | undefined {
  if ((ENCODER_INITS as readonly unknown[]).includes(name)) return name as EncoderInit;
  return typeof name === 'string' && Object.hasOwn(LEGACY_ENCODER_INITS, name) ? LEGACY_ENCODER_INITS[name] : undefined;
}

export interface ConvEncoderOptions {
  /** input images coded together (input channels) */
  k: number;
  /** hidden channels (default 20 * k) */
  hidden?: number;
  /** output channels (default 1) */
  outChannels?: number;
  /** dilations of the 3x3 layers (default [1, 1, 2, 4, 8, 1]) */
  dilations?: readonly number[];
}

export class ConvEncoder extends Module {
  readonly k: number;
  readonly hidden: number;
  readonly outChannels: number;
  readonly net: Sequential;

  constructor({ k, hidden = 20 * k, outChannels = 1, dilations = [1, 1, 2, 4, 8, 1] }: ConvEncoderOptions) {
    super();
    if (!(Number.isInteger(k) && k >= 1)) throw new RangeError(`ConvEncoder: k must be a positive integer, got ${k}`);
    this.k = k;
    this.hidden = hidden;
    this.outChannels = outChannels;
    const layers: Module[] = [];
    let c = k;
    for (const d of dilations) {
      layers.push(new Conv2d(c, hidden, 3, { padding: 'same', dilation: d }), new ReLU());
      c = hidden;
    }
    layers.push(new Conv2d(c, outChannels, 1));
    this.net = this.registerModule('net', new Sequential(...layers));
  }

  /** x: [N, k, H, W] -> [N, outChannels, H, W]. */
  forward(x: Tensor): Tensor {
    return this.net.forward(x);
  }

  /** (Re)initialise the weights in place ('reference', 'xavier' or 'kaiming'; legacy 'paper' = 'xavier'); biases zero. */
  initialise(init: EncoderInit | 'paper' = 'reference'): this {
    const named = encoderInitNamed(init);
    if (named === undefined) throw new RangeError(`ConvEncoder: unknown init '${String(init)}' (${ENCODER_INITS.join(', ')})`);
    if (named === 'reference') {
      applyReferenceInit(this);
      return this;
    }
    if (named === 'xavier') {
      applyReferenceInit(this, { convGain: 1 });
      return this;
    }
    const convs = [...this.namedModules()].map(([, m]) => m).filter((m): m is Conv2d => m instanceof Conv2d);
    for (const c of convs) {
      // fan in, ReLU gain sqrt 2: each layer after the first reads ReLU outputs (the final 1x1
      // convolution included), so its input has half the second moment of the previous layer's
      kaimingNormal_(c.weight, { mode: 'fanIn', nonlinearity: 'relu' });
      if (c.bias !== null) zeros_(c.bias);
    }
    return this;
  }
}
