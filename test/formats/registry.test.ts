// Choosing a reader by extension.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import { decodeTensorFile, extensionOf, formatForKey, TENSOR_FORMATS } from '../../src/formats/registry.js';
import { assertCaiError, readFixture } from './fixtures.js';

test('formats are found by extension, case-insensitively, in any path or URI', () => {
  assert.equal(formatForKey('1.pt')?.name, 'pt');
  assert.equal(formatForKey('s3://bucket/prefix/MODEL.PTH')?.name, 'pt');
  assert.equal(formatForKey('a/b.c/x.Npy')?.name, 'npy');
  assert.equal(formatForKey('x.npz')?.name, 'npz');
  assert.equal(formatForKey('weights.SafeTensors')?.name, 'safetensors');
  assert.equal(formatForKey('x.pt.json'), undefined);
  assert.equal(formatForKey('a.pt/noext'), undefined);
  assert.equal(formatForKey('.pt'), undefined);
  assert.equal(extensionOf('dir.v2/file'), '');
});

test('every extension belongs to exactly one format', () => {
  const all = TENSOR_FORMATS.flatMap((f) => f.extensions);
  assert.equal(new Set(all).size, all.length);
  assert.ok(all.every((e) => e === e.toLowerCase() && e.startsWith('.')));
});

test('an unknown extension is an unsupported error naming the key and the supported extensions', () => {
  const bytes = readFixture('single.pt');
  const err = assertCaiError(
    () => decodeTensorFile(bytes, 'data/1.csv'),
    ErrorCodes.unsupported,
    'data/1.csv',
    ['.csv'],
  );
  for (const ext of TENSOR_FORMATS.flatMap((f) => f.extensions)) assert.ok(err.message.includes(ext), ext);
  assertCaiError(() => decodeTensorFile(bytes, 'data/partition'), ErrorCodes.unsupported, 'data/partition');
});
