// An ONNX file as a forward-only model source, run by ONNX Runtime (npm onnxruntime-node,
// CPU execution provider). ONNX files carry their input's shape and dtype: a symbolic first
// dimension is the batch; other symbolic dimensions need --input-shape. One float32 input,
// one output (the first, when the graph has several). No gradients: for serving and for
// computing parity-training targets.
import { existsSync, statSync } from 'node:fs';
import type { InferenceSession, Tensor as OrtTensor } from 'onnxruntime-node';

export class OnnxModelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'OnnxModelError';
  }
}

const HOW_TO_EXPORT =
  'export it with torch.onnx.export(model.eval(), example_input, PATH, input_names=["input"], dynamic_axes={"input": {0: "batch"}})';

type Ort = typeof import('onnxruntime-node');
let ortModule: Ort | null = null;
async function ort(): Promise<Ort> {
  if (ortModule !== null) return ortModule;
  try {
    ortModule = await import('onnxruntime-node');
  } catch (e) {
    throw new OnnxModelError(
      `ONNX models need the npm package onnxruntime-node, which failed to load (${(e as Error).message.split('\n')[0]}); install it with \`npm install onnxruntime-node\` (ONNXRUNTIME_NODE_INSTALL=skip skips its optional CUDA download)`,
    );
  }
  return ortModule;
}

export interface OnnxLoadOptions {
  /** intra-op threads (default 1) */
  threads?: number;
  /** per-example input shape, needed when the file's non-batch dimensions are symbolic; checked against the file otherwise */
  inputShape?: number[];
}

export class OnnxModel {
  private constructor(
    readonly path: string,
    private session: InferenceSession | null,
    private readonly ortLib: Ort,
    readonly inputName: string,
    readonly outputName: string,
    /** per example, without the batch dimension */
    readonly inputShape: number[],
    /** per example, without the batch dimension; null until known (symbolic in the file) */
    public outputShape: number[] | null,
  ) {}

  static async load(path: string, o: OnnxLoadOptions = {}): Promise<OnnxModel> {
    if (!existsSync(path) || !statSync(path).isFile())
      throw new OnnxModelError(`${path}: no such file (an ONNX model file is expected; ${HOW_TO_EXPORT})`);
    const lib = await ort();
    let session: InferenceSession;
    try {
      session = await lib.InferenceSession.create(path, {
        intraOpNumThreads: o.threads ?? 1,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
      });
    } catch (e) {
      throw new OnnxModelError(
        `${path} is not an ONNX model ONNX Runtime can load (${(e as Error).message.split('\n')[0]}); check that the file is complete, or re-${HOW_TO_EXPORT}`,
      );
    }
    const fail = async (why: string): Promise<never> => {
      await session.release();
      throw new OnnxModelError(`${path}: ${why}`);
    };
    if (session.inputNames.length !== 1)
      await fail(`the model has ${session.inputNames.length} inputs (${session.inputNames.join(', ')}); a served model takes one input`);
    const inMeta = session.inputMetadata[0] as { isTensor: boolean; type?: string; shape?: (number | string)[] };
    if (!inMeta.isTensor || inMeta.type !== 'float32')
      await fail(
        `its input '${session.inputNames[0]}' is ${inMeta.isTensor ? `a ${inMeta.type} tensor` : 'not a tensor'}; a served model takes one float32 tensor`,
      );
    const fileShape = inMeta.shape ?? [];
    const perExample = fileShape.slice(1);
    const symbolic = perExample.some((d) => typeof d !== 'number' || d < 0);
    let inputShape: number[];
    if (o.inputShape !== undefined) {
      const compatible =
        o.inputShape.length === perExample.length && perExample.every((d, i) => typeof d !== 'number' || d < 0 || d === o.inputShape![i]);
      if (!compatible)
        await fail(
          `--input-shape ${o.inputShape.join('x')} does not match the file's input [${fileShape.join(', ')}] (first dimension: batch); leave out --input-shape for ONNX files with a fixed shape`,
        );
      inputShape = o.inputShape;
    } else {
      if (fileShape.length === 0 || symbolic)
        await fail(
          `its input shape [${fileShape.join(', ')}] has symbolic dimensions besides the batch; pass --input-shape (per example, e.g. 3x32x32)`,
        );
      inputShape = perExample as number[];
    }
    const outMeta = session.outputMetadata[0] as { isTensor: boolean; shape?: (number | string)[] };
    const outShape = outMeta.shape?.slice(1);
    const outputShape = outShape?.every((d) => typeof d === 'number' && d >= 0) ? (outShape as number[]) : null;
    return new OnnxModel(path, session, lib, session.inputNames[0], session.outputNames[0], inputShape, outputShape);
  }

  /** forward a batch [batch, ...inputShape] -> { data, shape } of the first output. */
  async run(data: Float32Array, batch: number): Promise<{ data: Float32Array; shape: number[] }> {
    if (this.session === null) throw new OnnxModelError(`${this.path}: used after close()`);
    const per = this.inputShape.reduce((a, b) => a * b, 1);
    if (data.length !== batch * per)
      throw new OnnxModelError(
        `${this.path}: input has ${data.length} floats, expected ${batch} x ${this.inputShape.join('x')} = ${batch * per}`,
      );
    const x = new this.ortLib.Tensor('float32', data, [batch, ...this.inputShape]);
    let out: Record<string, OrtTensor>;
    try {
      out = await this.session.run({ [this.inputName]: x });
    } catch (e) {
      throw new OnnxModelError(
        `${this.path}: forward failed on input [${[batch, ...this.inputShape].join(', ')}]: ${(e as Error).message.split('\n')[0]}`,
      );
    }
    const y = out[this.outputName];
    if (y.type !== 'float32')
      throw new OnnxModelError(`${this.path}: output '${this.outputName}' is ${y.type}; a served model returns float32`);
    const shape = y.dims.map(Number);
    if (this.outputShape === null) this.outputShape = shape.slice(1);
    for (const t of Object.values(out)) if (t !== y) t.dispose();
    return { data: y.data as Float32Array, shape };
  }

  async close(): Promise<void> {
    const s = this.session;
    this.session = null;
    if (s !== null) await s.release();
  }
}
