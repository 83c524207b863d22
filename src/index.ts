export * from './engine/index.js';
// forward passes on a worker thread (a Module there), for servers
export * from './serve/async-forward.js';
export * as nn from './nn/index.js';
export * as data from './data/index.js';
export * as models from './models/index.js';
