// The learning-rate schedules every trainer offers: constant, or a cosine decay from lr to 0
// over the whole run, evaluated per batch.

export type LrSchedule = 'constant' | 'cosine';

/** lr at batch b (0-based) of epoch `epoch` (1-based), for a run of `epochs` x `batchesPerEpoch` steps. */
export function learningRate(
  o: { schedule?: LrSchedule; lr: number; epochs: number },
  batchesPerEpoch: number,
): (epoch: number, b: number) => number {
  if (o.schedule !== 'cosine') return () => o.lr;
  const total = o.epochs * batchesPerEpoch;
  return (epoch, b) => 0.5 * o.lr * (1 + Math.cos((Math.PI * ((epoch - 1) * batchesPerEpoch + b)) / total));
}
