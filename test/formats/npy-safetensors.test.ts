// Format-specific behaviour of the .npy, .npz and .safetensors readers beyond the shared contract.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import { decodeNpy, decodeNpz } from '../../src/formats/npy/index.js';
import { decodeSafetensors } from '../../src/formats/safetensors/index.js';
import { assertCaiError, expected, readFixture } from './fixtures.js';

test('little-endian C-order .npy data is a view into the file; big-endian and Fortran data are copies', () => {
  const le = readFixture('float32.npy');
  assert.equal(decodeNpy(le, 'float32.npy').columns[0].data.buffer, le.buffer);
  for (const file of ['float64_be.npy', 'int32_fortran.npy', 'float32_fortran_be.npy']) {
    const bytes = readFixture(file);
    assert.notEqual(decodeNpy(bytes, file).columns[0].data.buffer, bytes.buffer, file);
  }
});

test('object arrays are refused without unpickling', () => {
  assertCaiError(
    () => decodeNpy(readFixture('object.npy'), 'object.npy'),
    ErrorCodes.unsupported,
    'object.npy',
    ['|O', 'pickle'],
  );
});

test('.npz columns follow archive order, stored members are views and deflated ones are inflated', () => {
  const stored = readFixture('dtypes.npz');
  const set = decodeNpz(stored, 'dtypes.npz');
  assert.equal(set.columns[set.names.indexOf('float32_le')].data.buffer, stored.buffer);
  const compressed = readFixture('compressed.npz');
  const comp = decodeNpz(compressed, 'compressed.npz');
  assert.deepEqual(
    comp.names,
    expected.files['compressed.npz'].columns.map((c) => c.name),
  );
  assert.ok(comp.columns.every((c) => c.data.buffer !== compressed.buffer));
});

test('an .npz member error names the archive and the member', () => {
  const bytes = readFixture('compressed.npz');
  // Damage the deflate stream of the first member: its data starts after a 30-byte header and the name.
  const nameLength = bytes[26] | (bytes[27] << 8);
  const extraLength = bytes[28] | (bytes[29] << 8);
  bytes.fill(0xff, 30 + nameLength + extraLength, 30 + nameLength + extraLength + 16);
  assertCaiError(() => decodeNpz(bytes, 'compressed.npz'), ErrorCodes.corrupt, 'compressed.npz', [
    'images.npy',
  ]);
});

test('safetensors columns follow data offsets, not header key order', () => {
  const set = decodeSafetensors(readFixture('tensors.safetensors'), 'tensors.safetensors');
  assert.notDeepEqual(
    set.names,
    [...set.names].sort(),
    'the fixture must order its data differently from its keys',
  );
  assert.deepEqual(
    set.names,
    expected.files['tensors.safetensors'].columns.map((c) => c.name),
  );
  assert.equal(set.columns[set.names.indexOf('b_bf16')].dtype, 'float32');
});

test('safetensors offsets beyond the data and unknown dtypes are refused', () => {
  assertCaiError(
    () => decodeSafetensors(readFixture('bad_offsets.safetensors'), 'bad_offsets.safetensors'),
    ErrorCodes.corrupt,
    'bad_offsets.safetensors',
    ['[8, 24)'],
  );
  assertCaiError(
    () => decodeSafetensors(readFixture('uint16.safetensors'), 'uint16.safetensors'),
    ErrorCodes.unsupported,
    'uint16.safetensors',
    ['U16', 'F32'],
  );
});
