import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parse, UsageError } from '../../src/cli/args.js';

const opts = { 'grpc-port': { type: 'string' as const }, port: { type: 'string' as const }, json: { type: 'boolean' as const } };

test('command-line parsing: a negative number after a string option is its value (--grpc-port -1)', () => {
  const { values } = parse(['--grpc-port', '-1', '--port', '0', '--json'], opts, 'usage');
  assert.equal(values['grpc-port'], '-1');
  assert.equal(values.port, '0');
  assert.equal(values.json, true);
  assert.equal(parse(['--grpc-port=-5'], opts, 'usage').values['grpc-port'], '-5');
});

test('command-line parsing: unknown options and a missing value are usage errors', () => {
  assert.throws(
    () => parse(['--nope'], opts, 'the usage'),
    (e: unknown) => e instanceof UsageError && /nope/.test(e.message) && /the usage/.test(e.message),
  );
  assert.throws(() => parse(['--port', '--json'], opts, 'usage'), UsageError);
  // a negative number after a boolean option is not taken as its value
  assert.throws(() => parse(['--json', '-1'], opts, 'usage'), UsageError);
});
