// Issue 19: per-tensor statistics (shape, mean, std, min, max) of a freshly built learned code
// (ConvEncoder + MLPDecoder, default init) after manualSeed(seed), one line per tensor, in the
// format of scripts/experiments/reference-init-stats.py (the reference's modules after
// torch.manual_seed(seed) and util.init_weights), so the two outputs can be diffed.
// node scripts/experiments/learned-init-stats.mjs [--k 2] [--seeds 1,2,3]
import { parseArgs } from 'node:util';
import { manualSeed } from '../../dist/src/engine/runtime.js';
import { LearnedCode } from '../../dist/src/codes/learned.js';

const { values: v } = parseArgs({ options: { k: { type: 'string', default: '2' }, seeds: { type: 'string', default: '1,2,3' } } });
const k = Number(v.k);
for (const seed of v.seeds.split(',').map(Number)) {
  manualSeed(seed);
  const code = new LearnedCode({
    family: 'learned',
    k,
    r: 1,
    encoder: 'conv',
    decoder: 'mlp',
    input: { channels: 1, height: 28, width: 28 },
    outputs: 10,
  });
  for (const [part, mod] of [
    ['encoder', code.encoder],
    ['decoder', code.decoder],
  ]) {
    for (const [name, t] of mod.namedParameters()) {
      const a = t.data();
      let s = 0,
        s2 = 0,
        mn = Number.POSITIVE_INFINITY,
        mx = Number.NEGATIVE_INFINITY;
      for (const x of a) {
        s += x;
        s2 += x * x;
        mn = Math.min(mn, x);
        mx = Math.max(mx, x);
      }
      const mean = s / a.length;
      const std = Math.sqrt(Math.max(0, s2 / a.length - mean * mean));
      const f = (x) => x.toExponential(4);
      console.log(`seed ${seed} ${part}.${name} [${t.shape.join(', ')}] mean ${f(mean)} std ${f(std)} min ${f(mn)} max ${f(mx)}`);
    }
  }
  for (const [, m] of code.modules()) m.dispose();
}
