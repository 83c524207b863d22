export * from './module.js';
export * from './linear.js';
export * from './conv2d.js';
export * from './batchnorm2d.js';
export * from './layers.js';
export * from './sequential.js';
export * from './safetensors.js';
export * from './checkpoint.js';
