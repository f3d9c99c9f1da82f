// CAI's own HDF5 chunk index (src/formats/hdf5/chunk-index.ts) and the direct reads through it: each
// stored chunk where h5py's get_chunk_info says it is, and rows read directly (native zlib, JS unshuffle,
// LZF) equal, byte for byte and type for type, what libhdf5 (h5wasm) reads from the same file, over
// every layout h5py writes by default and the partial chunks at the edges. Layouts the index does not
// cover are left to libhdf5, never read differently. Fixtures: scripts/fixtures/make_hdf5_layout_fixtures.py.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LocalBytes, localReader, pagedReader, RemoteBytes } from '../../src/formats/hdf5/byte-sources.js';
import { Hdf5Index, NotCovered } from '../../src/formats/hdf5/chunk-index.js';
import { DirectReader } from '../../src/formats/hdf5/direct-read.js';
import { arrayInfoOf } from '../../src/formats/hdf5/h5-file.js';
import { openHdf5, openThreadedHdf5 } from '../../src/formats/hdf5/index.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const DIR = `${FIXTURES}hdf5-layouts/`;
type Info = { offset: number[]; address: number; size: number; filterMask: number };
const EXPECTED = JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8')) as Record<
  string,
  Record<string, Info[]>
>;

const indexOf = (name: string, file = `${DIR}${name}.h5`) => {
  const size = statSync(file).size;
  return new Hdf5Index(size, pagedReader(size, localReader(file), 4096));
};

const sameArray = (got: unknown, want: unknown, what: string) => {
  assert.equal((got as object).constructor, (want as object).constructor, `${what}: type`);
  const g = got as ArrayBufferView;
  const w = want as ArrayBufferView;
  assert.deepEqual(
    Buffer.from(g.buffer, g.byteOffset, g.byteLength),
    Buffer.from(w.buffer, w.byteOffset, w.byteLength),
    `${what}: bytes`,
  );
};

test('the chunk index finds every stored chunk where h5py get_chunk_info puts it (v1 and v2 object headers, symbol tables, compact links, nested groups, a two-level B-tree)', async () => {
  for (const name of ['earliest', 'v108']) {
    const index = indexOf(name);
    for (const [path, want] of Object.entries(EXPECTED[name])) {
      const d = await index.dataset(path);
      assert.equal(d.kind, 'chunked', path);
      if (d.kind !== 'chunked') continue;
      const got = await d.chunks(0, Infinity);
      const key = (c: { offset: readonly number[] }) => c.offset.join(',');
      const sorted = [...got].sort((a, b) => a.address - b.address);
      assert.deepEqual(
        sorted.map((c) => ({
          offset: [...c.offset],
          address: c.address,
          size: c.size,
          filterMask: c.filterMask,
        })),
        [...want].sort((a, b) => a.address - b.address),
        `${name}: ${path}`,
      );
      // Only the chunks of the rows asked are listed.
      const rows = d.chunk[0];
      const some = await d.chunks(rows, 3 * rows);
      assert.deepEqual(
        some.map(key).sort(),
        want
          .filter((c) => c.offset[0] >= rows && c.offset[0] < 3 * rows)
          .map(key)
          .sort(),
        `${name}: ${path} rows [${rows}, ${3 * rows})`,
      );
    }
  }
});

test('rows read through the chunk index equal libhdf5 reads byte for byte: gzip+shuffle, gzip, LZF, uncompressed chunked, contiguous, 1-D, 4-D, partial edge chunks', async () => {
  for (const name of ['earliest', 'v108']) {
    const file = `${DIR}${name}.h5`;
    const h5 = await openHdf5(file, name);
    const bytes = await LocalBytes.open(file);
    try {
      const direct = new DirectReader(indexOf(name), bytes);
      const covered = [
        'gzip_shuffle',
        'gzip',
        'lzf',
        'plain_chunked',
        'contiguous',
        'one_d',
        'four_d',
        'group/inner/values',
        ...(name === 'earliest' ? ['many_chunks'] : []),
      ];
      for (const path of covered) {
        const array = h5.arrays.find((a) => a.path === path);
        assert.ok(array, path);
        assert.equal(await direct.notCovered(array), undefined, `${name}: ${path} is read directly`);
        const n = array.shape[0];
        // The whole dataset, a range inside chunks, and consecutive batches of 3 and 7 rows (chunks
        // shared by two batches are kept decoded between them).
        const ranges: [number, number][] = [
          [0, n],
          [1, Math.min(n, 13)],
          [n - 1, n],
        ];
        for (const step of [3, 7]) for (let s = 0; s < n; s += step) ranges.push([s, Math.min(n, s + step)]);
        for (const [a, b] of ranges) {
          const got = await direct.read(array, a, b, n);
          assert.ok(got, `${name}: ${path} [${a}, ${b}) read directly`);
          // h5wasm carries no LZF filter: h5py wrote arange(120) // 5 in rows of 3.
          const want =
            path === 'lzf'
              ? Int32Array.from({ length: (b - a) * 3 }, (_, i) => Math.floor((a * 3 + i) / 5))
              : h5.read(array, a, b);
          sameArray(got, want, `${name}: ${path} [${a}, ${b})`);
        }
      }
      assert.equal(direct.fallbacks, 0);
    } finally {
      await bytes.close();
      h5.close();
    }
  }
});

test('what the index does not cover is left to libhdf5: unwritten chunks, bool (enum) datasets, v4 chunk indexes', async () => {
  const earliest = await openHdf5(`${DIR}earliest.h5`, 'earliest');
  const bytes = await LocalBytes.open(`${DIR}earliest.h5`);
  try {
    const direct = new DirectReader(indexOf('earliest'), bytes);
    const unwritten = earliest.arrays.find((a) => a.path === 'unwritten');
    assert.ok(unwritten);
    // Rows in written chunks are read; rows in a chunk never written (fill value) are not.
    sameArray(await direct.read(unwritten, 0, 16, 40), earliest.read(unwritten, 0, 16), 'written rows');
    assert.equal(await direct.read(unwritten, 8, 24, 40), undefined);
    assert.equal(direct.fallbacks, 1);
    const flags = earliest.arrays.find((a) => a.path === 'flags');
    assert.ok(flags);
    assert.match((await direct.notCovered(flags)) ?? '', /datatype class 8/);
    assert.equal(await direct.read(flags, 0, 10, 10), undefined);
  } finally {
    await bytes.close();
    earliest.close();
  }
  const latest = indexOf('latest');
  await assert.rejects(
    latest.dataset('gzip'),
    (err) => err instanceof NotCovered && /version 4/.test(err.message),
  );
  // Contiguous datasets of a v4-layout file are still read directly.
  assert.equal((await latest.dataset('contiguous')).kind, 'contiguous');
});

test('a file read through openThreadedHdf5 gives the same rows with the chunk index as through libhdf5 alone, including datasets left to libhdf5', async () => {
  const file = `${DIR}earliest.h5`;
  const fast = await openThreadedHdf5(file, 'earliest', { rows: [0, 40] });
  const slow = await openThreadedHdf5(file, 'earliest', { rows: [0, 40], direct: false });
  try {
    for (const path of ['gzip_shuffle', 'four_d', 'contiguous', 'unwritten', 'flags']) {
      const array = fast.arrays.find((a) => a.path === path);
      assert.ok(array, path);
      const n = Math.min(array.shape[0], 40);
      for (let s = 0; s < n; s += 8) {
        const e = Math.min(n, s + 8);
        sameArray(await fast.read(array, s, e), await slow.read(array, s, e), `${path} [${s}, ${e})`);
      }
    }
  } finally {
    await fast.close();
    await slow.close();
  }
});

test('remote chunk bytes: one GET takes the chunks read now and those the partition reads next, within the bound; nothing is fetched twice', async () => {
  const file = new Uint8Array(100_000).map((_, i) => i % 251);
  const gets: [number, number][] = [];
  const src = new RemoteBytes(
    async (a, b) => {
      gets.push([a, b]);
      return file.slice(a, b);
    },
    30_000,
    1_000_000,
  );
  const chunk = (i: number) => ({ start: i * 1000, end: i * 1000 + 900 });
  const got = await src.get([chunk(0), chunk(1)], [chunk(2), chunk(3), chunk(40), chunk(41)]);
  assert.deepEqual(got[1], file.slice(1000, 1900));
  // Gaps of 100 bytes are bridged; the chunks at 40 000 are too far and wait for their turn.
  assert.deepEqual(gets, [[0, 3900]]);
  await src.get([chunk(2), chunk(3)], [chunk(40), chunk(41)]);
  assert.equal(gets.length, 1);
  await src.get([chunk(40)], [chunk(41), ...Array.from({ length: 50 }, (_, i) => chunk(42 + i))]);
  // Bounded by 30 000 bytes a request.
  assert.deepEqual(gets[1], [40_000, 69_900]);
});

test('the datasets CAI lists itself (so libhdf5 is not loaded) are those h5wasm lists, in the same order with the same types, for every HDF5 fixture; files it cannot list are left to h5wasm', async () => {
  const files = readdirSync(FIXTURES, { recursive: true, encoding: 'utf8' })
    .filter((f) => /\.(h5|hdf5)$/.test(f))
    .map((f) => `${FIXTURES}${f}`);
  assert.ok(files.length >= 10, files.join(', '));
  const notListed: string[] = [];
  for (const file of files) {
    let listed;
    try {
      listed = (await indexOf('', file).list()).map((d) =>
        arrayInfoOf(d.path, { ...d.type, shape: d.shape, chunks: d.chunks }),
      );
    } catch (err) {
      assert.ok(err instanceof NotCovered, `${file}: ${String(err)}`);
      notListed.push(file.slice(FIXTURES.length));
      continue;
    }
    const h5 = await openHdf5(file, file);
    try {
      assert.deepEqual(listed, h5.arrays, file);
    } finally {
      h5.close();
    }
  }
  // Dense link storage (libver latest, > 8 links), a truncated file, and files holding compound datasets
  // (a column per field: h5-special.ts lists them through h5wasm).
  assert.deepEqual(notListed.sort(), [
    'hdf5-layouts/dense.h5',
    'hdf5/bad/truncated.h5',
    'hdf5/types/clash.h5',
    'hdf5/types/types.h5',
  ]);
  const viaH5wasm = await openThreadedHdf5(`${DIR}dense.h5`, 'dense');
  try {
    const d = viaH5wasm.arrays.find((a) => a.path === 'dense/d11');
    assert.ok(d);
    assert.deepEqual([...((await viaH5wasm.read(d, 0, 3)) as BigInt64Array)], [11n, 12n, 13n]);
  } finally {
    await viaH5wasm.close();
  }
});
