// Your own data as an image folder: DIR/<class>/<image>.png|.jpg|.jpeg, one subfolder per class
// (classes in sorted order of their folder names: label i is the i-th name). Every image is
// decoded with sharp, resized to HxW (cover, centre crop), converted to C = 1 (greyscale) or
// 3 (RGB) channels, and normalised as (pixel / 255 - mean[c]) / std[c].
import { readdirSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { Preprocessing } from './preprocessing.js';

export const IMAGE_EXTENSIONS = ['.png', '.jpg', '.jpeg'];

export interface ImageFolderOptions {
  /** per-example shape CxHxW (C 1 or 3); default: 3 x the first image's size */
  inputShape?: number[];
  /** per-channel mean and std of the normalisation (one value or C); default 0 and 1 (pixel / 255) */
  mean?: number[];
  std?: number[];
}

export interface ImageFolderData {
  /** [N, C, H, W] float32, normalised */
  inputs: Float32Array;
  /** [N] class indices */
  labels: Int32Array;
  shape: [number, number, number, number];
  classes: string[];
  preprocessing: Preprocessing;
}

type Sharp = typeof import('sharp').default;

/** sharp, loaded when an image folder is read (a native package: everything else works without it). */
async function loadSharp(): Promise<Sharp> {
  try {
    return (await import('sharp')).default;
  } catch (e) {
    throw new Error(
      `reading an image folder needs the package 'sharp', which did not load (${(e as Error).message}); install the dependencies (npm install) on a platform sharp supports, or pass a tensors file instead`,
    );
  }
}

const HOW = 'an image folder: DIR/<class name>/<image>.png|.jpg|.jpeg, one subfolder per class';

/** Read an image folder; errors name the folder or image and what to do. */
export async function loadImageFolder(dir: string, o: ImageFolderOptions = {}): Promise<ImageFolderData> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new Error(`${dir}: not a folder (expected ${HOW})`);
  const classes = readdirSync(dir)
    .filter((d) => !d.startsWith('.') && statSync(join(dir, d)).isDirectory())
    .sort();
  if (classes.length === 0) throw new Error(`${dir}: no class subfolders (expected ${HOW})`);
  const files: { path: string; label: number }[] = [];
  classes.forEach((c, label) => {
    const imgs = readdirSync(join(dir, c))
      .filter((f) => IMAGE_EXTENSIONS.some((e) => f.toLowerCase().endsWith(e)))
      .sort();
    if (imgs.length === 0)
      throw new Error(`${join(dir, c)}: class folder '${c}' has no PNG or JPEG images; add images or remove the folder (expected ${HOW})`);
    for (const f of imgs) files.push({ path: join(dir, c, f), label });
  });
  const sharp = await loadSharp();
  let shape = o.inputShape;
  if (shape !== undefined && (shape.length !== 3 || (shape[0] !== 1 && shape[0] !== 3))) {
    throw new Error(`--input-shape ${shape.join('x')}: an image folder gives CxHxW inputs with C 1 (greyscale) or 3 (RGB)`);
  }
  if (shape === undefined) {
    const m = await sharp(files[0].path)
      .metadata()
      .catch((e: Error) => {
        throw new Error(`${files[0].path}: not a readable image (${e.message}); remove or replace it`);
      });
    shape = [3, m.height!, m.width!];
  }
  const [c, h, w] = shape;
  const mean = o.mean ?? [0];
  const std = o.std ?? [1];
  for (const [what, v] of [
    ['mean', mean],
    ['std', std],
  ] as const) {
    if (v.length !== 1 && v.length !== c) throw new Error(`--${what} has ${v.length} values for ${c} channels (give 1 or ${c})`);
  }
  if (std.some((s) => !(s > 0))) throw new Error(`--std values must be > 0, got ${std.join(',')}`);
  const per = c * h * w;
  const inputs = new Float32Array(files.length * per);
  const labels = new Int32Array(files.length);
  for (let n = 0; n < files.length; n++) {
    const { path, label } = files[n];
    let px: Buffer;
    try {
      let img = sharp(path).resize(w, h, { fit: 'cover' }).removeAlpha();
      img = c === 1 ? img.greyscale() : img.toColourspace('srgb');
      const { data, info } = await img.raw().toBuffer({ resolveWithObject: true });
      if (info.channels !== c) {
        // a greyscale image asked for 3 channels: replicate
        if (info.channels !== 1 || c !== 3) throw new Error(`${info.channels} channels after conversion`);
        px = Buffer.alloc(h * w * 3);
        for (let i = 0; i < h * w; i++) px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = data[i];
      } else {
        px = data;
      }
    } catch (e) {
      throw new Error(`${path}: not a readable image (${(e as Error).message}); remove or replace it`);
    }
    // HWC uint8 -> CHW normalised
    const base = n * per;
    for (let ch = 0; ch < c; ch++) {
      const m = mean.length === 1 ? mean[0] : mean[ch];
      const s = std.length === 1 ? std[0] : std[ch];
      for (let i = 0; i < h * w; i++) inputs[base + ch * h * w + i] = (px[i * c + ch] / 255 - m) / s;
    }
    labels[n] = label;
  }
  return {
    inputs,
    labels,
    shape: [files.length, c, h, w],
    classes,
    preprocessing: {
      size: [h, w],
      channels: c,
      mean: [...mean],
      std: [...std],
      scale: 1 / 255,
      resize: 'cover',
      source: `image folder ${dir}`,
    },
  };
}
