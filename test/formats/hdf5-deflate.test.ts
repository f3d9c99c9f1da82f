// Inflating into a given buffer (src/formats/codecs/deflate.ts) with the machine's libdeflate (through
// koffi, on its threads) and with Node's zlib: the same bytes, and the same refusals of a stream that is
// damaged, too short or too long. HDF5 chunks h5py wrote with gzip, gzip+shuffle and gzip level 9 read
// through the chunk index (decoded in place into the batch, or apart and copied) equal what h5py reads,
// both ways, locally and from a loopback S3 server; a damaged chunk is E_CORRUPT naming the file, the
// dataset and the chunk, on both paths (h5py reads two of those three damaged chunks without a word).
// Fixtures: scripts/fixtures/make_hdf5_deflate_fixtures.py.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import zlib from 'node:zlib';
import { deflateBackend, inflateInto, InflateError } from '../../src/formats/codecs/deflate.js';
import { codecBackends } from '../../src/formats/codecs/index.js';
import { useSystemLibraries } from '../../src/formats/codecs/system-library.js';
import { LocalBytes, localReader, pagedReader } from '../../src/formats/hdf5/byte-sources.js';
import { Hdf5Index } from '../../src/formats/hdf5/chunk-index.js';
import { DirectReader } from '../../src/formats/hdf5/direct-read.js';
import { openRemoteHdf5, openThreadedHdf5, type Hdf5Reader } from '../../src/formats/hdf5/index.js';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { startS3Server } from '../helpers/s3-server.js';
import { uploadTree } from '../helpers/s3-upload.js';

const DIR = fileURLToPath(new URL('../../../test/fixtures/hdf5-deflate/', import.meta.url));
const EXPECTED = JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8')) as Record<string, string>;
const BOTH = [true, false] as const;
const sha = (b: ArrayBufferView) =>
  createHash('sha256')
    .update(new Uint8Array(b.buffer, b.byteOffset, b.byteLength))
    .digest('hex');

after(() => useSystemLibraries(true));

// Noisy bytes, as image chunks are (they compress to ~0.8).
const RAW = Uint8Array.from({ length: 300_000 }, (_, i) => (i * 31 + ((i * 2654435761) >>> 27)) & 0xff);
const STREAMS = {
  zlib: zlib.deflateSync(RAW, { level: 1 }),
  gzip: zlib.gzipSync(RAW, { level: 9 }),
  raw: zlib.deflateRawSync(RAW),
} as const;

test('libdeflate is the inflater when it loads, and says so; Node zlib when system libraries are off', () => {
  assert.match(deflateBackend(), /libdeflate\.so\.0, on koffi's threads/);
  assert.equal(codecBackends().deflate, deflateBackend());
  useSystemLibraries(false);
  try {
    assert.match(deflateBackend(), /^native \(node:zlib\): system libraries turned off/);
  } finally {
    useSystemLibraries(true);
  }
});

test('inflateInto writes zlib, gzip and raw streams into a slice of a larger buffer, the same bytes both ways, 40 at once', async () => {
  for (const system of BOTH) {
    useSystemLibraries(system);
    for (const [format, stream] of Object.entries(STREAMS)) {
      const big = new Uint8Array(RAW.length + 20).fill(7);
      await inflateInto(stream, big.subarray(10, 10 + RAW.length), format as keyof typeof STREAMS, 'x');
      assert.deepEqual(big.subarray(10, 10 + RAW.length), RAW, `${format}, system ${system}`);
      // Bytes around the slice are untouched.
      assert.deepEqual([...big.subarray(0, 10), ...big.subarray(10 + RAW.length)], Array(20).fill(7));
    }
    // More calls in flight than decompressors (8): each waits for one; all land in their own slice.
    const out = new Uint8Array(40 * RAW.length);
    await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        inflateInto(STREAMS.zlib, out.subarray(i * RAW.length, (i + 1) * RAW.length), 'zlib', `#${i}`),
      ),
    );
    for (let i = 0; i < 40; i++)
      assert.equal(sha(out.subarray(i * RAW.length, (i + 1) * RAW.length)), sha(RAW));
  }
});

test('a damaged, short or too long stream is an InflateError naming it, with libdeflate and with Node zlib', async () => {
  const damaged = Uint8Array.from(STREAMS.zlib);
  for (let i = 100; i < 400; i += 7) damaged[i] ^= 0x5a;
  const truncated = STREAMS.zlib.subarray(0, STREAMS.zlib.length - 500);
  for (const system of BOTH) {
    useSystemLibraries(system);
    const cases: [string, Uint8Array, number, RegExp][] = [
      ['damaged', damaged, RAW.length, /chunk 1: it does not inflate .*the zlib stream is damaged/],
      ['truncated', truncated, RAW.length, /chunk 1: it (does not inflate|inflates to .*fewer)/],
      ['short', STREAMS.zlib, RAW.length + 1, /chunk 1: it inflates to .*fewer than the 300001 bytes/],
      ['long', STREAMS.zlib, RAW.length - 1, /chunk 1: it inflates to more than the 299999 bytes/],
    ];
    for (const [name, stream, size, message] of cases) {
      const dst = new Uint8Array(size);
      await assert.rejects(
        inflateInto(stream, dst, 'zlib', 'chunk 1'),
        (err: unknown) => err instanceof InflateError && message.test(err.message) && err.what === 'chunk 1',
        `${name}, system ${system}`,
      );
    }
  }
});

const indexOf = (file: string) => {
  const size = statSync(file).size;
  return new Hdf5Index(size, pagedReader(size, localReader(file), 4096));
};

async function readDataset(reader: Hdf5Reader, path: string, batch: number): Promise<Uint8Array> {
  const array = reader.arrays.find((a) => a.path === path);
  assert.ok(array, path);
  const n = array.shape[0];
  const parts: Uint8Array[] = [];
  for (let s = 0; s < n; s += batch) {
    const rows = (await reader.read(array, s, Math.min(n, s + batch))) as ArrayBufferView;
    parts.push(new Uint8Array(rows.buffer, rows.byteOffset, rows.byteLength));
  }
  return Buffer.concat(parts);
}

test('HDF5 chunks h5py wrote (gzip, gzip+shuffle, level 9, shuffle alone, partial chunks) read equal to h5py, with libdeflate and with Node zlib, in batches aligned to chunks and not', async () => {
  const file = `${DIR}deflate.h5`;
  for (const system of BOTH) {
    useSystemLibraries(system);
    for (const batch of [8, 5, 1000]) {
      const reader = await openThreadedHdf5(file, 'deflate.h5', { rows: [0, 1000] });
      try {
        for (const [path, want] of Object.entries(EXPECTED))
          assert.equal(
            sha(await readDataset(reader, path, batch)),
            want,
            `${path}, batch ${batch}, system ${system}`,
          );
      } finally {
        await reader.close();
      }
    }
    // Read by CAI itself, not handed to libhdf5.
    const bytes = await LocalBytes.open(file);
    try {
      const direct = new DirectReader(indexOf(file), bytes);
      const reader = await openThreadedHdf5(file, 'deflate.h5');
      for (const a of reader.arrays) assert.ok(await direct.read(a, 0, a.shape[0], a.shape[0]), a.path);
      await reader.close();
      assert.equal(direct.fallbacks, 0);
    } finally {
      await bytes.close();
    }
  }
});

test('a damaged chunk is E_CORRUPT naming the file, dataset and chunk (bad data, too short, too long), both ways; rows before it read', async () => {
  const file = `${DIR}damaged.h5`;
  for (const system of BOTH) {
    useSystemLibraries(system);
    for (const [path, why] of [
      ['bad_data', /does not inflate/],
      ['short', /fewer than the 256/],
      ['long', /more than the 256 bytes/],
    ] as const) {
      const reader = await openThreadedHdf5(file, 'damaged.h5', { rows: [0, 12] });
      try {
        const array = reader.arrays.find((a) => a.path === path);
        assert.ok(array);
        const first = (await reader.read(array, 0, 4)) as Int32Array;
        assert.deepEqual([...first.subarray(0, 3)], [0, 919, 838]);
        await assert.rejects(reader.read(array, 4, 8), (err: unknown) => {
          assert.ok(err instanceof CaiError, String(err));
          assert.equal(err.code, ErrorCodes.corrupt);
          assert.equal(err.object, 'damaged.h5');
          assert.match(err.message, new RegExp(`dataset "/${path}", chunk at \\[4, 0\\]`));
          assert.match(err.message, why);
          assert.match(err.message, /write or upload it again/);
          return true;
        });
      } finally {
        await reader.close();
      }
    }
  }
});

test('from a loopback S3 server, by ranges: the same bytes and the same E_CORRUPT, both ways', async () => {
  const s3 = await startS3Server(['data']);
  try {
    const store = new S3Store('s3://data/deflate', { s3Endpoint: s3.endpoint });
    await uploadTree(store, DIR, '');
    for (const system of BOTH) {
      useSystemLibraries(system);
      const reader = await openRemoteHdf5(store, 'deflate.h5', { rows: [0, 1000] });
      try {
        for (const [path, want] of Object.entries(EXPECTED))
          assert.equal(sha(await readDataset(reader, path, 16)), want, `${path}, system ${system}`);
      } finally {
        await reader.close();
      }
      const damaged = await openRemoteHdf5(store, 'damaged.h5', { rows: [0, 12] });
      try {
        const array = damaged.arrays.find((a) => a.path === 'bad_data');
        assert.ok(array);
        await assert.rejects(
          damaged.read(array, 0, 12),
          (err: unknown) =>
            err instanceof CaiError &&
            err.code === ErrorCodes.corrupt &&
            /chunk at \[4, 0\].*does not inflate/.test(err.message),
        );
      } finally {
        await damaged.close();
      }
    }
  } finally {
    await s3.stop();
  }
});
