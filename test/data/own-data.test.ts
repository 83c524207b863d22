// Your own data (--data DIR|FILE): image folders (sharp), .npy/.npz tensors files, and the
// preprocessing recorded for them; bad input gets an error naming the file and what to do.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { zipSync } from 'fflate';
import { encodeNpy, parseNpy, parseNpz } from '../../src/data/npy.js';
import { loadOwnData } from '../../src/data/own-data.js';
import { checkpointPreprocessing, datasetPreprocessing } from '../../src/data/preprocessing.js';
import { DATASET_NAMES, datasetInfo } from '../../src/data/registry.js';

const tmpDir = (p: string) => mkdtempSync(join(tmpdir(), `coded-own-data-${p}-`));

/** The bytes numpy.save writes for float32 [2, 3] 0..5 (version 1.0, header padded to a multiple of 64). */
function numpyStyleNpy(): Uint8Array {
  const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  const padded = header + ' '.repeat(128 - 10 - header.length - 1) + '\n';
  const out = new Uint8Array(128 + 24);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0], 0);
  new DataView(out.buffer).setUint16(8, padded.length, true);
  out.set(new TextEncoder().encode(padded), 10);
  out.set(new Uint8Array(Float32Array.from([0, 1, 2, 3, 4, 5]).buffer), 128);
  return out;
}

test('.npy files as numpy writes them parse to their dtype, shape and values; encodeNpy round-trips', () => {
  const a = parseNpy(numpyStyleNpy(), 'x.npy');
  assert.equal(a.dtype, 'float32');
  assert.deepEqual(a.shape, [2, 3]);
  assert.deepEqual([...(a.data as Float32Array)], [0, 1, 2, 3, 4, 5]);
  for (const arr of [
    { dtype: 'int64' as const, shape: [4], data: BigInt64Array.from([1n, 0n, 3n, 2n]) },
    { dtype: 'float64' as const, shape: [1, 2, 2], data: Float64Array.from([0.5, -1, 2, 3]) },
    { dtype: 'uint8' as const, shape: [3], data: Uint8Array.from([7, 8, 9]) },
  ]) {
    const b = encodeNpy(arr);
    assert.equal((b.length - arr.data.byteLength) % 64, 0, 'header padded to 64 bytes');
    const back = parseNpy(b, 'y.npy');
    assert.equal(back.dtype, arr.dtype);
    assert.deepEqual(back.shape, arr.shape);
    assert.deepEqual([...back.data], [...arr.data]);
  }
});

test('a .npz with inputs and labels, stored or deflated, and a .npy of inputs load as tensors files', async () => {
  const dir = tmpDir('npz');
  try {
    const x = Float32Array.from({ length: 6 * 2 * 2 * 2 }, (_, i) => i / 10);
    const inputs = encodeNpy({ dtype: 'float32', shape: [6, 2, 2, 2], data: x });
    const labels = encodeNpy({ dtype: 'int64', shape: [6], data: BigInt64Array.from([0n, 1n, 2n, 0n, 1n, 2n]) });
    for (const level of [0, 6] as const) {
      const f = join(dir, `d${level}.npz`);
      writeFileSync(f, zipSync({ 'inputs.npy': inputs, 'labels.npy': labels }, { level }));
      const d = await loadOwnData(f);
      assert.deepEqual(d.inputs.shape, [6, 2, 2, 2]);
      assert.deepEqual([...d.inputs.dataFloat32()], [...x]);
      assert.equal(d.labels!.dtype, 'int64');
      assert.deepEqual(d.labels!.toList(), [0, 1, 2, 0, 1, 2]);
      assert.equal(d.preprocessing, null);
      d.inputs.dispose();
      d.labels!.dispose();
    }
    // int32 labels and float64 inputs are converted
    const f64 = join(dir, 'f64.npz');
    writeFileSync(
      f64,
      zipSync({
        'inputs.npy': encodeNpy({ dtype: 'float64', shape: [2, 3], data: Float64Array.from([1, 2, 3, 4, 5, 6]) }),
        'labels.npy': encodeNpy({ dtype: 'int32', shape: [2], data: Int32Array.from([1, 0]) }),
      }),
    );
    const d2 = await loadOwnData(f64);
    assert.equal(d2.inputs.dtype, 'float32');
    assert.deepEqual(d2.labels!.toList(), [1, 0]);
    d2.inputs.dispose();
    d2.labels!.dispose();
    const npy = join(dir, 'x.npy');
    writeFileSync(npy, inputs);
    const d3 = await loadOwnData(npy);
    assert.deepEqual(d3.inputs.shape, [6, 2, 2, 2]);
    assert.equal(d3.labels, null);
    d3.inputs.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad tensors files: wrong dtype, missing inputs, mislabelled, not an archive: errors name the file and what to do', async () => {
  const dir = tmpDir('bad');
  try {
    const big = join(dir, 'big-endian.npy');
    const b = numpyStyleNpy();
    b.set(new TextEncoder().encode("{'descr': '>f4'"), 10);
    writeFileSync(big, b);
    await assert.rejects(
      loadOwnData(big),
      (e: Error) => e.message.includes(big) && /dtype '>f4' is not supported/.test(e.message) && /astype\('<f4'\)/.test(e.message),
    );
    const ints = join(dir, 'ints.npz');
    writeFileSync(ints, zipSync({ 'inputs.npy': encodeNpy({ dtype: 'uint8', shape: [2, 3], data: new Uint8Array(6) }) }));
    await assert.rejects(
      loadOwnData(ints),
      (e: Error) => e.message.includes(ints) && /'inputs' is uint8; it must be float32/.test(e.message),
    );
    const noInputs = join(dir, 'no-inputs.npz');
    writeFileSync(noInputs, zipSync({ 'x.npy': encodeNpy({ dtype: 'float32', shape: [2, 3], data: new Float32Array(6) }) }));
    await assert.rejects(
      loadOwnData(noInputs),
      (e: Error) =>
        e.message.includes(noInputs) && /no array named 'inputs' \(it has x\)/.test(e.message) && /numpy\.savez/.test(e.message),
    );
    const badLabels = join(dir, 'bad-labels.npz');
    writeFileSync(
      badLabels,
      zipSync({
        'inputs.npy': encodeNpy({ dtype: 'float32', shape: [2, 3], data: new Float32Array(6) }),
        'labels.npy': encodeNpy({ dtype: 'float32', shape: [2], data: new Float32Array(2) }),
      }),
    );
    await assert.rejects(
      loadOwnData(badLabels),
      (e: Error) => e.message.includes(badLabels) && /'labels' is float32 \[2\]; it must be integer \[2\]/.test(e.message),
    );
    const notZip = join(dir, 'not-zip.npz');
    writeFileSync(notZip, 'hello');
    await assert.rejects(loadOwnData(notZip), (e: Error) => e.message.includes(notZip) && /not a readable \.npz/.test(e.message));
    const truncated = join(dir, 'truncated.npy');
    writeFileSync(truncated, numpyStyleNpy().subarray(0, 140));
    await assert.rejects(loadOwnData(truncated), (e: Error) => e.message.includes(truncated) && /truncated/.test(e.message));
    await assert.rejects(loadOwnData(join(dir, 'missing.npz')), /missing\.npz: no such file or folder/);
    const csv = join(dir, 'data.csv');
    writeFileSync(csv, '1,2');
    await assert.rejects(loadOwnData(csv), (e: Error) => e.message.includes(csv) && /unknown data file kind/.test(e.message));
    // inside an archive the error names the member
    assert.throws(() => parseNpz(zipSync({ 'inputs.npy': new Uint8Array(20) }), 'a.npz'), /a\.npz:inputs\.npy: not a \.npy file/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

const solid = (w: number, h: number, rgb: [number, number, number]) =>
  sharp({ create: { width: w, height: h, channels: 3, background: { r: rgb[0], g: rgb[1], b: rgb[2] } } });

test('an image folder (PNG and JPEG, one subfolder per class) is decoded, resized, normalised and labelled by sorted class name', async () => {
  const dir = tmpDir('images');
  try {
    mkdirSync(join(dir, 'red'));
    mkdirSync(join(dir, 'blue'));
    await solid(8, 6, [255, 0, 0])
      .png()
      .toFile(join(dir, 'red', 'a.png'));
    await solid(5, 5, [255, 0, 0])
      .png()
      .toFile(join(dir, 'red', 'b.png'));
    await solid(8, 6, [0, 0, 255])
      .jpeg({ quality: 100 })
      .toFile(join(dir, 'blue', 'c.jpg'));
    writeFileSync(join(dir, 'blue', 'notes.txt'), 'not an image: ignored');
    const d = await loadOwnData(dir, { inputShape: [3, 4, 4], mean: [0.5], std: [0.5] });
    assert.deepEqual(d.classNames, ['blue', 'red']);
    assert.deepEqual(d.inputs.shape, [3, 3, 4, 4]);
    assert.deepEqual(d.labels!.toList(), [0, 1, 1]);
    const x = d.inputs.dataFloat32();
    const px = (n: number, c: number) => x[n * 48 + c * 16 + 5];
    // (255/255 - 0.5) / 0.5 = 1 and (0 - 0.5) / 0.5 = -1; JPEG is lossy (within 2 levels)
    assert.ok(Math.abs(px(0, 2) - 1) < 0.02 && Math.abs(px(0, 0) + 1) < 0.02, `blue jpeg: ${px(0, 0)}, ${px(0, 2)}`);
    assert.equal(px(1, 0), 1);
    assert.equal(px(2, 1), -1);
    assert.deepEqual(d.preprocessing, {
      size: [4, 4],
      channels: 3,
      mean: [0.5],
      std: [0.5],
      scale: 1 / 255,
      resize: 'cover',
      source: `image folder ${dir}`,
    });
    d.inputs.dispose();
    d.labels!.dispose();
    // greyscale (C = 1) and the default size (the first image's)
    const g = await loadOwnData(dir, { inputShape: [1, 2, 2] });
    assert.deepEqual(g.inputs.shape, [3, 1, 2, 2]);
    assert.ok(g.inputs.dataFloat32().every((v) => v >= 0 && v <= 1));
    g.inputs.dispose();
    g.labels!.dispose();
    const full = await loadOwnData(dir);
    assert.deepEqual(full.inputs.shape, [3, 3, 6, 8]);
    full.inputs.dispose();
    full.labels!.dispose();
    await assert.rejects(loadOwnData(dir, { mean: [0.1, 0.2] }), /--mean has 2 values for 3 channels/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('bad image folders: an unreadable image, an empty class folder, no class folders: errors name the path and what to do', async () => {
  const dir = tmpDir('bad-images');
  try {
    await assert.rejects(
      loadOwnData(dir),
      (e: Error) => e.message.includes(dir) && /no class subfolders/.test(e.message) && /one subfolder per class/.test(e.message),
    );
    mkdirSync(join(dir, 'cat'));
    mkdirSync(join(dir, 'dog'));
    await solid(4, 4, [10, 20, 30])
      .png()
      .toFile(join(dir, 'cat', 'a.png'));
    await assert.rejects(
      loadOwnData(dir),
      (e: Error) =>
        e.message.includes(join(dir, 'dog')) &&
        /class folder 'dog' has no PNG or JPEG images; add images or remove the folder/.test(e.message),
    );
    const bad = join(dir, 'dog', 'broken.jpg');
    writeFileSync(bad, 'this is not a JPEG');
    await assert.rejects(
      loadOwnData(dir, { inputShape: [3, 4, 4] }),
      (e: Error) => e.message.includes(bad) && /not a readable image .*remove or replace it/.test(e.message),
    );
    rmSync(bad);
    await solid(4, 4, [10, 20, 30])
      .png()
      .toFile(join(dir, 'dog', 'b.png'));
    await assert.rejects(loadOwnData(dir, { inputShape: [2, 4, 4] }), /C 1 \(greyscale\) or 3 \(RGB\)/);
    await assert.rejects(loadOwnData(join(dir, 'cat', 'a.png')), /unknown data file kind/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("preprocessing: the zoo table matches the datasets' normalisations; checkpoints without a record fall back to their normalisation or dataset, else unknown", () => {
  for (const name of DATASET_NAMES) {
    if (name === 'synthetic') continue;
    const i = datasetInfo(name);
    const p = datasetPreprocessing(name)!;
    assert.deepEqual(
      { mean: p.mean, std: p.std, size: p.size, channels: p.channels },
      { mean: [...i.normalization.mean], std: [...i.normalization.std], size: [i.height, i.width], channels: i.channels },
      name,
    );
  }
  const recorded = { size: [4, 4] as [number, number], channels: 3, mean: [0.5], std: [0.5], scale: 1 / 255, source: 'image folder x' };
  assert.deepEqual(checkpointPreprocessing({ preprocessing: recorded, dataset: 'cifar10' }), recorded);
  const base = checkpointPreprocessing({
    dataset: 'fashion-mnist',
    normalization: { mean: [0.286], std: [0.353] },
    input: { channels: 1, height: 28, width: 28 },
  });
  assert.deepEqual(base, { size: [28, 28], channels: 1, mean: [0.286], std: [0.353], scale: 1 / 255, source: 'dataset fashion-mnist' });
  assert.deepEqual(checkpointPreprocessing({ dataset: 'cifar10' })?.mean, [0.4914, 0.4822, 0.4465]);
  assert.deepEqual(checkpointPreprocessing({ dataset: 'synthetic', input: { channels: 2, height: 8, width: 8 } })?.size, [8, 8]);
  assert.equal(checkpointPreprocessing({ dataset: 'data.safetensors' }), null);
  assert.equal(checkpointPreprocessing(undefined), null);
});
