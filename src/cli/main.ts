#!/usr/bin/env node
// The `coded` command line. Each command lives in src/cli/commands and is loaded lazily.
import { UsageError } from './args.js';

const commands: Record<string, { summary: string; load: () => Promise<(argv: string[]) => Promise<void>> }> = {
  demo: {
    summary: 'train Base-MLP on Fashion-MNIST end to end (the engine demo)',
    load: async () => (await import('./commands/demo.js')).demo,
  },
  train: {
    summary: 'train models: `coded train base|parity|learned|polynomial ...`',
    load: async () => (await import('./commands/train.js')).train,
  },
  eval: {
    summary: 'evaluate checkpoints: `coded eval base CKPT`, `coded eval CODE_CKPT`',
    load: async () => (await import('./commands/eval.js')).evalCommand,
  },
  compare: {
    summary: 'every coding scheme side by side: accuracy by stragglers, cost, timing (`coded compare --base CKPT --k K --n N`)',
    load: async () => (await import('./commands/compare.js')).compareCommand,
  },
  datasets: {
    summary: 'list datasets and whether each is present locally',
    load: async () => (await import('./commands/catalog.js')).datasets,
  },
  models: { summary: 'list the base models', load: async () => (await import('./commands/catalog.js')).models },
  serve: {
    summary: 'Open Inference Protocol servers: `coded serve instance|frontend`',
    load: async () => (await import('./commands/serve.js')).serve,
  },
  deploy: {
    summary: 'Kubernetes manifests for a frontend config: `coded deploy k8s --config F --out DIR`',
    load: async () => (await import('./commands/deploy.js')).deploy,
  },
  export: {
    summary: 'a Triton model repository for a TorchScript/ONNX model and its parity models: `coded export triton --base F --out REPO`',
    load: async () => (await import('./commands/export.js')).exportCommand,
  },
  plan: {
    summary: 'predict latency and cost of serving configurations (simulation); recommend one',
    load: async () => (await import('./commands/plan.js')).planCommand,
  },
  bench: {
    summary: 'benchmarks: `coded bench engine` compares the engine with PyTorch',
    load: async () => (await import('./commands/bench.js')).bench,
  },
  info: { summary: 'libtorch version, threads, CUDA availability', load: async () => (await import('./commands/info.js')).info },
};

function help(): string {
  const rows = Object.entries(commands).map(([n, c]) => `  ${n.padEnd(8)} ${c.summary}`);
  return `coded — erasure-coded ML inference with learned codes

Usage: coded <command> [options]    (coded <command> --help for details)

Commands:
${rows.join('\n')}`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(help());
    return name === undefined ? 2 : 0;
  }
  const cmd = commands[name];
  if (cmd === undefined) {
    console.error(`coded: unknown command '${name}'\n\n${help()}`);
    return 2;
  }
  try {
    await (await cmd.load())(rest);
    return 0;
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`coded ${name}: ${e.message}`);
      return 2;
    }
    console.error(`coded ${name}: ${(e as Error).message}`);
    if (process.env.CODED_DEBUG) console.error((e as Error).stack);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
