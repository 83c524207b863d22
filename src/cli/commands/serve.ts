// `coded serve instance|frontend`: Open Inference Protocol servers (see src/serve).
import { parse, intOption, numberOption, choiceOption, UsageError } from '../args.js';

export const usage = `coded serve <instance|frontend> [options]

  coded serve instance --model MODEL [--parity-index J | --worker NAME[I]] [--input-shape DIMS] [--name NAME] [--port P] [--grpc-port P] [--host H]
                       [--device cpu|cuda] [--threads N] [--max-batch N]
                       [--latency DIST] [--slow-prob P --slow-ms MS] [--slow-periods SPEC]
                       [--latency-trace FILE] [--fail-prob P]
                       [--crash-after N] [--seed S] [--log-level L]
      One model behind the V2 (KServe / Open Inference Protocol) REST and gRPC APIs.
      MODEL: a base checkpoint (models/*.safetensors), a parity-code checkpoint from
      \`coded train parity\` (serves its parity model J, --parity-index, default 0; the
      default name is <file>-parity<J>), a code checkpoint with worker networks from
      \`coded train polynomial\` (serves its worker H[0], or --worker NAME[I]; H_S workers take
      side inputs v0..vP next to 'input'; default name <file>-H0), linear:D:C[:SEED] (seeded
      random linear map, for tests), random:MODEL:CxHxW:CLASSES[:SEED] (a zoo model from
      \`coded models\` with seeded random weights, for latency at a model's real size, e.g.
      random:resnet18:3x224x224:1000, torchvision's ImageNet ResNet-18), noop:D (identity,
      no libtorch: measures serving overhead), a TorchScript file FILE.pt|.pth|.torchscript
      (torch.jit.trace/script + save; libtorch's JIT on a worker thread; needs --input-shape,
      e.g. 3x32x32, per example without the batch dimension: the file does not record it),
      or an ONNX file FILE.onnx (ONNX Runtime, CPU; input shape from the file, --input-shape
      for symbolic dimensions). See examples/own-model/. When the same model exists in both
      forms (F.pt and F.onnx side by side), --runtime auto (the default) loads both, checks
      that they answer alike, times them side by side and serves the faster; --runtime named
      serves the file given.
      Ports default to 8000 (REST) and 8001 (gRPC); 0 picks a free port; -1 disables one.
      Fault injection: --latency none|const:MS|uniform:LO:HI|exp:MEAN|lognormal:MU:SIGMA
      added to every request; with probability --slow-prob a request is delayed a further
      --slow-ms; --slow-periods ON_MS:OFF_MS:FACTOR[:ADD_MS] makes the instance slow for
      periods (exponential lengths, means ON_MS slow and OFF_MS normal): compute takes FACTOR
      times as long and each request waits ADD_MS more; --latency-trace FILE adds the trace's
      milliseconds to successive requests (one number per line, or a JSON array; replayed
      cyclically from a seeded offset); with probability --fail-prob a request fails
      (UNAVAILABLE / 503); --crash-after N
      exits the process when the N-th inference request arrives.
      Prints one JSON line {"event":"listening",...} with the bound ports on stdout.

  coded serve frontend --config FILE
      The coded-serving frontend (V2 REST + gRPC, Clipper-style POST /{app}/predict,
      Prometheus /metrics). FILE is JSON; see src/serve/config.ts and docs/SERVING.md.`;

export async function serve(argv: string[]): Promise<void> {
  const [what, ...rest] = argv;
  if (what === undefined || what === '--help' || what === '-h') return void console.log(usage);
  if (what === 'instance') return instance(rest);
  if (what === 'frontend') return frontend(rest);
  throw new UsageError(`unknown server '${what}' (instance or frontend)\n\n${usage}`);
}

function port(v: string | undefined, name: string, fallback: number): number | null {
  const n = intOption(v, name, fallback, { min: -1 });
  if (n > 65535) throw new UsageError(`--${name} must be a port number, got ${n}`);
  return n === -1 ? null : n;
}

async function instance(argv: string[]): Promise<void> {
  const { values } = parse(
    argv,
    {
      model: { type: 'string' },
      'input-shape': { type: 'string' },
      runtime: { type: 'string' },
      'parity-index': { type: 'string' },
      worker: { type: 'string' },
      name: { type: 'string' },
      port: { type: 'string' },
      'grpc-port': { type: 'string' },
      host: { type: 'string' },
      device: { type: 'string' },
      threads: { type: 'string' },
      'max-batch': { type: 'string' },
      latency: { type: 'string' },
      'slow-prob': { type: 'string' },
      'slow-ms': { type: 'string' },
      'fail-prob': { type: 'string' },
      'slow-periods': { type: 'string' },
      'latency-trace': { type: 'string' },
      'crash-after': { type: 'string' },
      seed: { type: 'string' },
      'log-level': { type: 'string' },
    },
    usage,
  );
  if (values.help) return void console.log(usage);
  if (values.model === undefined) throw new UsageError(`--model is required\n\n${usage}`);
  const device = choiceOption(values.device, 'device', ['cpu', 'cuda'] as const, 'cpu');
  const level = choiceOption(values['log-level'], 'log-level', ['fatal', 'error', 'warn', 'info', 'debug', 'silent'] as const, 'info');
  const { parseLatency, parseSlowPeriods, readLatencyTrace } = await import('../../serve/faults.js');
  const prob = (v: string | undefined, n: string) => {
    const p = numberOption(v, n, 0);
    if (p < 0 || p > 1) throw new UsageError(`--${n} must be a probability in [0, 1], got ${p}`);
    return p;
  };
  let latency;
  try {
    latency = parseLatency(values.latency ?? 'none');
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  let slowPeriods;
  let trace;
  try {
    if (values['slow-periods'] !== undefined) slowPeriods = parseSlowPeriods(values['slow-periods']);
    if (values['latency-trace'] !== undefined) trace = readLatencyTrace(values['latency-trace']);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const faults = {
    ...(slowPeriods !== undefined ? { slowPeriods } : {}),
    ...(trace !== undefined ? { trace } : {}),
    latency,
    slowProb: prob(values['slow-prob'], 'slow-prob'),
    slowMs: numberOption(values['slow-ms'], 'slow-ms', 0),
    failProb: prob(values['fail-prob'], 'fail-prob'),
    crashAfter: intOption(values['crash-after'], 'crash-after', 0, { min: 0 }),
    seed: intOption(values.seed, 'seed', 1, { min: 0 }),
  };
  if (faults.slowMs < 0) throw new UsageError('--slow-ms must be >= 0');
  const { servedModelFrom, parseInputShape } = await import('../../serve/served-model.js');
  const { InstanceServer } = await import('../../serve/instance.js');
  const { pino } = await import('pino');
  const log = pino({ level }, process.stderr);
  const parityIndex = values['parity-index'] === undefined ? undefined : intOption(values['parity-index'], 'parity-index', 0, { min: 0 });
  let model;
  try {
    const inputShape = values['input-shape'] === undefined ? undefined : parseInputShape(values['input-shape']);
    model = servedModelFrom(values.model, values.name, parityIndex, values.worker, inputShape === undefined ? {} : { inputShape });
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const runtime = choiceOption(values.runtime, 'runtime', ['auto', 'named'] as const, 'auto');
  const { siblingModelFile, chooseFasterRuntime } = await import('../../serve/runtime-choice.js');
  const sibling = runtime === 'auto' ? siblingModelFile(values.model) : null;
  if (sibling !== null) {
    // the same model in the other format: serve whichever runtime is faster here
    const threads = intOption(values.threads, 'threads', 1);
    await model.load(device, threads);
    let other: ReturnType<typeof servedModelFrom> | null = null;
    try {
      other = servedModelFrom(sibling, model.name, undefined, undefined, { inputShape: model.inputShape });
      const choice = await chooseFasterRuntime(
        [
          { path: values.model, model },
          { path: sibling, model: other },
        ],
        { device, threads },
      );
      log.info({ runtimes: choice.times }, choice.reason);
      model = choice.chosen.model;
      model.description += ` (${choice.reason})`;
    } catch (e) {
      // the other runtime cannot run it here (e.g. onnxruntime-node not installed): the named file serves
      log.warn(
        { error: (e as Error).message.split('\n')[0] },
        `${sibling} could not be compared (${(e as Error).message.split('\n')[0]}); serving ${values.model}`,
      );
      await other?.close().catch(() => {});
    }
  }
  const s = await InstanceServer.start({
    model,
    host: values.host,
    httpPort: port(values.port, 'port', 8000),
    grpcPort: port(values['grpc-port'], 'grpc-port', 8001),
    device,
    threads: intOption(values.threads, 'threads', 1),
    maxBatch: intOption(values['max-batch'], 'max-batch', 256),
    faults,
    logger: log,
  });
  console.log(JSON.stringify({ event: 'listening', model: s.meta.name, http: s.httpPort, grpc: s.grpcPort, pid: process.pid }));
  await untilSignal(() => s.close());
}

async function frontend(argv: string[]): Promise<void> {
  const { values } = parse(argv, { config: { type: 'string' } }, usage);
  if (values.help) return void console.log(usage);
  if (values.config === undefined) throw new UsageError(`--config is required\n\n${usage}`);
  const { readFrontendConfig } = await import('../../serve/config.js');
  const { Frontend } = await import('../../serve/frontend.js');
  const config = readFrontendConfig(values.config);
  const f = await Frontend.start({ config });
  console.log(
    JSON.stringify({ event: 'listening', name: config.name, mode: f.mode, http: f.httpPort, grpc: f.grpcPort, pid: process.pid }),
  );
  await untilSignal(() => f.close());
}

/** Run until SIGINT/SIGTERM, then shut down cleanly. */
function untilSignal(shutdown: () => Promise<void>): Promise<void> {
  return new Promise((resolve) => {
    const stop = () => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      shutdown().then(resolve, resolve);
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
