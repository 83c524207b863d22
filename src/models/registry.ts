// The model zoo by name. Each entry builds a Module returning raw logits for a given input
// shape and class count, with the initialisation that reaches its accuracy bar.
import type { Module } from '../nn/module.js';
import { BaseMLP } from './base-mlp.js';
import { LeNet5 } from './lenet5.js';
import { LogisticRegression } from './logistic-regression.js';
import { applyPaperInit } from './paper-init.js';
import { ResNet18, ResNet152 } from './resnet.js';
import { VGG11 } from './vgg11.js';

export interface InputSpec {
  channels: number;
  height: number;
  width: number;
  classes: number;
}

export interface ModelEntry {
  name: string;
  description: string;
  /** which inputs the architecture accepts */
  accepts: (s: InputSpec) => boolean;
  build: (s: InputSpec) => Module;
  init: 'paper' | 'pytorch-default';
}

const grey28 = (s: InputSpec) => s.channels === 1 && s.height === 28 && s.width === 28;
const rgb32 = (s: InputSpec) => s.channels === 3 && s.height === 32 && s.width === 32;
/** 3-channel images other than 32x32 that the ImageNet stem takes (224x224 is the standard; at least 32x32) */
const rgbLarge = (s: InputSpec) => s.channels === 3 && s.height >= 32 && s.width >= 32 && !rgb32(s);
const features = (s: InputSpec) => s.channels * s.height * s.width;

export const MODELS: ModelEntry[] = [
  {
    name: 'logistic-regression',
    description: 'multinomial logistic regression: one linear layer from pixels to logits',
    accepts: () => true,
    build: (s) => applyPaperInit(new LogisticRegression(features(s), s.classes)),
    init: 'paper',
  },
  {
    name: 'base-mlp',
    description: "Base-MLP: fully connected 784-200-100-10 with ReLU (the papers' MNIST-family model)",
    accepts: () => true,
    build: (s) => applyPaperInit(new BaseMLP({ inFeatures: features(s), numClasses: s.classes })),
    init: 'paper',
  },
  {
    name: 'lenet5',
    description: 'LeNet-5: two 5x5 conv + max-pool stages, then 120-84-classes (28x28 inputs)',
    accepts: (s) => s.height === 28 && s.width === 28,
    build: (s) => new LeNet5(s.channels, s.classes),
    init: 'pytorch-default',
  },
  {
    name: 'vgg11',
    description: 'VGG-11 with batch norm (CIFAR layout; 28x28 inputs skip the last pooling)',
    accepts: (s) => s.height === s.width && s.height >= 16,
    build: (s) => new VGG11(s.channels, s.classes, s.height),
    init: 'pytorch-default',
  },
  {
    name: 'resnet18',
    description:
      "ResNet-18: 1x28x28 three-stage variant (MNIST family), 3x32x32 four-stage variant (CIFAR), or torchvision's ImageNet architecture (7x7 stride-2 stem + max-pool) for other 3xHxW inputs, e.g. 3x224x224",
    accepts: (s) => grey28(s) || rgb32(s) || rgbLarge(s),
    build: (s) => new ResNet18(grey28(s) ? 'mnist' : rgb32(s) ? 'cifar' : 'imagenet', s.classes),
    init: 'pytorch-default',
  },
  {
    name: 'resnet152',
    description:
      "ResNet-152 (Bottleneck blocks [3, 8, 36, 3]): CIFAR variant for 3x32x32, torchvision's ImageNet architecture for other 3xHxW inputs, e.g. 3x224x224",
    accepts: (s) => rgb32(s) || rgbLarge(s),
    build: (s) => new ResNet152(s.classes, rgb32(s) ? 'cifar' : 'imagenet'),
    init: 'pytorch-default',
  },
];

/**
 * The parametric MLP family: `mlp:W1,W2,...` is a fully connected classifier with those hidden
 * widths (ReLU between layers, the papers' init), `mlp:W1,W2,...:dropout=P` adds dropout with
 * probability P after every hidden layer (training only). `mlp:200,100` is Base-MLP's shape.
 */
export const MLP_FAMILY = 'mlp:W1,W2,...[:dropout=P]';
const MLP_PATTERN = /^mlp:(\d+(?:,\d+)*)(?::dropout=(0(?:\.\d+)?|1(?:\.0*)?|\.\d+))?$/;

function mlpEntry(name: string): ModelEntry | undefined {
  const m = MLP_PATTERN.exec(name);
  if (m === null) return undefined;
  const hidden = m[1].split(',').map(Number);
  if (hidden.some((w) => w < 1 || w > 1 << 16))
    throw new Error(`model '${name}': hidden widths must be between 1 and 65536 (${MLP_FAMILY})`);
  const dropout = m[2] === undefined ? 0 : Number(m[2]);
  if (!(dropout >= 0 && dropout < 1)) throw new Error(`model '${name}': dropout must be in [0, 1), got ${m[2]} (${MLP_FAMILY})`);
  return {
    name,
    description: `fully connected input-${hidden.join('-')}-classes with ReLU${dropout > 0 ? `, dropout ${dropout} after each hidden layer` : ''}`,
    accepts: () => true,
    build: (s) => applyPaperInit(new BaseMLP({ inFeatures: features(s), hidden, numClasses: s.classes, dropout })),
    init: 'paper',
  };
}

/** The zoo entry for a model name (a fixed name or a member of the mlp:... family), or undefined. */
export function findModel(name: string): ModelEntry | undefined {
  if (name.startsWith('mlp:')) return mlpEntry(name);
  return MODELS.find((m) => m.name === name);
}

/** Whether a name is a buildable model (a zoo name or a well-formed mlp:... name). */
export function isModelName(name: string): boolean {
  try {
    return findModel(name) !== undefined;
  } catch {
    return false;
  }
}

/** The fixed zoo names, then the parametric MLP family's pattern (for help texts and errors). */
export function modelNames(): string[] {
  return [...MODELS.map((m) => m.name), MLP_FAMILY];
}

/** Build a model by name for an input spec, with a clear error for unknown names or shapes. */
export function buildModel(name: string, spec: InputSpec): Module {
  const e = findModel(name);
  if (e === undefined) {
    const hint = name.startsWith('mlp') ? ` (an MLP is written ${MLP_FAMILY}, e.g. mlp:1024,512:dropout=0.2)` : '';
    throw new Error(`unknown model '${name}': choose one of ${modelNames().join(', ')}${hint}`);
  }
  if (!e.accepts(spec)) {
    throw new Error(`model '${name}' does not take ${spec.channels}x${spec.height}x${spec.width} inputs (${e.description})`);
  }
  return e.build(spec);
}
