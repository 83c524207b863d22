// `coded export triton`: a Triton model repository for a base model F given as a TorchScript or
// ONNX file and, optionally, the parity models of a parity-code checkpoint trained for it, so
// the base and parity pools of a coded frontend can be Triton servers (issue 14, item 4).
//
//   REPO/NAME/config.pbtxt              platform pytorch_libtorch (TorchScript) or onnxruntime_onnx
//   REPO/NAME/1/model.pt | model.onnx   the base file, copied byte for byte (its SHA-256 is kept)
//   REPO/NAME-parity-J/config.pbtxt     one per parity model (TorchScript: F's graph, trained weights)
//   REPO/NAME-parity-J/1/model.pt
//
// Triton's libtorch backend names the tensors of a TorchScript model INPUT__0 / OUTPUT__0; ONNX
// models keep the names in the file. Each config records the role, the base file's SHA-256 and
// the code in `parameters`, so a repository can be matched to its checkpoint.
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { basename, extname, join, resolve } from 'node:path';
import { fileSha256 } from '../models/base-checkpoint.js';
import { isOnnxPath, isTorchScriptPath } from '../models/file-kinds.js';
import { TorchScriptModule } from '../models/torchscript.js';
import { zeros, tidy, noGrad } from '../engine/index.js';
import { loadCodeCheckpoint, type ParityCheckpointMeta } from '../codes/checkpoint.js';
import { checkTritonConfig, parseTextFormat, renderTritonConfig, type TritonModelConfig } from './triton-config.js';

export interface TritonExportOptions {
  /** F: a TorchScript (.pt, .pth, .torchscript) or ONNX (.onnx) file */
  base: string;
  /** a parity-code checkpoint trained for this base (its parity models must be TorchScript: `--parity-model base`) */
  code?: string;
  /** the repository folder (created; must be empty or missing unless force) */
  out: string;
  /** the base model's name in the repository (default: the base file's name without extension) */
  name?: string;
  /** per-example input shape, e.g. [1, 28, 28]: needed for TorchScript unless the code checkpoint records it */
  inputShape?: number[];
  /** Triton's max_batch_size (default 64; 0 turns Triton's batching off) */
  maxBatchSize?: number;
  /** where Triton runs the instances (default gpu) */
  device?: 'gpu' | 'cpu' | 'auto';
  /** instances per GPU (or on the CPU), default 1 */
  count?: number;
  /** write into a non-empty folder */
  force?: boolean;
}

export interface TritonModelEntry {
  name: string;
  role: 'base' | 'parity';
  /** the frontend pool it serves: base, or parity:J */
  pool: string;
  dir: string;
  config: TritonModelConfig;
}

export interface TritonExport {
  repository: string;
  models: TritonModelEntry[];
  /** the pools of a frontend config that uses these models (instances to fill in) */
  pools: { base: { model: string; instances: string[] }; parity?: { model: string; instances: string[] }[] };
}

const NAME_RE = /^[A-Za-z0-9_.-]+$/;

/** Per-example output shape of a TorchScript model, from one forward of zeros. */
function torchScriptOutputShape(m: TorchScriptModule, inputShape: number[]): number[] {
  return tidy(() => noGrad(() => m.forward(zeros([1, ...inputShape])).shape.slice(1)));
}

function kindOf(path: string): 'torchscript' | 'onnx' {
  if (isTorchScriptPath(path)) return 'torchscript';
  if (isOnnxPath(path)) return 'onnx';
  throw new Error(
    `${path}: Triton serves TorchScript (.pt, .pth, .torchscript) or ONNX (.onnx) files, not ${extname(path) || 'a file without extension'}; export your model with torch.jit.trace(model.eval(), x).save(PATH) or torch.onnx.export, or serve this pool with \`coded serve instance --model ${path}\``,
  );
}

function writeModel(repo: string, c: TritonModelConfig, write: (file: string) => void, file: string): string {
  const text = renderTritonConfig(c);
  const problems = checkTritonConfig(parseTextFormat(text));
  if (problems.length > 0) throw new Error(`internal: the config of ${c.name} does not match Triton's ModelConfig: ${problems.join('; ')}`);
  const dir = join(repo, c.name);
  mkdirSync(join(dir, '1'), { recursive: true });
  writeFileSync(join(dir, 'config.pbtxt'), text);
  write(join(dir, '1', file));
  return dir;
}

/** Write the repository; returns what it holds. */
export async function exportTriton(o: TritonExportOptions): Promise<TritonExport> {
  if (!existsSync(o.base) || !statSync(o.base).isFile())
    throw new Error(`${o.base}: no such file (the base model: a TorchScript or ONNX file)`);
  const kind = kindOf(o.base);
  const name = o.name ?? basename(o.base, extname(o.base));
  if (!NAME_RE.test(name))
    throw new Error(
      `model name '${name}' has characters Triton's repository folders should not: use letters, digits, '_', '-', '.' (--name)`,
    );
  const maxBatch = o.maxBatchSize ?? 64;
  if (!Number.isInteger(maxBatch) || maxBatch < 0) throw new Error(`--max-batch must be an integer >= 0, got ${maxBatch}`);
  const count = o.count ?? 1;
  if (!Number.isInteger(count) || count < 1) throw new Error(`--count must be an integer >= 1, got ${count}`);
  const repo = resolve(o.out);
  if (existsSync(repo)) {
    if (!statSync(repo).isDirectory()) throw new Error(`${o.out} exists and is not a folder`);
    if (readdirSync(repo).length > 0 && !o.force)
      throw new Error(`${o.out} is not empty: choose another --out, or pass --force to write into it`);
  }
  const baseSha = fileSha256(o.base);

  // the parity code first: it may record the input shape, and it must belong to this base
  let parity: TorchScriptModule[] = [];
  let codeName: string | undefined;
  let recordedInput: number[] | undefined;
  if (o.code !== undefined) {
    if (!existsSync(o.code))
      throw new Error(`${o.code}: no such file (a parity-code checkpoint from \`coded train parity --base ${o.base}\`)`);
    const lp = loadCodeCheckpoint(o.code, { base: false, parity: 'required' });
    const meta = lp.metadata as ParityCheckpointMeta;
    const rec = meta.base;
    codeName = lp.code.name;
    if (rec.sha256 !== baseSha) {
      lp.dispose();
      throw new Error(
        `${o.code} was trained for another base model (sha256 ${rec.sha256.slice(0, 12)}…, recorded path ${rec.path}) than ${o.base} (sha256 ${baseSha.slice(0, 12)}…): pass the base it was trained for, or retrain the parity models for this one`,
      );
    }
    if (!lp.parity.every((m) => m instanceof TorchScriptModule)) {
      lp.dispose();
      throw new Error(
        `${o.code}: its parity models are the project's own '${meta.parity.model}' modules, which Triton cannot load; train them as copies of F's TorchScript module (\`coded train parity --base ${o.base} --parity-model base\`), or serve the parity pool with \`coded serve instance --model ${o.code}\``,
      );
    }
    parity = lp.parity as TorchScriptModule[];
    recordedInput = rec.input === undefined ? undefined : [rec.input.channels, rec.input.height, rec.input.width];
  }

  try {
    const models: TritonModelEntry[] = [];
    const params = (role: string, extra: Record<string, string> = {}) => ({
      'coded.role': role,
      'coded.base_sha256': baseSha,
      ...(codeName !== undefined ? { 'coded.code': codeName } : {}),
      ...extra,
    });
    const group = [
      { kind: o.device === 'cpu' ? ('KIND_CPU' as const) : o.device === 'auto' ? ('KIND_AUTO' as const) : ('KIND_GPU' as const), count },
    ];
    const batching = maxBatch > 0 ? { dynamic_batching: {} } : {};
    let inputShape: number[];
    let outputShape: number[];
    let io: { input: string; output: string };
    if (kind === 'onnx') {
      const { OnnxModel } = await import('../models/onnx.js');
      const m = await OnnxModel.load(o.base, { inputShape: o.inputShape ?? recordedInput });
      try {
        inputShape = m.inputShape;
        outputShape = m.outputShape ?? (await m.run(new Float32Array(inputShape.reduce((a, b) => a * b, 1)), 1)).shape.slice(1);
        io = { input: m.inputName, output: m.outputName };
      } finally {
        await m.close();
      }
      if (parity.length > 0)
        throw new Error(
          `${o.code}: its parity models are TorchScript and the base is ONNX; export them with a TorchScript base (the frontend sends every pool the base's input name)`,
        );
    } else {
      const shape = o.inputShape ?? recordedInput;
      if (shape === undefined)
        throw new Error(`${o.base}: a TorchScript file does not say its input shape: pass --input-shape (per example, e.g. 1x28x28)`);
      if (o.inputShape !== undefined && recordedInput !== undefined && o.inputShape.join('x') !== recordedInput.join('x')) {
        throw new Error(
          `--input-shape ${o.inputShape.join('x')} differs from the ${recordedInput.join('x')} that ${o.code} was trained on`,
        );
      }
      inputShape = shape;
      const m = TorchScriptModule.load(o.base);
      try {
        m.eval();
        outputShape = torchScriptOutputShape(m, inputShape);
      } catch (e) {
        throw new Error(
          `${o.base}: a forward of one ${inputShape.join('x')} input failed (${(e as Error).message.split('\n')[0]}); check --input-shape`,
        );
      } finally {
        m.dispose();
      }
      io = { input: 'INPUT__0', output: 'OUTPUT__0' };
    }
    mkdirSync(repo, { recursive: true });
    // with batching, dims are per example; without (max_batch_size 0) they are the whole tensor,
    // whose first dimension is the batch the frontend sends (1): variable (-1)
    const full = (d: number[]) => (maxBatch > 0 ? d : [-1, ...d]);
    const tensors = (i: number[], out: number[]) => ({
      input: [{ name: io.input, data_type: 'TYPE_FP32' as const, dims: full(i) }],
      output: [{ name: io.output, data_type: 'TYPE_FP32' as const, dims: full(out) }],
    });
    const baseCfg: TritonModelConfig = {
      name,
      platform: kind === 'onnx' ? 'onnxruntime_onnx' : 'pytorch_libtorch',
      max_batch_size: maxBatch,
      ...tensors(inputShape, outputShape),
      instance_group: group,
      ...batching,
      parameters: params('base'),
    };
    const file = kind === 'onnx' ? 'model.onnx' : 'model.pt';
    models.push({
      name,
      role: 'base',
      pool: 'base',
      dir: writeModel(repo, baseCfg, (p) => copyFileSync(o.base, p), file),
      config: baseCfg,
    });
    parity.forEach((m, j) => {
      m.eval();
      const out = torchScriptOutputShape(m, inputShape);
      const cfg: TritonModelConfig = {
        name: `${name}-parity-${j}`,
        platform: 'pytorch_libtorch',
        max_batch_size: maxBatch,
        ...tensors(inputShape, out),
        instance_group: group,
        ...batching,
        parameters: params('parity', { 'coded.parity_index': String(j) }),
      };
      models.push({
        name: cfg.name,
        role: 'parity',
        pool: `parity:${j}`,
        dir: writeModel(repo, cfg, (p) => m.save(p), 'model.pt'),
        config: cfg,
      });
    });
    const pools: TritonExport['pools'] = { base: { model: name, instances: [] } };
    if (parity.length > 0) pools.parity = parity.map((_, j) => ({ model: `${name}-parity-${j}`, instances: [] }));
    return { repository: repo, models, pools };
  } finally {
    for (const m of parity) m.dispose();
  }
}
