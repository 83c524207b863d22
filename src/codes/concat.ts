// The image-concatenation parity encoder: each of the k images of a group is downsampled
// ('area' interpolation) and the k thumbnails are tiled into one image of the original size,
// on a near-square grid (k = 2: side by side, each squeezed to half the width; k = 4: 2 x 2;
// any k: ceil(sqrt(k)) columns, as many rows as needed; unused cells and leftover pixel
// rows/columns are 0, the normalised mean). Channels are tiled separately, channel c of the
// parity image comes only from channel c of the k images. The decoder is the addition
// code's subtraction: the parity model is trained towards the sum of the k base outputs.
import type { Tensor } from '../engine/tensor.js';
import { zeros } from '../engine/tensor.js';
import { tidy } from '../engine/scope.js';
import { cat, interpolate, pad } from '../engine/ops.js';
import { registerCodeFamily } from './family-table.js';
import type { CodeConfig } from './code.js';
import { LinearCode } from './linear.js';

export interface ConcatLayout {
  rows: number;
  cols: number;
  tileHeight: number;
  tileWidth: number;
  /** top-left corner of image i's tile */
  positions: { top: number; left: number }[];
}

export function concatLayout(k: number, height: number, width: number): ConcatLayout {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`concat code: k must be a positive integer, got ${k}`);
  const cols = Math.ceil(Math.sqrt(k));
  const rows = Math.ceil(k / cols);
  const tileHeight = Math.floor(height / rows);
  const tileWidth = Math.floor(width / cols);
  if (tileHeight < 1 || tileWidth < 1)
    throw new RangeError(`concat code: ${height}x${width} images are too small to tile ${k} of them (${rows} x ${cols} grid)`);
  const positions = Array.from({ length: k }, (_, i) => ({ top: Math.floor(i / cols) * tileHeight, left: (i % cols) * tileWidth }));
  return { rows, cols, tileHeight, tileWidth, positions };
}

export class ConcatCode extends LinearCode {
  override readonly family: string = 'concat';
  constructor(k: number) {
    super({ k, r: 1, coefficients: [Array<number>(k).fill(1)] });
    if (k < 2) throw new RangeError(`concat code: k must be >= 2, got ${k}`);
  }

  /** Tile the group's images x [G, k, C, H, W] (or [G, k, H, W]) into one parity image [G, C, H, W]. */
  protected override parityInput(x: Tensor, j: number): Tensor {
    if (j !== 0) throw new RangeError(`concat code has one parity, asked for parity ${j}`);
    const s = x.shape;
    if (s.length !== 4 && s.length !== 5)
      throw new RangeError(`concat code: expected images [G, ${this.k}, C, H, W] or [G, ${this.k}, H, W], got [${s.join(', ')}]`);
    return tidy(() => {
      const G = s[0];
      const H = s[s.length - 2];
      const W = s[s.length - 1];
      const imgs = s.length === 5 ? x : x.unsqueeze(2); // [G, k, C, H, W]
      const C = imgs.shape[2];
      const L = concatLayout(this.k, H, W);
      // interpolate works on [N, C, H, W]: each image's channels stay its own channels
      const small = interpolate(imgs.reshape([G * this.k, C, H, W]), [L.tileHeight, L.tileWidth], { mode: 'area' }).reshape([
        G,
        this.k,
        C,
        L.tileHeight,
        L.tileWidth,
      ]);
      const blank = zeros([G, C, L.tileHeight, L.tileWidth], { dtype: x.dtype, device: x.device });
      const rowImgs: Tensor[] = [];
      for (let r = 0; r < L.rows; r++) {
        const tiles: Tensor[] = [];
        for (let c = 0; c < L.cols; c++) {
          const i = r * L.cols + c;
          tiles.push(i < this.k ? small.select(1, i) : blank);
        }
        rowImgs.push(cat(tiles, 3));
      }
      let img = cat(rowImgs, 2);
      const padRight = W - L.cols * L.tileWidth;
      const padBottom = H - L.rows * L.tileHeight;
      if (padRight > 0 || padBottom > 0) img = pad(img, [0, padRight, 0, padBottom]);
      return s.length === 5 ? img.contiguous() : img.squeeze(1);
    });
  }

  /** The parity target is the sum of the k base outputs, whatever the encoder. */
  override parityTarget(baseOutputs: Tensor, j: number): Tensor {
    if (j !== 0) throw new RangeError(`concat code has one parity, asked for parity ${j}`);
    return baseOutputs.sum(1);
  }

  override config(): CodeConfig {
    return { family: this.family, k: this.k, r: 1 };
  }
}

registerCodeFamily('concat', (c) => {
  if (c.r !== 1) throw new RangeError(`concat codes have r = 1, got r = ${c.r}`);
  return new ConcatCode(c.k);
});
