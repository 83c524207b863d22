// ResNets for small images, after kuangliu/pytorch-cifar (which follows torchvision's
// BasicBlock / Bottleneck): a 3x3 stride-1 stem without max-pool, stages of residual
// blocks (the first block of every stage after the first downsamples with stride 2,
// projection shortcuts are 1x1 conv + batch norm), global average pooling and a linear
// classifier. forward() returns raw logits. State-dict names follow kuangliu's code
// (conv1, bn1, layerK.i.conv1/bn1/conv2/bn2[/conv3/bn3], layerK.i.shortcut.0/1, linear),
// so checkpoints converted from that repository load directly.
//
// Variants:
//   'cifar': 3 x 32 x 32 input, four stages of 64/128/256/512 planes.
//   'mnist': 1 x 28 x 28 input, three stages of 64/128/256 planes (28 -> 28, 14, 7).
//   'imagenet': torchvision's architecture for 3 x 224 x 224 (any 3 x H x W, H, W >= 32): a 7x7
//              stride-2 stem conv and a 3x3 stride-2 max-pool (224 -> 112 -> 56), then the four
//              stages of 'cifar' (56, 28, 14, 7). Same parameter count as torchvision's
//              resnet18/resnet152 (11,689,512 / 60,192,808 with 1000 classes); the state-dict
//              names are still kuangliu's (shortcut, linear), not torchvision's (downsample, fc).
import type { Tensor } from '../engine/tensor.js';
import { adaptiveAvgPool2d, maxPool2d } from '../engine/ops.js';
import { BatchNorm2d } from '../nn/batchnorm2d.js';
import { Conv2d } from '../nn/conv2d.js';
import { Linear } from '../nn/linear.js';
import { Module } from '../nn/module.js';
import { Sequential } from '../nn/sequential.js';
import { pipe } from '../nn/pipe.js';

const relu = (t: Tensor): Tensor => t.relu();

export type ResNetVariant = 'cifar' | 'mnist' | 'imagenet';

interface Block extends Module {
  readonly outPlanes: number;
}

/** Projection shortcut (1x1 conv + BN) when the shape changes, else null (identity). */
function shortcut(inPlanes: number, outPlanes: number, stride: number): Sequential | null {
  if (stride === 1 && inPlanes === outPlanes) return null;
  return new Sequential(new Conv2d(inPlanes, outPlanes, 1, { stride, bias: false }), new BatchNorm2d(outPlanes));
}

/** out = relu(x' + shortcut(x)), where x' is the block's residual branch ending in a BN output. */
function addShortcutRelu(residual: Tensor, x: Tensor, sc: Sequential | null): Tensor {
  if (sc === null) {
    residual.add_(x);
  } else {
    const s = sc.forward(x);
    residual.add_(s);
    s.dispose();
  }
  const out = residual.relu();
  residual.dispose();
  return out;
}

/** Two 3x3 convolutions (expansion 1). */
export class BasicBlock extends Module implements Block {
  static readonly expansion = 1;
  readonly outPlanes: number;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly shortcut: Sequential | null;

  constructor(inPlanes: number, planes: number, stride = 1) {
    super();
    this.outPlanes = planes;
    this.conv1 = this.registerModule('conv1', new Conv2d(inPlanes, planes, 3, { stride, padding: 1, bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', new Conv2d(planes, planes, 3, { stride: 1, padding: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    const sc = shortcut(inPlanes, planes, stride);
    this.shortcut = sc === null ? null : this.registerModule('shortcut', sc);
  }

  forward(x: Tensor): Tensor {
    const residual = pipe(
      x,
      (t) => this.conv1.forward(t),
      (t) => this.bn1.forward(t),
      relu,
      (t) => this.conv2.forward(t),
      (t) => this.bn2.forward(t),
    );
    return addShortcutRelu(residual, x, this.shortcut);
  }
}

/** 1x1 reduce, 3x3 (carrying the stride), 1x1 expand to 4 x planes. */
export class Bottleneck extends Module implements Block {
  static readonly expansion = 4;
  readonly outPlanes: number;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly conv2: Conv2d;
  readonly bn2: BatchNorm2d;
  readonly conv3: Conv2d;
  readonly bn3: BatchNorm2d;
  readonly shortcut: Sequential | null;

  constructor(inPlanes: number, planes: number, stride = 1) {
    super();
    this.outPlanes = planes * Bottleneck.expansion;
    this.conv1 = this.registerModule('conv1', new Conv2d(inPlanes, planes, 1, { bias: false }));
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(planes));
    this.conv2 = this.registerModule('conv2', new Conv2d(planes, planes, 3, { stride, padding: 1, bias: false }));
    this.bn2 = this.registerModule('bn2', new BatchNorm2d(planes));
    this.conv3 = this.registerModule('conv3', new Conv2d(planes, this.outPlanes, 1, { bias: false }));
    this.bn3 = this.registerModule('bn3', new BatchNorm2d(this.outPlanes));
    const sc = shortcut(inPlanes, this.outPlanes, stride);
    this.shortcut = sc === null ? null : this.registerModule('shortcut', sc);
  }

  forward(x: Tensor): Tensor {
    const residual = pipe(
      x,
      (t) => this.conv1.forward(t),
      (t) => this.bn1.forward(t),
      relu,
      (t) => this.conv2.forward(t),
      (t) => this.bn2.forward(t),
      relu,
      (t) => this.conv3.forward(t),
      (t) => this.bn3.forward(t),
    );
    return addShortcutRelu(residual, x, this.shortcut);
  }
}

export type BlockKind = 'basic' | 'bottleneck';

export interface ResNetOptions {
  block: BlockKind;
  /** blocks per stage, e.g. [2, 2, 2, 2] for ResNet-18 */
  numBlocks: readonly number[];
  variant?: ResNetVariant;
  numClasses?: number;
}

const STAGE_PLANES = [64, 128, 256, 512];

export class ResNet extends Module {
  readonly variant: ResNetVariant;
  readonly inChannels: number;
  readonly numClasses: number;
  readonly conv1: Conv2d;
  readonly bn1: BatchNorm2d;
  readonly stages: Sequential[];
  readonly linear: Linear;

  constructor({ block, numBlocks, variant = 'cifar', numClasses = 10 }: ResNetOptions) {
    super();
    const stages = variant === 'mnist' ? 3 : 4;
    if (numBlocks.length !== stages) {
      throw new RangeError(`ResNet '${variant}' has ${stages} stages, got ${numBlocks.length} block counts [${numBlocks.join(', ')}]`);
    }
    if (numBlocks.some((n) => !(Number.isInteger(n) && n >= 1)))
      throw new RangeError(`ResNet: block counts must be positive integers, got [${numBlocks.join(', ')}]`);
    this.variant = variant;
    this.inChannels = variant === 'mnist' ? 1 : 3;
    this.numClasses = numClasses;
    const Block = block === 'basic' ? BasicBlock : Bottleneck;
    const stem = variant === 'imagenet' ? { kernel: 7, stride: 2, padding: 3 } : { kernel: 3, stride: 1, padding: 1 };
    this.conv1 = this.registerModule(
      'conv1',
      new Conv2d(this.inChannels, 64, stem.kernel, { stride: stem.stride, padding: stem.padding, bias: false }),
    );
    this.bn1 = this.registerModule('bn1', new BatchNorm2d(64));
    let inPlanes = 64;
    this.stages = [];
    numBlocks.forEach((n, s) => {
      const blocks: Block[] = [];
      for (let i = 0; i < n; i++) {
        const b = new Block(inPlanes, STAGE_PLANES[s], i === 0 && s > 0 ? 2 : 1);
        inPlanes = b.outPlanes;
        blocks.push(b);
      }
      this.stages.push(this.registerModule(`layer${s + 1}`, new Sequential(...blocks)));
    });
    this.linear = this.registerModule('linear', new Linear(inPlanes, numClasses));
  }

  /** x: [N, inChannels, H, W] -> logits [N, numClasses]. */
  forward(x: Tensor): Tensor {
    return pipe(
      x,
      (t) => this.conv1.forward(t),
      (t) => this.bn1.forward(t),
      relu,
      ...(this.variant === 'imagenet' ? [(t: Tensor) => maxPool2d(t, 3, { stride: 2, padding: 1 })] : []),
      ...this.stages.map((stage) => (t: Tensor) => stage.forward(t)),
      (t) => adaptiveAvgPool2d(t, 1),
      (t) => t.flatten(1),
      (t) => this.linear.forward(t),
    );
  }
}

/** ResNet-18: BasicBlocks [2, 2, 2, 2] ('cifar', 'imagenet') or [2, 2, 2] ('mnist'). */
export function resnet18(variant: ResNetVariant = 'cifar', numClasses = 10): ResNet {
  return new ResNet18(variant, numClasses);
}

/** ResNet-152 ('cifar' or 'imagenet'): Bottleneck blocks [3, 8, 36, 3]. */
export function resnet152(numClasses = 10, variant: 'cifar' | 'imagenet' = 'cifar'): ResNet {
  return new ResNet152(numClasses, variant);
}

/** ResNet-18 as a class: `new ResNet18('cifar')`. */
export class ResNet18 extends ResNet {
  constructor(variant: ResNetVariant = 'cifar', numClasses = 10) {
    super({ block: 'basic', numBlocks: variant === 'mnist' ? [2, 2, 2] : [2, 2, 2, 2], variant, numClasses });
  }
}

/** ResNet-152 (CIFAR or ImageNet variant) as a class. */
export class ResNet152 extends ResNet {
  constructor(numClasses = 10, variant: 'cifar' | 'imagenet' = 'cifar') {
    super({ block: 'bottleneck', numBlocks: [3, 8, 36, 3], variant, numClasses });
  }
}
