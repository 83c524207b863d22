// The reference code's initialisation (Thesys-lab/learned-coded-computation util/util.py
// init_weights, applied to every freshly built encoder and decoder; docs/FIDELITY.md):
//   Linear              weight ~ N(0, 0.01) (standard deviation 0.01), bias 0
//   Conv2d              weight Xavier-uniform with the ReLU gain sqrt 2, bias 0
//   BatchNorm           weight 1, bias 0
// applyPaperInit is the same function under the name it had before issue 19 (it then used
// Xavier gain 1 for convolutions; gain 1 is kept as the ConvEncoder's 'xavier' option).
import { calculateGain, constant_, normal_, xavierUniform_, zeros_ } from '../engine/init.js';
import { BatchNorm2d } from '../nn/batchnorm2d.js';
import { Conv2d } from '../nn/conv2d.js';
import { Linear } from '../nn/linear.js';
import type { Module } from '../nn/module.js';

export interface ReferenceInitOptions {
  /** Xavier-uniform gain of the convolutions (default the ReLU gain sqrt 2, as the reference) */
  convGain?: number;
}

/** Initialise every Linear, Conv2d and BatchNorm2d of model in place as the reference code does. */
export function applyReferenceInit(model: Module, { convGain = calculateGain('relu') }: ReferenceInitOptions = {}): Module {
  for (const [, m] of model.namedModules()) {
    if (m instanceof Linear) {
      normal_(m.weight, 0, 0.01);
      if (m.bias !== null) zeros_(m.bias);
    } else if (m instanceof Conv2d) {
      xavierUniform_(m.weight, convGain);
      if (m.bias !== null) zeros_(m.bias);
    } else if (m instanceof BatchNorm2d) {
      if (m.weight !== null) constant_(m.weight, 1);
      if (m.bias !== null) zeros_(m.bias);
    }
  }
  return model;
}

/** The name used before issue 19; now the reference init (convolutions with the ReLU gain). */
export const applyPaperInit = applyReferenceInit;
