// The data layer: dataset registry and loaders, file formats, verified downloads, splits,
// augmentation and the k-group sampler.
export * from './errors.js';
export * from './paths.js';
export * from './rng.js';
export * from './checksum.js';
export * from './download.js';
export * from './tar.js';
export * from './idx.js';
export * from './cifar-binary.js';
export * from './cifar.js';
export * from './mnist-family.js';
export * from './split.js';
export * from './augment.js';
export * from './group-sampler.js';
export * from './synthetic.js';
export * from './registry.js';
