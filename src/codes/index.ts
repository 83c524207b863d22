// Every code family registers itself on import; import this module to get them all.
export * from './code.js';
export * from './registry.js';
export * from './computation.js';
export * from './replication.js';
export * from './learned.js';
export * from './linear.js';
export * from './addition.js';
export * from './concat.js';
export * from './interpolation.js';
export * from './berrut.js';
export * from './lagrange.js';
export * from './splines.js';
export * from './fitted-code.js';
export * from './letcc.js';
export * from './bspline.js';
export * from './spec.js';
