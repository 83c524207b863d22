// The experiment scripts (scripts/**/*.mjs) import the compiled library from dist/; a refactor
// that moves or renames an export breaks them only when someone next runs them (issue 19's
// learned-epoch-curve.mjs and side-by-side-learned.mjs imported loadBase from a module it had left).
// Every named import of theirs from dist/ must resolve.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../../', import.meta.url));

function scripts(dir: string): string[] {
  const out: string[] = [];
  for (const f of readdirSync(dir)) {
    const p = join(dir, f);
    if (statSync(p).isDirectory()) out.push(...scripts(p));
    else if (f.endsWith('.mjs')) out.push(p);
  }
  return out;
}

test('every named import of the experiment scripts from dist/ resolves to an export of the built module', async () => {
  const missing: string[] = [];
  let checked = 0;
  for (const file of scripts(join(root, 'scripts'))) {
    const src = readFileSync(file, 'utf8');
    for (const m of src.matchAll(/import\s*\{([^}]+)\}\s*from\s*'((?:\.\.\/)+dist\/[^']+)'/g)) {
      const mod = (await import(pathToFileURL(resolve(dirname(file), m[2])).href)) as Record<string, unknown>;
      for (const name of m[1]
        .split(',')
        .map((s) => s.trim().split(/\s+as\s+/)[0])
        .filter(Boolean)) {
        checked++;
        if (!(name in mod)) missing.push(`${file.slice(root.length)}: ${m[2]} has no export '${name}'`);
      }
    }
  }
  assert.ok(checked > 20, `only ${checked} imports found: is scripts/ where the test expects it (${root})?`);
  assert.deepEqual(missing, []);
});
