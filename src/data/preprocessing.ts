// What a model expects its inputs to be: how raw images become its input tensor. Recorded in
// checkpoints (`preprocessing` in the metadata of base and parity checkpoints) and published in
// a served model's V2 metadata, so a client knows what to send.
// (no import of the dataset registry: the serving main thread, which never loads libtorch, uses
// this; test/data/own-data.test.ts checks the table against the registry's normalisations)

/** The zoo datasets' normalisations (src/data/README.md): [channels, H, W, mean, std]. */
const ZOO: Record<string, [number, number, number, number[], number[]]> = {
  mnist: [1, 28, 28, [0.1307], [0.3081]],
  'fashion-mnist': [1, 28, 28, [0.286], [0.353]],
  cifar10: [3, 32, 32, [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.201]],
  cifar100: [3, 32, 32, [0.4914, 0.4822, 0.4465], [0.2023, 0.1994, 0.201]],
};

export interface Preprocessing {
  /** the image size fed to the model, [H, W] */
  size: [number, number];
  /** 1 (greyscale) or 3 (RGB) */
  channels: number;
  /** per-channel normalisation: x = (pixel * scale - mean[c]) / std[c] (one value: all channels) */
  mean: number[];
  std: number[];
  /** pixel scale before the normalisation (1/255: uint8 pixels to [0, 1]) */
  scale: number;
  /** how images of another size were resized (image folders: 'cover', a centre crop) */
  resize?: string;
  /** where this comes from: 'dataset <name>', 'image folder DIR', ... */
  source: string;
}

/** The normalisation the zoo's models of a dataset were trained with (src/data/README.md); null for other datasets. */
export function datasetPreprocessing(dataset: string): Preprocessing | null {
  const z = ZOO[dataset];
  if (z === undefined) return null;
  const [channels, h, w, mean, std] = z;
  return { size: [h, w], channels, mean: [...mean], std: [...std], scale: 1 / 255, source: `dataset ${dataset}` };
}

/**
 * A checkpoint's (or a base identity's) preprocessing: the one it records (`preprocessing`), else
 * the normalisation and input shape base checkpoints record, else its dataset's (checkpoints
 * written before it was recorded), else null (unknown: e.g. a tensors file of pre-normalised inputs).
 */
export function checkpointPreprocessing(
  meta: { preprocessing?: unknown; dataset?: unknown; input?: unknown; normalization?: unknown } | undefined,
): Preprocessing | null {
  const p = meta?.preprocessing;
  if (p !== undefined && p !== null && typeof p === 'object' && Array.isArray((p as Preprocessing).mean)) return p as Preprocessing;
  const n = meta?.normalization as { mean?: unknown; std?: unknown } | undefined;
  const i = meta?.input as { channels?: number; height?: number; width?: number } | undefined;
  if (Array.isArray(n?.mean) && Array.isArray(n?.std) && i?.channels !== undefined && i.height !== undefined && i.width !== undefined) {
    // base checkpoints of `coded train base` record their dataset's normalisation and input shape
    return {
      size: [i.height, i.width],
      channels: i.channels,
      mean: n.mean as number[],
      std: n.std as number[],
      scale: 1 / 255,
      source: `dataset ${String(meta?.dataset)}`,
    };
  }
  if (meta?.dataset === 'synthetic') {
    // generated data of any shape, nominal normalisation 0.5 / 0.25 (src/data/synthetic.ts)
    if (i?.channels === undefined || i.height === undefined || i.width === undefined) return null;
    return { size: [i.height, i.width], channels: i.channels, mean: [0.5], std: [0.25], scale: 1 / 255, source: 'dataset synthetic' };
  }
  return typeof meta?.dataset === 'string' ? datasetPreprocessing(meta.dataset) : null;
}

/** The V2 metadata parameter `preprocessing`: this record as a JSON string, or 'unknown'. */
export function preprocessingParameter(p: Preprocessing | null): string {
  return p === null ? 'unknown' : JSON.stringify(p);
}

/** One line for logs and docs: '3x32x32, (pixel/255 - (0.49, 0.48, 0.45)) / (0.2, 0.2, 0.2)'. */
export function describePreprocessing(p: Preprocessing | null): string {
  if (p === null) return 'unknown (inputs as the model was trained on them)';
  const v = (a: number[]) => (a.length === 1 ? String(a[0]) : `(${a.join(', ')})`);
  return `${p.channels}x${p.size[0]}x${p.size[1]}, (pixel${p.scale === 1 / 255 ? '/255' : ` * ${p.scale}`} - ${v(p.mean)}) / ${v(p.std)} [${p.source}]`;
}
