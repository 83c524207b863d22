// The engine is the bottom layer: nothing in src/engine imports from the layers above it
// (nn, codes, models, data, train, serve, ...).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../..', import.meta.url));

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((d) =>
    d.isDirectory() ? sources(join(dir, d.name)) : d.name.endsWith('.ts') ? [join(dir, d.name)] : [],
  );
}

test('src/engine imports only from src/engine (and node)', () => {
  const engine = join(root, 'src', 'engine');
  const offending: string[] = [];
  for (const file of sources(engine)) {
    for (const m of readFileSync(file, 'utf8').matchAll(/(?:from|import)\s*\(?\s*'([^']+)'/g)) {
      const spec = m[1];
      if (!spec.startsWith('.')) continue;
      const target = join(file, '..', spec);
      if (!target.startsWith(engine + '/')) offending.push(`${file.slice(root.length)} imports ${spec}`);
    }
  }
  assert.deepEqual(offending, []);
});
