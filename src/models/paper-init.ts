// The initialisation the papers use: linear weights ~ N(0, 0.01) (standard deviation
// 0.01), convolution weights Xavier-uniform, every bias zero.
import { normal_, xavierUniform_, zeros_ } from '../engine/init.js';
import { Conv2d } from '../nn/conv2d.js';
import { Linear } from '../nn/linear.js';
import type { Module } from '../nn/module.js';

export function applyPaperInit(model: Module): Module {
  for (const [, m] of model.namedModules()) {
    if (m instanceof Linear) normal_(m.weight, 0, 0.01);
    else if (m instanceof Conv2d) xavierUniform_(m.weight);
    else continue;
    if (m.bias !== null) zeros_(m.bias);
  }
  return model;
}
