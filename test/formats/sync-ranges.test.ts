// The fetch policy of the synchronous ranged reader libhdf5 reads remote objects through: metadata reads
// fetch their page, a chunk read fetches the chunks expected after it in one request, nothing is fetched
// twice, and no request exceeds its bound.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SyncRanges } from '../../src/formats/hdf5/sync-ranges.js';

const SIZE = 1_000_000;
const FILE = Uint8Array.from({ length: SIZE }, (_, i) => (i * 7) % 251);

function reader(options = {}) {
  const fetched: [number, number][] = [];
  const r = new SyncRanges(
    SIZE,
    (a, b) => {
      fetched.push([a, b]);
      return FILE.slice(a, b);
    },
    { page: 1000, maxFetch: 100_000, keepBytes: 500_000, ...options },
  );
  const read = (pos: number, len: number) => {
    const out = new Uint8Array(len);
    assert.equal(r.read(out, 0, len, pos), Math.min(len, SIZE - pos));
    assert.deepEqual(out.subarray(0, Math.min(len, SIZE - pos)), FILE.subarray(pos, pos + len));
  };
  return { r, read, fetched };
}

test('small reads outside chunk reads fetch their aligned page, once', () => {
  const { read, fetched } = reader();
  read(0, 8);
  read(96, 400);
  read(1500, 100);
  assert.deepEqual(fetched, [
    [0, 1000],
    [1000, 2000],
  ]);
  // A read across two kept pages fetches nothing.
  read(900, 200);
  assert.equal(fetched.length, 2);
});

test('a chunk read fetches the chunks expected after it in one request; the next ones are already there', () => {
  const { r, read, fetched } = reader();
  r.expectChunks(4);
  for (let c = 0; c < 4; c++) read(10_000 + c * 3000, 3000);
  assert.deepEqual(fetched, [[10_000, 22_000]]);
  // A chunk larger than the estimate: only the missing bytes are fetched.
  r.expectChunks(1);
  read(21_000, 2000);
  assert.deepEqual(fetched.at(-1), [22_000, 23_000]);
});

test('a page never fetches again bytes a kept span holds, and no request exceeds maxFetch', () => {
  const { r, read, fetched } = reader();
  r.expectChunks(1);
  read(5000, 1200);
  r.expectChunks(0);
  read(6300, 10);
  assert.deepEqual(fetched, [
    [5000, 6200],
    [6200, 7000],
  ]);
  r.expectChunks(100);
  read(200_000, 5000);
  assert.deepEqual(fetched.at(-1), [200_000, 300_000], 'bounded by maxFetch');
  // A read bigger than maxFetch is fetched whole: libhdf5 needs every byte of it.
  r.expectChunks(0);
  read(400_000, 150_000);
  assert.deepEqual(fetched.at(-1), [400_000, 550_000]);
  // Reads past the end return what exists.
  read(SIZE - 10, 100);
});
