// Small helpers shared by the tests: approximate comparison of number lists and scratch
// directories.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * Asserts that actual and expected have the same length and that every element satisfies
 * |actual[i] - expected[i]| <= tol * max(1, |expected[i]|) (absolute near 0, relative above 1).
 */
export function close(actual: ArrayLike<number>, expected: ArrayLike<number>, tol = 1e-12, what = ''): void {
  const at = what === '' ? '' : `${what}: `;
  assert.equal(actual.length, expected.length, `${at}got ${actual.length} values, expected ${expected.length}`);
  for (let i = 0; i < actual.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])),
      `${at}[${i}]: got ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

/** A new empty directory under the OS's temporary directory (name starting with prefix). */
export function tmp(prefix = 'coded-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}
