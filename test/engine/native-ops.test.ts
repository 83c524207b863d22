// The addon exports its element-wise, in-place and reduction ops by name (native/ops.cc's op
// tables); src/engine/native.ts names the same ops. The two lists must agree both ways, so a
// renamed or dropped op fails here instead of silently running another one.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { BINARY_OPS, INPLACE_OPS, REDUCE_OPS, SCALAR_OPS, UNARY_OPS, native } from '../../src/engine/native.js';
import { ones, tidy } from '../../src/index.js';

const tables = {
  unary: UNARY_OPS,
  binary: BINARY_OPS,
  scalar: SCALAR_OPS,
  inplace: INPLACE_OPS,
  reduce: REDUCE_OPS,
} as const;

describe('the native op tables', () => {
  for (const [group, names] of Object.entries(tables)) {
    test(`every ${group} op TypeScript names is a function of the addon, and no other`, () => {
      const exported = native[group as keyof typeof tables] as unknown as Record<string, unknown>;
      assert.equal(typeof exported, 'object', `the addon exports no '${group}' table`);
      for (const name of names) assert.equal(typeof exported[name], 'function', `${group}.${name} is missing from the addon`);
      assert.deepEqual(Object.keys(exported).sort(), [...names].sort());
    });
  }

  test('a name runs its own op', () => {
    tidy(() => {
      const x = ones([2]).mul(4);
      assert.deepEqual(ones([2]).mul(4).sqrt().toList(), [2, 2]);
      assert.deepEqual(x.rsub(1).toList(), [-3, -3]);
      assert.deepEqual(x.rdiv(2).toList(), [0.5, 0.5]);
      assert.deepEqual(x.sub(ones([2]), 2).toList(), [2, 2]);
      assert.deepEqual(x.std(0, { unbiased: false }).item(), 0);
      const t = ones([2]);
      t.add_(ones([2]), 3)
        .sub_(ones([2]), 0.5)
        .addcmul_(ones([2]), ones([2]), 2);
      assert.deepEqual(t.toList(), [5.5, 5.5]);
    });
  });
});
