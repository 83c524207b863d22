export * from './engine/index.js';
export * as nn from './nn/index.js';
export * as data from './data/index.js';
export * as models from './models/index.js';
