// The Zarr source's direct chunk reads (src/formats/zarr/direct.ts, readRowChunks in zarr-dataset.ts):
// arrays zarr-python 2.13 wrote in each chunk layout (scripts/fixtures/make_zarr_direct_fixtures.py) read
// back to NumPy's bytes in batches cut across chunks and along them, with and without the machine's
// codec libraries; the plain layouts never go through zarrita's chunk pipeline, the others always do;
// v3 arrays written by zarrita likewise; a damaged or wrong-sized chunk is an error naming it.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as zarr from 'zarrita';
import { ErrorCodes } from '../../src/errors.js';
import { useNativeLz4, useSystemLibraries } from '../../src/formats/codecs/index.js';
import { directChunks } from '../../src/formats/zarr/direct.js';
import { useCaiCodecs, zarrStores } from '../../src/formats/zarr/index.js';
import { FileStore } from '../../src/storage/file-store.js';
import type { Store } from '../../src/storage/store.js';
import { concatColumn, FIXTURES, readAll, rejectsWith } from './helpers.js';

const DIR = `${FIXTURES}zarr-direct`;
interface Expected {
  shape: number[];
  dtype: string;
  sha256: string;
}
const EXPECTED = JSON.parse(await readFile(`${DIR}/expected.json`, 'utf8')) as Record<string, Expected>;
const DIRECT = [
  'blosc_u1',
  'blosc_f8_slash',
  'blosc_zstd_f8',
  'zstd_f8',
  'lz4_i2',
  'gzip_f4',
  'zlib_i2',
  'raw_i2',
  'gaps',
];
const ZARRITA = ['big_endian_f8', 'delta_i2', 'order_f_i2'];

const sha = (a: ArrayBufferView) =>
  createHash('sha256')
    .update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength))
    .digest('hex');

/** Rows `[first, last)` of one array of `root`, read through the Zarr source in batches of `batch`. */
async function readRows(store: Store, root: string, name: string, batch: number, rows?: [number, number]) {
  const stream = await zarrStores.open(
    store,
    { id: 'p', key: root, bytes: 0, source: 'zarr', ...(rows ? { rows } : {}) },
    { datasets: [name] } as never,
  );
  return concatColumn(await readAll(stream, batch), name);
}

// zarrita's chunk pipeline, counted: the direct reads must not use it.
let getChunks = 0;
const original = zarr.Array.prototype.getChunk;
zarr.Array.prototype.getChunk = function (this: zarr.Array<zarr.DataType>, ...args) {
  getChunks++;
  return original.apply(this, args);
} as typeof original;

test('every layout reads back the bytes zarr-python wrote, in batches across and along chunks; only the plain ones skip zarrita', async () => {
  const store = new FileStore(DIR);
  assert.deepEqual([...DIRECT, ...ZARRITA].sort(), Object.keys(EXPECTED).sort());
  for (const name of [...DIRECT, ...ZARRITA]) {
    const e = EXPECTED[name];
    for (const batch of [3, 8, 18]) {
      getChunks = 0;
      const all = await readRows(store, 'layouts.zarr', name, batch);
      assert.equal(sha(all), e.sha256, `${name} in batches of ${batch}`);
      if (DIRECT.includes(name)) assert.equal(getChunks, 0, `${name}: no chunk through zarrita`);
      else assert.ok(getChunks > 0, `${name}: read through zarrita`);
    }
    // A row range starting and ending inside chunks.
    const per = e.shape.slice(1).reduce((s, d) => s * d, 1);
    const full = await readRows(store, 'layouts.zarr', name, 18);
    const part = await readRows(store, 'layouts.zarr', name, 4, [5, 14]);
    assert.equal(sha(part), sha(full.subarray(5 * per, 14 * per)), `${name} rows [5, 14)`);
  }
});

test('the same bytes without the machine libraries: lz4-napi, then numcodecs WebAssembly', async (t) => {
  t.after(() => {
    useSystemLibraries(true);
    useNativeLz4(true);
  });
  const store = new FileStore(DIR);
  for (const [system, napi] of [
    [false, true],
    [false, false],
  ]) {
    useSystemLibraries(system);
    useNativeLz4(napi);
    for (const name of DIRECT) {
      const all = await readRows(store, 'layouts.zarr', name, 8);
      assert.equal(sha(all), EXPECTED[name].sha256, `${name}, lz4-napi ${napi ? 'on' : 'off'}`);
    }
  }
});

test('chunk keys and codecs of the direct layouts come from their metadata; other layouts have none', async () => {
  const store = new FileStore(DIR);
  const meta = async (key: string) => new Uint8Array(await readFile(path.join(DIR, 'layouts.zarr', key)));
  const lookups = new Map<string, Uint8Array>();
  for (const name of Object.keys(EXPECTED)) lookups.set(`/${name}/.zarray`, await meta(`${name}/.zarray`));
  const want: Record<string, [string, string | undefined] | undefined> = {
    blosc_u1: ['/blosc_u1/3.0.0.0', 'blosc'],
    blosc_f8_slash: ['/blosc_f8_slash/3/0', 'blosc'],
    zstd_f8: ['/zstd_f8/3.0', 'zstd'],
    lz4_i2: ['/lz4_i2/3.0', 'lz4'],
    raw_i2: ['/raw_i2/3.0', undefined],
    big_endian_f8: undefined,
    delta_i2: undefined,
    order_f_i2: undefined,
  };
  for (const [name, expected] of Object.entries(want)) {
    const arr = await zarr.open(zarr.root(zarrLike(store)).resolve(`layouts.zarr/${name}`), {
      kind: 'array',
    });
    const a = { path: `/${name}` as const, shape: arr.shape, chunks: arr.chunks, dtype: String(arr.dtype) };
    const d = directChunks(a, (k) => lookups.get(k));
    assert.deepEqual(d ? [d.key(3), d.codec] : undefined, expected, name);
  }
  // Metadata that disagrees with zarrita's reading of it (another shape) is not trusted.
  const arr = await zarr.open(zarr.root(zarrLike(store)).resolve('layouts.zarr/zstd_f8'), { kind: 'array' });
  const a = { path: '/zstd_f8' as const, shape: [19, 5], chunks: arr.chunks, dtype: String(arr.dtype) };
  assert.equal(
    directChunks(a, (k) => lookups.get(k)),
    undefined,
  );
});

/** A zarrita store over a CAI store, for opening arrays in a test. */
function zarrLike(store: Store) {
  return {
    get: async (key: `/${string}`) => store.get(key.slice(1)).catch(() => undefined),
  };
}

test('v3 arrays written by zarrita: bytes+zstd and bytes alone read directly, a transpose through zarrita', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-zarr3-direct-'));
  try {
    const files = new Map<string, Uint8Array>();
    const mem = {
      get: async (k: `/${string}`) => files.get(k),
      set: async (k: `/${string}`, v: Uint8Array) => void files.set(k, v),
    };
    const values = Float64Array.from({ length: 13 * 4 }, (_, i) => Math.sin(i) * 100);
    // zarrita encodes with its own codecs; CAI's registry only decodes.
    useCaiCodecs(false);
    const layouts = {
      zst: [
        { name: 'bytes', configuration: { endian: 'little' } },
        { name: 'zstd', configuration: { level: 1, checksum: false } },
      ],
      plain: [{ name: 'bytes', configuration: { endian: 'little' } }],
      transposed: [
        { name: 'transpose', configuration: { order: [1, 0] } },
        { name: 'bytes', configuration: { endian: 'little' } },
      ],
    };
    try {
      for (const [name, codecs] of Object.entries(layouts)) {
        const arr = await zarr.create(zarr.root(mem).resolve(name), {
          shape: [13, 4],
          chunkShape: [5, 4],
          dtype: 'float64',
          codecs,
        });
        await zarr.set(arr, null, { data: values, shape: [13, 4], stride: [4, 1] });
      }
    } finally {
      useCaiCodecs(true);
    }
    for (const [k, v] of files) {
      const file = path.join(dir, 'v3.zarr', k);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, v);
    }
    assert.ok(files.has('/zst/c/2/0'), 'v3 default chunk keys');
    const store = new FileStore(dir);
    for (const name of Object.keys(layouts)) {
      getChunks = 0;
      const all = await readRows(store, 'v3.zarr', name, 5);
      assert.deepEqual(all, values, name);
      if (name === 'transposed') assert.ok(getChunks > 0, name);
      else assert.equal(getChunks, 0, name);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a damaged chunk, or one of the wrong size, is an error naming the array, its rows and the chunk', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-zarr-damaged-'));
  try {
    await cp(`${DIR}/layouts.zarr`, path.join(dir, 'layouts.zarr'), { recursive: true });
    const at = (...p: string[]) => path.join(dir, 'layouts.zarr', ...p);
    const store = new FileStore(dir);
    // Cut short: Blosc's header says more bytes than there are.
    const chunk = await readFile(at('blosc_u1', '1.0.0.0'));
    await writeFile(at('blosc_u1', '1.0.0.0'), chunk.subarray(0, chunk.length - 20));
    await rejectsWith(() => readRows(store, 'layouts.zarr', 'blosc_u1', 8), ErrorCodes.corrupt, [
      'array "/blosc_u1" rows [0, 8)',
      'chunk blosc_u1/1.0.0.0',
      'damaged Blosc chunk',
    ]);
    // A whole, valid chunk of another array: 160 decoded bytes where blosc_u1's chunks hold 192.
    await writeFile(at('blosc_u1', '1.0.0.0'), await readFile(at('blosc_f8_slash', '1', '0')));
    await rejectsWith(() => readRows(store, 'layouts.zarr', 'blosc_u1', 8), ErrorCodes.corrupt, [
      'chunk blosc_u1/1.0.0.0',
      'decodes to 160 bytes, not the 192 of a chunk',
    ]);
    // Stored uncompressed, one byte short.
    const raw = await readFile(at('raw_i2', '0.0'));
    await writeFile(at('raw_i2', '0.0'), raw.subarray(1));
    await rejectsWith(() => readRows(store, 'layouts.zarr', 'raw_i2', 5), ErrorCodes.corrupt, [
      'chunk raw_i2/0.0 holds 29 bytes, not the 30 of a chunk',
    ]);
    // LZ4 whose block ends early: liblz4 rejects it.
    const lz4 = await readFile(at('lz4_i2', '0.0'));
    await writeFile(at('lz4_i2', '0.0'), lz4.subarray(0, lz4.length - 3));
    await rejectsWith(() => readRows(store, 'layouts.zarr', 'lz4_i2', 4), ErrorCodes.corrupt, [
      'chunk lz4_i2/0.0',
      'damaged lz4 chunk',
    ]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('a released batch lends its memory to a later batch; one still held never does', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-zarr-recycle-'));
  try {
    // Rows of 4 KiB, batches of 24 rows (96 KiB): large enough for the pool.
    const files = new Map<string, Uint8Array>();
    const mem = {
      get: async (k: `/${string}`) => files.get(k),
      set: async (k: `/${string}`, v: Uint8Array) => void files.set(k, v),
    };
    const arr = await zarr.create(zarr.root(mem).resolve('img'), {
      shape: [96, 64, 64],
      chunkShape: [8, 64, 64],
      dtype: 'uint8',
      codecs: [{ name: 'bytes', configuration: {} }],
    });
    const values = Uint8Array.from({ length: 96 * 4096 }, (_, i) => (i * 7 + (i >> 12)) & 255);
    await zarr.set(arr, null, { data: values, shape: [96, 64, 64], stride: [4096, 64, 1] });
    for (const [k, v] of files) {
      const file = path.join(dir, 'r.zarr', k);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, v);
    }
    const stream = await zarrStores.open(
      new FileStore(dir),
      { id: 'p', key: 'r.zarr', bytes: 0, source: 'zarr' },
      { datasets: ['img'] } as never,
    );
    const seen: { buffer: ArrayBufferLike; copy: Uint8Array; held: Uint8Array }[] = [];
    let i = 0;
    for await (const b of stream.batches(24)) {
      const data = b.rows.columns[0].data as Uint8Array;
      // Rows span their whole buffer: an inference thread can take them without a copy.
      assert.equal(data.byteLength, data.buffer.byteLength);
      seen.push({ buffer: data.buffer, copy: data.slice(), held: data });
      // The first batch is held to the end; the others are released as soon as they are read.
      if (i++ > 0) b.release?.();
    }
    assert.equal(seen.length, 4);
    assert.ok(
      seen.slice(1).every((s) => s.buffer !== seen[0].buffer),
      'a held batch is never reused',
    );
    assert.equal(seen[2].buffer, seen[1].buffer, 'a released batch is reused');
    assert.deepEqual(seen[0].held, seen[0].copy, 'the held batch still holds its rows');
    assert.deepEqual(
      seen.map((s) => s.copy),
      [0, 1, 2, 3].map((k) => values.subarray(k * 24 * 4096, (k + 1) * 24 * 4096)),
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
