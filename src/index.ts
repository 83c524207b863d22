export * from './engine/index.js';
export * as nn from './nn/index.js';
