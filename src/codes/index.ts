// Every code family registers itself on import; import this module to get them all.
export * from './code.js';
export * from './registry.js';
export * from './computation.js';
export * from './replication.js';
