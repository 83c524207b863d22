// Code specs on the command line: "FAMILY:k=K,n=N[,key=value...]" (n or r), e.g.
// "berrut:k=2,n=4", "letcc:k=3,n=5,lambdaDec=0.001", "bspline:k=2,r=2". Values that read as
// numbers become numbers. Only the training-free families (their workers run the unchanged base
// model F and nothing is learned) can be built from a spec alone; trained families come from
// their checkpoints.
import type { CodeConfig } from './code.js';

export const TRAINING_FREE_FAMILIES = ['berrut', 'letcc', 'bspline', 'replication'] as const;
export type TrainingFreeFamily = (typeof TRAINING_FREE_FAMILIES)[number];

const TRAINED: Record<string, string> = {
  addition: 'parity models: train them with `coded train parity --code addition` and evaluate the checkpoint',
  linear: 'parity models: train them with `coded train parity --code linear` and evaluate the checkpoint',
  concat: 'parity models: train them with `coded train parity --code concat` and evaluate the checkpoint',
  learned: 'a trained encoder and decoder: `coded train learned`, then evaluate the checkpoint',
  lagrange: 'trained coefficient networks: `coded train polynomial`, then evaluate the checkpoint',
};

/** Parse a code spec into a code config; errors say what was wrong and show the form. */
export function parseCodeSpec(spec: string): CodeConfig {
  const form = 'FAMILY:k=K,n=N[,key=value...] (e.g. berrut:k=2,n=4, letcc:k=2,n=4,lambdaDec=0.001)';
  const colon = spec.indexOf(':');
  const family = (colon < 0 ? spec : spec.slice(0, colon)).trim();
  if (family === '') throw new RangeError(`code spec '${spec}': no family; expected ${form}`);
  if (TRAINED[family] !== undefined) throw new RangeError(`code spec '${spec}': ${family} codes need ${TRAINED[family]}`);
  if (!(TRAINING_FREE_FAMILIES as readonly string[]).includes(family)) {
    throw new RangeError(`code spec '${spec}': unknown training-free family '${family}' (known: ${TRAINING_FREE_FAMILIES.join(', ')})`);
  }
  const fields: Record<string, unknown> = {};
  const body = colon < 0 ? '' : spec.slice(colon + 1).trim();
  for (const part of body === '' ? [] : body.split(',')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new RangeError(`code spec '${spec}': '${part}' is not key=value; expected ${form}`);
    const key = part.slice(0, eq).trim();
    const raw = part.slice(eq + 1).trim();
    if (key in fields) throw new RangeError(`code spec '${spec}': ${key} given twice`);
    fields[key] = raw !== '' && Number.isFinite(Number(raw)) ? Number(raw) : raw;
  }
  const { k, n, r, ...rest } = fields;
  const kk = family === 'replication' && k === undefined ? 1 : k;
  if (!(typeof kk === 'number' && Number.isInteger(kk) && kk >= 1))
    throw new RangeError(`code spec '${spec}': k must be a positive integer (got ${JSON.stringify(kk)}); expected ${form}`);
  let rr: number;
  if (n !== undefined && r !== undefined) throw new RangeError(`code spec '${spec}': give n or r, not both`);
  if (n !== undefined) {
    if (!(typeof n === 'number' && Number.isInteger(n) && n >= kk))
      throw new RangeError(`code spec '${spec}': n must be an integer >= k = ${kk}, got ${JSON.stringify(n)}`);
    rr = n - kk;
  } else if (r !== undefined) {
    if (!(typeof r === 'number' && Number.isInteger(r) && r >= 0))
      throw new RangeError(`code spec '${spec}': r must be a non-negative integer, got ${JSON.stringify(r)}`);
    rr = r;
  } else {
    throw new RangeError(`code spec '${spec}': n (workers) is required; expected ${form}`);
  }
  return { family, k: kk, r: rr, ...rest };
}
