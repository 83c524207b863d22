// The import rule of docs/ARCHITECTURE.md, checked on the sources: a layer imports only from
// itself and the layers below it (src/bench never from src/cli, src/engine never from src/nn,
// src/plan never from src/bench, ...). Reads every src/**/*.ts and parses its import lines
// (static, dynamic and re-exports), so a new import that breaks the rule fails here.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { packageRoot } from '../../src/util/package-root.js';

/** Bottom to top; each may import from those before it. src/index.ts (the package's entry) sits above all. */
const LAYERS = ['util', 'engine', 'nn', 'data', 'models', 'codes', 'eval', 'train', 'serve', 'plan', 'deploy', 'bench', 'cli'] as const;

/**
 * Imports that break the rule today and are being removed on other branches (issue 16): the
 * lead deletes an entry once its branch is merged. An entry no longer needed does not fail.
 */
const PENDING = new Set<string>([]);

const root = packageRoot();
const src = join(root, 'src');

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((f) => {
    const p = join(dir, f);
    return statSync(p).isDirectory() ? sources(p) : f.endsWith('.ts') && !f.endsWith('.d.ts') ? [p] : [];
  });
}

/** Relative module specifiers a file imports: `import ... from`, `export ... from`, `import '...'`, `import('...')`. */
export function importedSpecifiers(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g)) out.push(m[2]);
  return out;
}

/** The layer of a file under src/ ('index' for src/*.ts at the top). */
function layerOf(file: string): string {
  const parts = relative(src, file).split(sep);
  return parts.length === 1 ? 'index' : parts[0];
}

const rank = (layer: string): number => (layer === 'index' ? LAYERS.length : (LAYERS as readonly string[]).indexOf(layer));

test('import parsing finds static, dynamic, side-effect and re-export imports, across lines', () => {
  const text = `import { a } from '../engine/tensor.js';\nimport {\n  b,\n} from "./x.js";\nimport '../codes/index.js';\nexport * from './v2/types.js';\nconst m = await import('../../bench/serve.js');\nimport { readFileSync } from 'node:fs';`;
  assert.deepEqual(importedSpecifiers(text), [
    '../engine/tensor.js',
    './x.js',
    '../codes/index.js',
    './v2/types.js',
    '../../bench/serve.js',
  ]);
});

test('every directory of src/ has a place in the layer order', () => {
  const dirs = readdirSync(src).filter((f) => statSync(join(src, f)).isDirectory());
  const unknown = dirs.filter((d) => rank(d) < 0);
  assert.deepEqual(unknown, [], `add these to LAYERS here and to docs/ARCHITECTURE.md: ${unknown.join(', ')}`);
});

test('lower layers never import higher ones (src/bench nothing from src/cli, src/engine nothing from src/nn, ...)', () => {
  const bad: string[] = [];
  for (const file of sources(src)) {
    const from = layerOf(file);
    for (const spec of importedSpecifiers(readFileSync(file, 'utf8'))) {
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (!target.startsWith(src + sep)) continue;
      const to = layerOf(target);
      if (to === 'index' && from !== 'index') {
        bad.push(`${relative(root, file)} -> ${relative(root, target)} (the package entry is for users, not for layers)`);
        continue;
      }
      if (rank(to) <= rank(from)) continue;
      const edge = `${relative(root, file)} -> ${relative(root, target)}`;
      if (!PENDING.has(edge)) bad.push(`${edge} (${from} imports ${to}, a higher layer)`);
    }
  }
  assert.deepEqual(bad, [], `layer order, bottom to top: ${LAYERS.join(' < ')} (docs/ARCHITECTURE.md)`);
});
