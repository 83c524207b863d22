// What a code family's own worker functions take and return, read from a code config alone
// (no tensors, no libtorch): a model instance's main thread uses it to describe the worker it
// serves, and the frontend to name the side inputs it sends. Families whose workers are only
// the base model and parity models have none.

export interface WorkerSignature {
  /** WorkerFunction name and index ({ kind: 'worker', name, index }) */
  name: string;
  index: number;
  /** per-sample shape of the main input */
  input: number[];
  /** further inputs, in the order forwardInputs takes them after the main one */
  sideInputs: { name: string; shape: number[] }[];
  /** per-sample output size */
  outputs: number;
  description: string;
}

export function workerSignatures(config: { family: string } & Record<string, unknown>): WorkerSignature[] {
  if (config.family !== 'lagrange') return [];
  const input = config.input as number[];
  const classes = config.classes as number;
  const hs = config.worker === 'HS';
  const power = hs ? Number(config.power ?? 1) : 0;
  return [
    {
      name: 'H',
      index: 0,
      input: [...input],
      outputs: classes,
      sideInputs: hs ? Array.from({ length: power + 1 }, (_, p) => ({ name: `v${p}`, shape: [...input] })) : [],
      description: hs
        ? `Lagrange worker H_S (degree ${String(config.degree)}, power ${power}): encoded input plus coefficient maps v0..v${power}`
        : `Lagrange worker H_B (degree ${String(config.degree)}): a linear network on the encoded input`,
    },
  ];
}
