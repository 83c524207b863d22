// Your own data for a model of your own (`--data DIR|FILE`): one loader for every form.
//   DIR                     an image folder (image-folder.ts): one subfolder per class, PNG/JPEG,
//                           resized to --input-shape's HxW and normalised with --mean/--std;
//   FILE.safetensors        tensors `inputs` [N, ...] float32 and optional `labels` [N];
//   FILE.npz                numpy.savez(FILE, inputs=x, labels=y) (labels optional);
//   FILE.npy                numpy.save(FILE, x): inputs only (labels: F's answers).
// Inputs of tensors files are used as they are (already normalised as the model expects).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { tensor, type Tensor } from '../engine/tensor.js';
import { loadImageFolder, type ImageFolderOptions } from './image-folder.js';
import { parseNpy, parseNpz, type NpyArray } from './npy.js';
import type { Preprocessing } from './preprocessing.js';
import { loadTensorsFile, type TensorsFile } from './tensors-file.js';

export interface OwnData extends TensorsFile {
  /** class names (an image folder's subfolders), or null */
  classNames: string[] | null;
  /** how raw images became `inputs` (image folders), or null (tensors files: as given) */
  preprocessing: Preprocessing | null;
}

export const OWN_DATA_HELP =
  'an image folder (DIR/<class>/<image>.png|.jpg), a safetensors or .npz file with `inputs` [N, ...] (float32) and optional `labels` [N] (integers), or a .npy file of inputs';

/** Whether `path` names a data form this loader reads (by kind; the file is not read). */
export function isOwnDataPath(path: string): boolean {
  return /\.(safetensors|npy|npz)$/i.test(path) || (existsSync(path) && statSync(path).isDirectory());
}

function npyTensors(path: string, arrays: Map<string, NpyArray>): TensorsFile {
  const how = `(expected ${OWN_DATA_HELP}; e.g. numpy.savez(PATH, inputs=x.astype('float32'), labels=y))`;
  const x = arrays.get('inputs');
  if (x === undefined) throw new Error(`${path}: no array named 'inputs' (it has ${[...arrays.keys()].join(', ') || 'none'}) ${how}`);
  if (x.shape.length < 2) throw new Error(`${path}: 'inputs' is [${x.shape.join(', ')}]; it needs a batch dimension ${how}`);
  if (x.dtype !== 'float32' && x.dtype !== 'float64')
    throw new Error(`${path}: 'inputs' is ${x.dtype}; it must be float32 (or float64), normalised as the model expects ${how}`);
  const y = arrays.get('labels');
  if (
    y !== undefined &&
    (!['int64', 'int32', 'int16', 'int8', 'uint8'].includes(y.dtype) || y.shape.length !== 1 || y.shape[0] !== x.shape[0])
  ) {
    throw new Error(`${path}: 'labels' is ${y.dtype} [${y.shape.join(', ')}]; it must be integer [${x.shape[0]}] ${how}`);
  }
  const inputs = tensor(x.dtype === 'float32' ? (x.data as Float32Array) : Float32Array.from(x.data as Float64Array), x.shape, {
    dtype: 'float32',
  });
  let labels: Tensor | null = null;
  if (y !== undefined) {
    const v = y.dtype === 'int64' ? (y.data as BigInt64Array) : BigInt64Array.from(y.data as Int32Array, (n) => BigInt(n));
    labels = tensor(v, y.shape, { dtype: 'int64' });
  }
  return { path, inputs, labels };
}

/**
 * Load `--data DIR|FILE`. `o` applies to image folders (size, channels, normalisation); a
 * tensors file's inputs are taken as they are.
 */
export async function loadOwnData(path: string, o: ImageFolderOptions = {}): Promise<OwnData> {
  if (!existsSync(path)) throw new Error(`${path}: no such file or folder (expected ${OWN_DATA_HELP})`);
  if (statSync(path).isDirectory()) {
    const d = await loadImageFolder(path, o);
    return {
      path,
      inputs: tensor(d.inputs, d.shape, { dtype: 'float32' }),
      labels: tensor(
        BigInt64Array.from(d.labels, (n) => BigInt(n)),
        [d.labels.length],
        { dtype: 'int64' },
      ),
      classNames: d.classes,
      preprocessing: d.preprocessing,
    };
  }
  if (o.mean !== undefined || o.std !== undefined)
    throw new Error(
      `--mean/--std normalise an image folder; ${path} is a tensors file whose inputs are used as they are (normalise them before saving)`,
    );
  if (/\.npz$/i.test(path)) return { ...npyTensors(path, parseNpz(readFileSync(path), path)), classNames: null, preprocessing: null };
  if (/\.npy$/i.test(path))
    return { ...npyTensors(path, new Map([['inputs', parseNpy(readFileSync(path), path)]])), classNames: null, preprocessing: null };
  if (/\.safetensors$/i.test(path)) return { ...loadTensorsFile(path), classNames: null, preprocessing: null };
  throw new Error(`${path}: unknown data file kind (expected ${OWN_DATA_HELP})`);
}

/** Image-folder options that reproduce a recorded preprocessing (a parity checkpoint's base identity). */
export function imageOptionsOf(
  base: { preprocessing?: Preprocessing; input?: { channels: number; height: number; width: number } },
  dataPath: string,
): ImageFolderOptions {
  if (!existsSync(dataPath) || !statSync(dataPath).isDirectory()) return {};
  const p = base.preprocessing;
  const shape = base.input === undefined ? undefined : [base.input.channels, base.input.height, base.input.width];
  if (p === undefined || !p.source.startsWith('image folder')) return shape === undefined ? {} : { inputShape: shape };
  return { inputShape: [p.channels, ...p.size], mean: p.mean, std: p.std };
}
