// `coded info`: what engine this installation runs on.
import { parse } from '../args.js';
import { cudaAvailable, cudaDeviceCount, getNumThreads, torchVersion } from '../../engine/runtime.js';
import { availableParallelism } from 'node:os';

export const usage = `coded info [--json]

Prints the libtorch version, thread count, CUDA availability and runtime settings.`;

export async function info(argv: string[]): Promise<void> {
  const { values } = parse(argv, { json: { type: 'boolean' } }, usage);
  if (values.help) return void console.log(usage);
  const facts = {
    libtorch: torchVersion(),
    threads: getNumThreads(),
    cores: availableParallelism(),
    cuda: cudaAvailable(),
    cudaDevices: cudaDeviceCount(),
    node: process.version,
    glibcTunables: process.env.GLIBC_TUNABLES ?? null,
    addon: process.env.CODED_ADDON ?? 'build/Release/coded_torch.node',
  };
  if (values.json) console.log(JSON.stringify(facts));
  else for (const [k, v] of Object.entries(facts)) console.log(`${k.padEnd(13)} ${v}`);
}
