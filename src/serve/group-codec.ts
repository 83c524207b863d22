// The serving policy's view of a code: one coding group at a time, plain Float32Arrays in and
// out. `tensorCodec` wraps a Code from src/codes (the implementation training and evaluation
// use) for the frontend; `timingCodec` keeps the same Code's decodability (canDecode) and
// routing but moves no data, for the planner's simulator, where only time matters.
import type { Code, WorkerFunction } from '../codes/code.js';
import { workerSignatures, type WorkerSignature } from '../codes/worker-signature.js';
import { tensor } from '../engine/tensor.js';
import { tidy } from '../engine/scope.js';

export const poolKey = (fn: WorkerFunction): string =>
  fn.kind === 'base' ? 'base' : fn.kind === 'parity' ? `parity:${fn.index}` : `worker:${fn.name}:${fn.index}`;

export interface CodedInput {
  data: Float32Array;
  /** per-sample shape */
  shape: number[];
  side?: { name: string; data: Float32Array; shape: number[] }[];
}

export interface GroupCodec {
  readonly name: string;
  readonly k: number;
  readonly n: number;
  readonly systematic: boolean;
  readonly approximateDecoding: boolean;
  /** the pool (see poolKey) that computes coded query i */
  readonly pools: readonly string[];
  canDecode(available: readonly boolean[]): boolean;
  /** the n coded inputs of one group of k queries (systematic codes: entries < k are unused) */
  encode(queries: readonly Float32Array[]): CodedInput[];
  /** the k outputs from the n worker outputs (null where missing) */
  decode(outputs: readonly (Float32Array | null)[]): { data: Float32Array[]; reconstructed: boolean[] };
}

/** The pools a code's n coded queries go to, from one encode of a zero group. */
function probePools(code: Code, inputShape: number[]): string[] {
  const size = inputShape.reduce((a, b) => a * b, 1);
  return tidy(() => code.encode(tensor(new Float32Array(code.k * size), [1, code.k, ...inputShape])).map((q) => poolKey(q.fn)));
}

export function tensorCodec(code: Code, inputShape: number[], outputShape: number[]): GroupCodec {
  const signatures: WorkerSignature[] = workerSignatures(code.config() as { family: string } & Record<string, unknown>);
  const per = inputShape.reduce((a, b) => a * b, 1);
  return {
    name: code.name,
    k: code.k,
    n: code.n,
    systematic: code.systematic,
    approximateDecoding: code.approximateDecoding === true,
    pools: probePools(code, inputShape),
    canDecode: (a) => code.canDecode(a),
    encode(queries) {
      const x = new Float32Array(code.k * per);
      queries.forEach((q, i) => x.set(q, i * per));
      return tidy(() =>
        code.encode(tensor(x, [1, code.k, ...inputShape])).map((cq, i): CodedInput => {
          if (code.systematic && i < code.k) return { data: new Float32Array(0), shape: inputShape }; // the originals go out unchanged
          const main = { data: cq.inputs[0].contiguous().dataFloat32(), shape: cq.inputs[0].shape.slice(1) };
          if (cq.inputs.length === 1) return main;
          // side inputs go by the names the worker instance expects (src/codes/worker-signature.ts)
          const fn = cq.fn;
          const sig = fn.kind === 'worker' ? signatures.find((s) => s.name === fn.name && s.index === fn.index) : undefined;
          if (sig === undefined || sig.sideInputs.length !== cq.inputs.length - 1)
            throw new Error(`${code.name}: coded query ${i} has ${cq.inputs.length - 1} side input(s) that no worker signature names`);
          return {
            ...main,
            side: cq.inputs
              .slice(1)
              .map((t, j) => ({ name: sig.sideInputs[j].name, data: t.contiguous().dataFloat32(), shape: t.shape.slice(1) })),
          };
        }),
      );
    },
    decode(outputs) {
      return tidy(() => {
        const d = code.decode(outputs.map((o) => (o === null ? null : tensor(o, [1, ...outputShape]))));
        return { data: d.outputs.map((t) => t.contiguous().dataFloat32()), reconstructed: d.reconstructed };
      });
    },
  };
}

/**
 * The code's decodability and routing without its arithmetic (outputs are empty arrays): what
 * a discrete-event simulation of serving needs. `inputShape` only serves to find the pools.
 */
export function timingCodec(code: Code, inputShape: number[]): GroupCodec {
  const empty = new Float32Array(0);
  return {
    name: code.name,
    k: code.k,
    n: code.n,
    systematic: code.systematic,
    approximateDecoding: code.approximateDecoding === true,
    pools: probePools(code, inputShape),
    canDecode: (a) => code.canDecode(a),
    encode: () => Array.from({ length: code.n }, () => ({ data: empty, shape: inputShape })),
    decode: (outputs) => ({
      data: Array.from({ length: code.k }, (_, i) => outputs[i] ?? empty),
      reconstructed: Array.from({ length: code.k }, (_, i) => !(code.systematic && outputs[i] !== null)),
    }),
  };
}
