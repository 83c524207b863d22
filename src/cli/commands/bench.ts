// `coded bench <name>`: benchmarks. `engine` runs W1-W4 through our engine and PyTorch.
import { UsageError } from '../args.js';

export const usage = `coded bench <benchmark> [options]

Benchmarks:
  engine    our libtorch engine vs PyTorch (same libtorch, same threads): W1 Base-MLP train
            step, W2 ConvEncoder fwd+bwd, W3 ResNet-18 fwd+bwd, W4 ResNet-18 batch-1 latency
            (coded bench engine --help for its options)
  serve     coded serving latency: open-loop Poisson load through the frontend with
            stragglers, modes compared at equal resources (coded bench serve --help)
  overload  the frontend at FACTOR x its capacity: refused, answered, lost, and service
            right after (coded bench overload --help)
  stall     can one bad request (huge or deep JSON, huge typed gRPC contents, slow senders)
            delay other queries? (coded bench stall --help)`;

export async function bench(argv: string[]): Promise<void> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') return void console.log(usage);
  if (name === 'serve') return (await import('./bench-serve.js')).serveBenchMain(rest);
  if (name === 'overload') return (await import('./bench-overload.js')).overloadBenchMain(rest);
  if (name === 'stall') return (await import('./bench-stall.js')).stallBenchMain(rest);
  if (name !== 'engine') throw new UsageError(`unknown benchmark '${name}'\n\n${usage}`);
  const { engineBenchMain, EngineBenchUsageError } = await import('../../bench/engine.js');
  try {
    await engineBenchMain(rest);
  } catch (e) {
    if (e instanceof EngineBenchUsageError) throw new UsageError(e.message);
    throw e;
  }
}
