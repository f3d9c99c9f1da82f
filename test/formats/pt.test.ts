// torch.save archives and the restricted unpickler: refusals, damage, views and zero-copy.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { test } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import {
  decodePt,
  PyDict,
  PyObject,
  torchHooks,
  unpickle,
  type PyValue,
} from '../../src/formats/pt/index.js';
import { assertCaiError, expected, readFixture } from './fixtures.js';

test('a CAI partition decodes to three zero-copy columns over the file bytes', () => {
  const bytes = readFixture('partition.pt');
  const set = decodePt(bytes, 'partition.pt');
  assert.deepEqual(set.names, ['0', '1', '2']);
  assert.equal(set.items, 6);
  for (const column of set.columns) assert.equal(column.data.buffer, bytes.buffer);
});

test('contiguous views (an offset slice) stay zero-copy; strided ones are new arrays', () => {
  const bytes = readFixture('views.pt');
  const set = decodePt(bytes, 'views.pt');
  const byName = new Map(set.names.map((n, i) => [n, set.columns[i]]));
  assert.equal(byName.get('offset')?.data.buffer, bytes.buffer);
  for (const name of ['transposed', 'step', 'offset_step', 'expanded']) {
    assert.notEqual(byName.get(name)?.data.buffer, bytes.buffer, name);
  }
});

for (const [file, global] of Object.entries(expected.refused_globals).filter(([f]) => f.endsWith('.pt'))) {
  test(`${file}: the pickle's request for ${global} is refused and nothing runs`, () => {
    rmSync(expected.marker, { force: true });
    const err = assertCaiError(() => decodePt(readFixture(file), file), ErrorCodes.pickleGlobal, file, [
      `"${global}"`,
      'will not run',
      'tensors only',
    ]);
    assert.match(err.message, /re-save/i);
    assert.equal(existsSync(expected.marker), false);
  });
}

for (const [file, global] of Object.entries(expected.refused_globals).filter(([f]) => f.endsWith('.pkl'))) {
  test(`${file}: a bare pickle asking for ${global} is refused by the torch allow-list`, () => {
    const hooks = torchHooks(file, false, () => undefined);
    assertCaiError(() => unpickle(readFixture(file), file, hooks), ErrorCodes.pickleGlobal, file, [
      `"${global}"`,
    ]);
    assert.equal(existsSync(expected.marker), false);
  });
}

/** The JSON form the fixture script gives plain Python data (see canon() there). */
function canon(v: PyValue): unknown {
  if (v === null || typeof v === 'boolean') return v;
  if (typeof v === 'bigint') return `int:${v}`;
  if (typeof v === 'number') return Number.isInteger(v) ? `int:${v}` : v;
  if (typeof v === 'string') return `str:${v}`;
  if (v instanceof Uint8Array) return `bytes:${Buffer.from(v).toString('hex')}`;
  if (Array.isArray(v)) return v.map(canon);
  if (v instanceof PyDict) return { dict: [...v.entries].map(([k, x]) => [canon(k), canon(x)]) };
  throw new Error(`unexpected ${(v as PyObject).pyName}`);
}

for (const [file, value] of Object.entries(expected.pickles)) {
  test(`${file}: the unpickler rebuilds Python's own pickle of plain data`, () => {
    const refuseAll = {
      findGlobal: (m: string, n: string): PyValue => assert.fail(`asked for ${m}.${n}`),
      persistentLoad: (): PyValue => assert.fail('asked for a persistent id'),
    };
    assert.deepEqual(canon(unpickle(readFixture(file), file, refuseAll)), value);
  });
}

test('memoized objects come back shared, as Python built them', () => {
  const refuseAll = { findGlobal: (): PyValue => null, persistentLoad: (): PyValue => null };
  const root = unpickle(readFixture('pickle_p2.pkl'), 'p2', refuseAll) as PyDict;
  const shared = root.entries.get('shared') as PyValue[];
  assert.equal(shared[0], shared[1]);
});

test('the legacy non-zip torch format is refused with a way out', () => {
  assertCaiError(() => decodePt(readFixture('legacy.pt'), 'legacy.pt'), ErrorCodes.unsupported, 'legacy.pt', [
    'legacy',
    'torch.save',
  ]);
});

test('a truncated archive, a pickle that ends early and a short storage are corrupt', () => {
  assertCaiError(
    () => decodePt(readFixture('truncated.pt'), 'truncated.pt'),
    ErrorCodes.corrupt,
    'truncated.pt',
  );
  assertCaiError(
    () => decodePt(readFixture('truncated_pickle.pt'), 'truncated_pickle.pt'),
    ErrorCodes.corrupt,
    'truncated_pickle.pt',
    ['ends early'],
  );
  assertCaiError(
    () => decodePt(readFixture('short_storage.pt'), 'short_storage.pt'),
    ErrorCodes.corrupt,
    'short_storage.pt',
    ['storage "0"'],
  );
});

test('bytes that are neither a zip nor a pickle are corrupt, not a crash', () => {
  assertCaiError(() => decodePt(new TextEncoder().encode('hello'), 'x.pt'), ErrorCodes.corrupt, 'x.pt');
  assertCaiError(() => decodePt(new Uint8Array(0), 'empty.pt'), ErrorCodes.corrupt, 'empty.pt');
});
