// CAI's own HDF5 chunk index (src/formats/hdf5/chunk-index.ts) and the direct reads through it: each
// stored chunk where h5py's get_chunk_info says it is, and rows read directly (native zlib, JS unshuffle,
// LZF) equal, byte for byte and type for type, what libhdf5 (h5wasm) reads from the same file, over
// every layout h5py writes (libver earliest, v108 and latest: layout message v4 with its single-chunk,
// implicit, fixed-array, extensible-array and v2 B-tree indexes; dense-link groups) and the partial chunks
// at the edges. A damaged index block is an E_CORRUPT error, never wrong rows. Layouts the index does not
// cover are left to libhdf5, never read differently. Fixtures: scripts/fixtures/make_hdf5_layout_fixtures.py.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { LocalBytes, localReader, pagedReader, RemoteBytes } from '../../src/formats/hdf5/byte-sources.js';
import { Hdf5Index, NotCovered } from '../../src/formats/hdf5/chunk-index.js';
import { CaiError } from '../../src/errors.js';
import { DirectReader } from '../../src/formats/hdf5/direct-read.js';
import { arrayInfoOf } from '../../src/formats/hdf5/h5-file.js';
import { openHdf5, openRemoteHdf5, openThreadedHdf5 } from '../../src/formats/hdf5/index.js';
import '../../src/storage/register.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { startS3Server } from '../helpers/s3-server.js';
import { startRequestLog } from '../helpers/s3-request-log.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const SCRIPT = fileURLToPath(
  new URL('../../../scripts/fixtures/make_hdf5_layout_fixtures.py', import.meta.url),
);
const hasH5py = spawnSync('/usr/bin/python3', ['-c', 'import h5py'], { stdio: 'ignore' }).status === 0;
const DIR = `${FIXTURES}hdf5-layouts/`;
type Info = { offset: number[]; address: number; size: number; filterMask: number };
// Per file and chunked dataset, h5py's get_chunk_info of every stored chunk: [offset..., address, size, mask].
const EXPECTED = Object.fromEntries(
  Object.entries(
    JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8')) as Record<string, Record<string, number[][]>>,
  ).map(([file, sets]) => [
    file,
    Object.fromEntries(
      Object.entries(sets).map(([p, rows]) => [
        p,
        rows.map((r): Info => {
          const [address, size, filterMask] = r.slice(-3);
          return { offset: r.slice(0, -3), address, size, filterMask };
        }),
      ]),
    ),
  ]),
) as Record<string, Record<string, Info[]>>;

const indexOf = (name: string, file = `${DIR}${name}.h5`) => {
  const size = statSync(file).size;
  return new Hdf5Index(size, pagedReader(size, localReader(file), 4096), file);
};

/** The datasets of latest.h5 (layout message v4) read directly, and their chunk index. */
const V4 = {
  single: 'single chunk',
  single_gzip: 'single chunk, filtered',
  implicit: 'implicit',
  gzip_shuffle: 'fixed array, filtered',
  plain_chunked: 'fixed array',
  fa_max: 'fixed array sized by maximum dimensions',
  fa_paged: 'fixed array in pages, filtered',
  ea: 'extensible array with super blocks',
  ea_gzip: 'extensible array, filtered',
  ea_second: 'extensible array, unlimited second dimension',
  btree2: 'v2 B-tree of two levels',
  btree2_gzip: 'v2 B-tree, filtered',
} as const;

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

test('the chunk index finds every stored chunk where h5py get_chunk_info puts it (v1 and v2 object headers, symbol tables, compact links, nested groups, a two-level B-tree; layout v4: single chunk, implicit, fixed arrays with pages, extensible arrays with super blocks, v2 B-trees of two levels)', async () => {
  for (const path of Object.keys(V4)) assert.ok(EXPECTED.latest[path], path);
  for (const name of ['earliest', 'v108', 'latest']) {
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
      for (const [a, b] of [
        [rows, 3 * rows],
        [Math.floor(d.shape[0] / 2), d.shape[0] - 1],
        [d.shape[0] - 1, d.shape[0] + 5],
      ]) {
        const some = await d.chunks(a, b);
        assert.deepEqual(
          some.map(key).sort(),
          want
            .filter((c) => c.offset[0] >= a && c.offset[0] < b)
            .map(key)
            .sort(),
          `${name}: ${path} rows [${a}, ${b})`,
        );
      }
    }
  }
});

test('rows read through the chunk index equal libhdf5 reads byte for byte: gzip+shuffle, gzip, LZF, uncompressed chunked, contiguous, 1-D, 4-D, partial edge chunks, every v4 chunk index', async () => {
  for (const name of ['earliest', 'v108', 'latest']) {
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
        ...(name === 'latest' ? Object.keys(V4) : []),
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

test('what the index does not cover is left to libhdf5: unwritten chunks (v1 B-tree and extensible array), bool (enum) datasets', async () => {
  for (const [name, path] of [
    ['earliest', 'unwritten'],
    ['latest', 'ea_unwritten'],
    ['latest', 'fa_paged_unwritten'],
  ]) {
    const h5 = await openHdf5(`${DIR}${name}.h5`, name);
    const bytes = await LocalBytes.open(`${DIR}${name}.h5`);
    try {
      const direct = new DirectReader(indexOf(name), bytes);
      const unwritten = h5.arrays.find((a) => a.path === path);
      assert.ok(unwritten);
      // Rows in written chunks are read; rows in a chunk never written (fill value) are not.
      const written = path === 'fa_paged_unwritten' ? 10 : 16;
      sameArray(
        await direct.read(unwritten, 0, written, 40),
        h5.read(unwritten, 0, written),
        `${path}: written rows`,
      );
      // fa_paged_unwritten: a whole page (rows 1,024 to 1,099) never written.
      const [a, b] = path === 'fa_paged_unwritten' ? [1050, 1060] : [8, 24];
      assert.equal(await direct.read(unwritten, a, b, b), undefined);
      assert.equal(direct.fallbacks, 1);
      if (name === 'earliest') {
        const flags = h5.arrays.find((a) => a.path === 'flags');
        assert.ok(flags);
        assert.match((await direct.notCovered(flags)) ?? '', /datatype class 8/);
        assert.equal(await direct.read(flags, 0, 10, 10), undefined);
      }
    } finally {
      await bytes.close();
      h5.close();
    }
  }
  // Every dataset of a v4-layout file is read directly, contiguous ones too.
  const latest = indexOf('latest');
  assert.equal((await latest.dataset('contiguous')).kind, 'contiguous');
  for (const path of Object.keys(V4)) assert.equal((await latest.dataset(path)).kind, 'chunked', path);
});

test('a damaged index block is an E_CORRUPT error naming the file and the block (its lookup3 checksum), never rows read from it nor a silent fallback', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-h5-corrupt-'));
  try {
    const original = readFileSync(`${DIR}latest.h5`);
    const dense = readFileSync(`${DIR}dense.h5`);
    const cases: [string, Buffer, string, RegExp][] = [
      ['FAHD', original, 'fixed array header', /fixed array header/],
      ['FADB', original, 'fixed array data block', /fixed array data block/],
      ['EAHD', original, 'extensible array header', /extensible array header/],
      ['EAIB', original, 'extensible array index block', /extensible array index block/],
      ['EASB', original, 'extensible array super block', /extensible array super block/],
      ['EADB', original, 'extensible array data block', /extensible array data block/],
      ['BTLF', original, 'v2 B-tree leaf', /v2 B-tree leaf node/],
      ['BTIN', original, 'v2 B-tree internal node', /v2 B-tree internal node/],
      ['OHDR', original, 'object header', /object header/],
      ['\x89HDF', original, 'superblock', /superblock/],
      ['FRHP', dense, 'fractal heap header', /fractal heap header/],
      ['FHDB', dense, 'fractal heap direct block', /fractal heap direct block/],
      ['FHIB', dense, 'fractal heap indirect block', /fractal heap indirect block/],
    ];
    for (const [sig, source, what, message] of cases) {
      // The last block with that signature, a byte after its signature and version flipped (in the
      // superblock, the file consistency flags).
      const at = source.lastIndexOf(Buffer.from(sig, 'latin1'));
      assert.ok(at >= 0, sig);
      const body = Buffer.from(source);
      body[at + (what === 'superblock' ? 11 : 6)] ^= 0x5a;
      const file = path.join(dir, `${what.replaceAll(' ', '-')}.h5`);
      await writeFile(file, body);
      const index = indexOf('', file);
      const err = await (async () => {
        try {
          for (const d of await index.list()) {
            const layout = await index.dataset(d.path);
            if (layout.kind === 'chunked') await layout.chunks(0, Infinity);
          }
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      assert.ok(err instanceof CaiError, `${what}: ${String(err)}`);
      assert.equal(err.code, 'E_CORRUPT', what);
      assert.equal(err.object, file, what);
      assert.match(err.message, message, what);
      assert.match(err.message, /checksum/, what);
    }
    // Through the direct reader too: the error reaches the caller, libhdf5 does not read those rows.
    const at = original.lastIndexOf(Buffer.from('EADB', 'latin1'));
    const body = Buffer.from(original);
    body[at + 6] ^= 0x5a;
    const file = path.join(dir, 'direct.h5');
    await writeFile(file, body);
    const h5 = await openHdf5(`${DIR}latest.h5`, 'latest');
    const bytes = await LocalBytes.open(file);
    try {
      const direct = new DirectReader(indexOf('', file), bytes);
      const array = h5.arrays.find((a) => a.path === 'ea_gzip');
      assert.ok(array);
      await assert.rejects(
        (async () => {
          for (let s = 0; s < array.shape[0]; s += 50) await direct.read(array, s, s + 50, array.shape[0]);
        })(),
        (e) =>
          e instanceof CaiError && e.code === 'E_CORRUPT' && /extensible array data block/.test(e.message),
      );
      assert.equal(direct.fallbacks, 0);
    } finally {
      await bytes.close();
      h5.close();
    }
    // And through the reader the HDF5 source opens (the file's metadata index kept by path).
    const opened = await openThreadedHdf5(file, 'direct.h5', { rows: [0, 501] });
    try {
      const array = opened.arrays.find((a) => a.path === 'ea_gzip');
      assert.ok(array);
      await assert.rejects(
        (async () => {
          for (let s = 0; s < array.shape[0]; s += 50) await opened.read(array, s, s + 50);
        })(),
        (e) => e instanceof CaiError && e.code === 'E_CORRUPT' && e.object === file,
      );
    } finally {
      await opened.close();
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a file read through openThreadedHdf5 gives the same rows with the chunk index as through libhdf5 alone, including datasets left to libhdf5', async () => {
  for (const [name, paths] of [
    ['earliest', ['gzip_shuffle', 'four_d', 'contiguous', 'unwritten', 'flags']],
    ['latest', ['ea_gzip', 'ea_unwritten', 'fa_paged', 'btree2', 'implicit', 'single_gzip']],
  ] as const) {
    const file = `${DIR}${name}.h5`;
    const fast = await openThreadedHdf5(file, name, { rows: [0, 40] });
    const slow = await openThreadedHdf5(file, name, { rows: [0, 40], direct: false });
    try {
      for (const path of paths) {
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
  // A truncated file, and files holding compound datasets (a column per field: h5-special.ts lists them
  // through h5wasm). Groups in dense link storage (dense.h5: > 8 links, and track_order) are listed here.
  assert.deepEqual(notListed.sort(), ['hdf5/bad/truncated.h5', 'hdf5/types/clash.h5', 'hdf5/types/types.h5']);
  // The datasets of dense groups are read directly too (an extensible array under a track_order group; a
  // dataset among 201 links, whose heap has an indirect root block and whose name index two levels).
  const file = `${DIR}dense.h5`;
  const h5 = await openHdf5(file, 'dense');
  const bytes = await LocalBytes.open(file);
  try {
    const direct = new DirectReader(indexOf('dense'), bytes);
    for (const [p, want] of [
      ['dense/d11', BigInt64Array.from([11n, 12n, 13n])],
      ['ordered/mid', Float32Array.from([0, 2, 4, 6])],
      ['many/values', Int16Array.from([0, 1, 2, 3, 4, 5])],
    ] as const) {
      const d = h5.arrays.find((a) => a.path === p);
      assert.ok(d, p);
      assert.equal(await direct.notCovered(d), undefined, p);
      const n = d.shape[0];
      sameArray(await direct.read(d, 0, n, n), want, p);
      sameArray(await direct.read(d, 0, n, n), h5.read(d, 0, n), p);
    }
    assert.equal(direct.fallbacks, 0);
  } finally {
    await bytes.close();
    h5.close();
  }
});

test('on S3, rows of a v4 dataset fetch their chunks and only the index blocks over those rows (counted at the server)', async (t) => {
  const s3 = await startS3Server(['data']);
  const log = await startRequestLog(s3.endpoint);
  const local = await openHdf5(`${DIR}latest.h5`, 'latest');
  try {
    const store = new S3Store('s3://data/h5', { s3Endpoint: log.endpoint });
    await store.put('latest.h5', readFileSync(`${DIR}latest.h5`));
    // Metadata read exactly as asked (no pages), so what the index reads shows in the counts.
    for (const [p, a, b, wholeIndex] of [
      // 600 elements of 8 bytes: header, index block, a super block and one data block are read.
      ['ea', 480, 500, 600 * 8],
      // 1,100 elements of 13 bytes in two pages: the header, the block's prefix and one page.
      ['fa_paged', 1050, 1060, 1100 * 13],
    ] as const) {
      const f = await openRemoteHdf5(store, 'latest.h5', { rows: [a, b], ranges: { page: 0 } });
      try {
        const array = f.arrays.find((x) => x.path === p);
        assert.ok(array, p);
        const from = log.requests().length;
        sameArray(await f.read(array, a, b), local.read(array, a, b), `${p} [${a}, ${b})`);
        const gets = log
          .requests()
          .slice(from)
          .filter((r) => r.method === 'GET');
        const bytes = gets.reduce((n, r) => n + r.bytes, 0);
        const chunks = EXPECTED.latest[p]
          .filter((c) => c.offset[0] >= a && c.offset[0] < b)
          .reduce((n, c) => n + c.size, 0);
        const index = bytes - chunks;
        t.diagnostic(`${p} [${a}, ${b}): ${bytes} bytes in ${gets.length} GETs, ${chunks} of them chunks`);
        assert.ok(index >= 0 && index < wholeIndex / 3, `${p}: ${index} bytes of index of ${wholeIndex}`);
        assert.ok(gets.length <= 6, `${p}: ${gets.length} GETs`);
      } finally {
        await f.close();
      }
    }
  } finally {
    local.close();
    await log.stop();
    await s3.stop();
  }
});

/**
 * A file the fixture script writes at test time (`flag`: too big to commit) in `dir`, and CAI's index of
 * it; `metadata()` is how many bytes the index has read so far.
 */
function generatedIndex(dir: string, flag: string, name: string) {
  const file = path.join(dir, name);
  const made = spawnSync('/usr/bin/python3', [SCRIPT, flag, file], { encoding: 'utf8' });
  assert.equal(made.status, 0, made.stderr);
  const size = statSync(file).size;
  let read = 0;
  const bytes = localReader(file);
  const index = new Hdf5Index(size, (a, b) => ((read += b - a), bytes(a, b)), file);
  return { file, size, index, metadata: () => read };
}

test(
  'an extensible array past 131,072 chunks (data blocks split in pages, some never written) reads only the pages of the rows asked, equal to libhdf5',
  { skip: hasH5py ? false : 'needs /usr/bin/python3 with h5py (python3-h5py)' },
  async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-h5-big-ea-'));
    try {
      const { file, size, index, metadata } = generatedIndex(dir, '--big-extensible', 'big.h5');
      const d = await index.dataset('x');
      assert.equal(d.kind, 'chunked');
      if (d.kind !== 'chunked') return;
      // Rows [136500, 136600) lie in a paged data block: its header, index block, super block, the
      // block's prefix and one page of 1,024 addresses are read, not the index's 1 MB.
      const some = await d.chunks(136_500, 136_600);
      assert.deepEqual(
        some.map((c) => c.offset[0]),
        Array.from({ length: 100 }, (_, i) => 136_500 + i),
      );
      t.diagnostic(`rows [136500, 136600): ${metadata()} bytes of metadata read (file ${size})`);
      assert.ok(metadata() < 16 * 1024, `read ${metadata()} bytes of metadata`);
      // Every written chunk of the paged data blocks, and only those (pages never written hold none).
      assert.equal((await d.chunks(131_056, 140_000)).length, 133_000 - 131_056 + 100 + 10);
      const h5 = await openHdf5(file, 'big');
      const bytes = await LocalBytes.open(file);
      try {
        const direct = new DirectReader(index, bytes);
        const x = h5.arrays[0];
        for (const [a, b] of [
          [0, 1000],
          [130_000, 133_000],
          [136_500, 136_600],
          [139_990, 140_000],
        ])
          sameArray(await direct.read(x, a, b, b), h5.read(x, a, b), `rows [${a}, ${b})`);
        assert.equal(direct.fallbacks, 0);
        // Rows in pages never written are libhdf5's (fill values).
        assert.equal(await direct.read(x, 133_000, 133_010, 133_010), undefined);
        assert.equal(await direct.read(x, 136_400, 136_500, 136_500), undefined);
        assert.equal(direct.fallbacks, 2);
      } finally {
        await bytes.close();
        h5.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);

test(
  'a v2 B-tree of three levels (8,000 chunks, two unlimited dimensions): every chunk found, rows equal libhdf5, only the nodes over the rows read',
  { skip: hasH5py ? false : 'needs /usr/bin/python3 with h5py (python3-h5py)' },
  async (t) => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-h5-big-bt2-'));
    try {
      const { file, size, index, metadata } = generatedIndex(dir, '--big-btree', 'bt.h5');
      const d = await index.dataset('x');
      assert.equal(d.kind, 'chunked');
      if (d.kind !== 'chunked') return;
      const some = await d.chunks(40, 45);
      assert.deepEqual(
        some.map((c) => c.offset.join(',')).sort(),
        Array.from({ length: 5 * 80 }, (_, i) => `${40 + Math.floor(i / 80)},${i % 80}`).sort(),
      );
      // The header, the root, one or two nodes under it and the leaves over rows 40-44: a fraction of
      // the 8,000 records of 24 bytes.
      t.diagnostic(`rows [40, 45) of 100: ${metadata()} bytes of metadata read (file ${size})`);
      assert.ok(metadata() < 40 * 1024, `read ${metadata()} bytes of metadata`);
      const all = await d.chunks(0, Infinity);
      assert.equal(all.length, 8000);
      assert.equal(new Set(all.map((c) => c.address)).size, 8000);
      const h5 = await openHdf5(file, 'bt');
      const bytes = await LocalBytes.open(file);
      try {
        const direct = new DirectReader(index, bytes);
        const x = h5.arrays[0];
        for (const [a, b] of [
          [0, 100],
          [37, 59],
          [99, 100],
        ])
          sameArray(await direct.read(x, a, b, b), h5.read(x, a, b), `rows [${a}, ${b})`);
        assert.equal(direct.fallbacks, 0);
      } finally {
        await bytes.close();
        h5.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  },
);
