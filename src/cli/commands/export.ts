// `coded export triton`: a Triton model repository for a TorchScript / ONNX base model and the
// TorchScript parity models trained for it (src/deploy/triton.ts).
import { parse, intOption, choiceOption, UsageError } from '../args.js';

export const usage = `coded export triton --base FILE.pt|FILE.onnx [--code PARITY_CKPT] --out REPO [options]

Writes a Triton Inference Server model repository: the base model F (platform
pytorch_libtorch for TorchScript, onnxruntime_onnx for ONNX, the file copied unchanged) and, with
--code, one model per parity model of a parity-code checkpoint trained for F with
\`coded train parity --base FILE.pt --parity-model base\` (TorchScript: F's graph with the
trained weights). Point the frontend's pools at Triton servers that load the repository (the
printed pools; gRPC port 8001, e.g. dns:///triton-base.NS.svc.cluster.local:8001), or render
Kubernetes manifests with \`coded deploy k8s --triton POOL=LABELS\`.

Options:
  --base FILE        F: a TorchScript (.pt, .pth, .torchscript) or ONNX (.onnx) file
  --code CKPT        a parity-code checkpoint trained for F (its recorded base SHA-256 must match)
  --out REPO         the repository folder (created; must be empty unless --force)
  --name NAME        F's model name in the repository (default: the base file's name);
                     parity models are NAME-parity-J
  --input-shape S    per-example input shape, e.g. 1x28x28 (TorchScript: required unless --code
                     records it; ONNX: only when the file's shape is symbolic)
  --max-batch N      Triton's max_batch_size, with dynamic batching (default 64; 0: no batching)
  --device D         where Triton runs the instances: gpu (default), cpu or auto
  --count N          instances per GPU (or on the CPU), default 1
  --force            write into a non-empty folder
  --json             print what was written as JSON
`;

export async function exportCommand(argv: string[]): Promise<void> {
  const [what, ...rest] = argv;
  if (what === undefined || what === '--help' || what === '-h') return void console.log(usage);
  if (what !== 'triton') throw new UsageError(`unknown target '${what}' (triton)\n\n${usage}`);
  const { values } = parse(
    rest,
    {
      base: { type: 'string' },
      code: { type: 'string' },
      out: { type: 'string' },
      name: { type: 'string' },
      'input-shape': { type: 'string' },
      'max-batch': { type: 'string' },
      device: { type: 'string' },
      count: { type: 'string' },
      force: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  if (values.base === undefined) throw new UsageError(`--base is required (a TorchScript or ONNX file)\n\n${usage}`);
  if (values.out === undefined) throw new UsageError(`--out is required (the repository folder)\n\n${usage}`);
  const { parseInputShape } = await import('../../serve/served-model.js');
  const { exportTriton } = await import('../../deploy/triton.js');
  let inputShape: number[] | undefined;
  try {
    inputShape = values['input-shape'] === undefined ? undefined : parseInputShape(values['input-shape']);
  } catch (e) {
    throw new UsageError(`--input-shape: ${(e as Error).message}`);
  }
  const r = await exportTriton({
    base: values.base,
    code: values.code,
    out: values.out,
    name: values.name,
    inputShape,
    maxBatchSize: intOption(values['max-batch'], 'max-batch', 64, { min: 0 }),
    device: choiceOption(values.device, 'device', ['gpu', 'cpu', 'auto'] as const, 'gpu'),
    count: intOption(values.count, 'count', 1),
    force: values.force,
  });
  if (values.json) return void console.log(JSON.stringify({ repository: r.repository, models: r.models, pools: r.pools }, null, 2));
  console.log(`wrote the Triton model repository ${r.repository}:`);
  for (const m of r.models) {
    const c = m.config;
    console.log(
      `  ${m.name}/ (${m.role}, pool ${m.pool}): ${c.platform}, input ${c.input[0].name} [${c.input[0].dims.join(', ')}], output ${c.output[0].name} [${c.output[0].dims.join(', ')}], max_batch_size ${c.max_batch_size}`,
    );
  }
  console.log(`\nserve it with: tritonserver --model-repository=${r.repository}`);
  console.log(
    `frontend pools (fill in the instances, e.g. dns:///triton.NAMESPACE.svc.cluster.local:8001):\n${JSON.stringify(r.pools, null, 2)}`,
  );
}
