// Code families by name: each registers how to build a code from its JSON config, so a code
// saved by training (config + module weights in one safetensors checkpoint) is rebuilt
// identically by evaluation and by the server.
import type { Code, CodeConfig } from './code.js';
import { codeFamilies, familyFactory } from './family-table.js';
import './families.js';

export { registerCodeFamily, codeFamilies, type CodeFactory } from './family-table.js';

/** Build a code from its config (modules freshly initialised; loadCodeCheckpoint in checkpoint.ts loads weights). */
export function codeFromConfig(config: CodeConfig): Code {
  const f = familyFactory(config.family);
  if (f === undefined) throw new Error(`unknown code family '${config.family}' (known: ${codeFamilies().join(', ')})`);
  if (!Number.isInteger(config.k) || config.k < 1) throw new RangeError(`code config: k must be a positive integer, got ${config.k}`);
  if (!Number.isInteger(config.r) || config.r < 0) throw new RangeError(`code config: r must be a non-negative integer, got ${config.r}`);
  return f(config);
}

// saving and loading live with the one code-checkpoint loader
export { saveCode, type CodeCheckpointMeta } from './checkpoint.js';
