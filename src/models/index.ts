export * from './registry.js';
export * from './paper-init.js';
export * from './base-mlp.js';
export * from './logistic-regression.js';
export * from './lenet5.js';
export * from './vgg11.js';
export * from './resnet.js';
export * from './conv-encoder.js';
