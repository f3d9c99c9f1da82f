// The Parquet source against the committed fixtures (scripts/fixtures/make_parquet_fixtures.mjs): the Ray
// benchmark's raw pixel lists, encoded image bytes with ids and features, Hugging Face's {bytes, path}
// struct; values compared with PIL's preprocessing (scripts/fixtures/make_image_fixtures.py), row groups
// fetched by range one at a time, bad rows as failed items, the NaN policy.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { parquetMetadata } from 'hyparquet';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { ErrorCodes } from '../../src/errors.js';
import { parquetFiles, type ParquetSourceFields } from '../../src/formats/parquet/index.js';
import type { SourceBatch } from '../../src/formats/source.js';
import type { JobSpec } from '../../src/job/spec.js';
import type { PlannedPartition } from '../../src/plan/plan.js';
import { FileStore } from '../../src/storage/file-store.js';
import {
  assertSameValues,
  CountingStore,
  differences,
  expectedNpy,
  fixture,
  FIXTURES,
  readAll,
  rejectsWith,
} from './helpers.js';

const DIR = `${FIXTURES}parquet`;
// torchvision's evaluation transform at the fixtures' size, as make_image_fixtures.py computed it.
const SMALL = { preset: 'imagenet', preprocess: { resize: 32, centerCrop: 28 } } as const;
const RAY = { imageShape: [16, 20, 3] } as const;
const PHOTOS = JSON.parse(new TextDecoder().decode(fixture('images/expected/images.json'))) as {
  images: Record<string, unknown>;
  broken: string[];
};

function whole(key: string): PlannedPartition {
  return { id: '1', key, bytes: 0 };
}

async function open(store: FileStore | CountingStore, p: PlannedPartition, job: ParquetSourceFields) {
  return parquetFiles.open(store, p, job as JobSpec);
}

/** Column `name` of every batch, concatenated. */
function column(batches: readonly SourceBatch[], name: string): number[] {
  return batches.flatMap((b) =>
    Array.from(b.rows.columns[b.rows.names.indexOf(name)].data as ArrayLike<number | bigint>, Number),
  );
}

/** Byte range of each row group's column chunks, from the file's own footer. */
function groupRanges(rel: string): [number, number][] {
  const bytes = fixture(rel);
  const meta = parquetMetadata(
    bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer,
  );
  return meta.row_groups.map((g) => {
    const starts = g.columns.map((c) =>
      Number(c.meta_data?.dictionary_page_offset || c.meta_data?.data_page_offset),
    );
    const ends = g.columns.map((c, i) => starts[i] + Number(c.meta_data?.total_compressed_size));
    return [Math.min(...starts), Math.max(...ends)];
  });
}

test('Ray layout: raw pixel lists come back as the uint8 arrays numpy saved, ids key#row', async () => {
  const stream = await open(new FileStore(DIR), whole('ray.parquet'), RAY);
  assert.equal(stream.items, 12);
  assert.equal(stream.hasIds, true);
  const batches = await readAll(stream, 5);
  assert.deepEqual(
    batches.map((b) => b.rows.columns[0].shape),
    [
      [5, 16, 20, 3],
      [5, 16, 20, 3],
      [2, 16, 20, 3],
    ],
  );
  assert.equal(batches[0].rows.columns[0].dtype, 'uint8');
  assertSameValues(
    Uint8Array.from(column(batches, 'image')),
    expectedNpy('images/raw/ray_pixels.npy').data as Uint8Array,
    'pixels',
  );
  assert.deepEqual(
    batches.flatMap((b) => b.ids),
    Array.from({ length: 12 }, (_, i) => `ray.parquet#${i}`),
  );
  assert.deepEqual(
    batches.flatMap((b) => Array.from(b.indices)),
    Array.from({ length: 12 }, (_, i) => i),
  );
});

test('Ray layout with the imagenet transform matches PIL resize / crop / normalize of the same pixels', async () => {
  const batches = await readAll(
    await open(new FileStore(DIR), whole('ray.parquet'), { ...RAY, ...SMALL }),
    4,
  );
  const got = batches.map((b) => b.rows.columns[0]);
  assert.deepEqual(got[0].shape, [4, 3, 28, 28]);
  assert.equal(got[0].dtype, 'float32');
  const want = expectedNpy('images/expected/ray.small.npy');
  assert.deepEqual(want.shape, [12, 3, 28, 28]);
  const d = differences(Float32Array.from(column(batches, 'image')), want.data as Float32Array);
  // One 8-bit level is 0.017 after normalization; bilinear rounding differs by a level at most.
  assert.ok(d.max < 0.05 && d.mean < 0.01, `max ${d.max.toFixed(4)}, mean ${d.mean.toFixed(5)}`);
});

test('encoded bytes: ids from the id column, images as PIL preprocesses them, features as typed columns', async () => {
  const stream = await open(new FileStore(DIR), whole('encoded.parquet'), {
    idColumn: 'id',
    ...SMALL,
    nan: 'keep',
  });
  assert.equal(stream.items, 12);
  const batches = await readAll(stream, 5);
  const ids = batches.flatMap((b) => b.ids ?? []);
  const good = Object.keys(PHOTOS.images).sort();
  assert.deepEqual(ids, good);
  assert.deepEqual(batches[0].rows.names, ['image', 'magnitude', 'redshift']);
  for (const b of batches) {
    b.ids?.forEach((id, j) => {
      const rows = b.rows.columns[0];
      const size = 3 * 28 * 28;
      const got = (rows.data as Float32Array).subarray(j * size, (j + 1) * size);
      const d = differences(got, expectedNpy(`images/expected/${id}.small.npy`).data as Float32Array);
      assert.ok(d.max < 0.05 && d.mean < 0.01, `${id}: max ${d.max.toFixed(4)}`);
    });
  }
  // The fixture's features: magnitude[i] = 15 + i + band / 10 (row 2 band 3 NaN), redshift = 0.05 (i + 1).
  const rows = batches.flatMap((b) => Array.from(b.indices));
  const mags = column(batches, 'magnitude');
  rows.forEach((i, k) => {
    for (let band = 0; band < 5; band++) {
      const want = i === 2 && band === 3 ? NaN : 15 + i + band / 10;
      assert.ok(Object.is(mags[k * 5 + band], want), `row ${i} band ${band}: ${mags[k * 5 + band]}`);
    }
  });
  assert.equal(batches[0].rows.columns[1].dtype, 'float64');
  assert.deepEqual(batches[0].rows.columns[1].shape.slice(1), [5]);
  assert.equal(batches[0].rows.columns[2].dtype, 'float32');
  assert.deepEqual(
    column(batches, 'redshift'),
    rows.map((i) => Math.fround(0.05 * (i + 1))),
  );
});

test('broken images and a null image are failed items with their id and reason; the rest is read', async () => {
  const batches = await readAll(
    await open(new FileStore(DIR), whole('encoded.parquet'), { idColumn: 'id', ...SMALL, nan: 'keep' }),
    5,
  );
  const failed = batches.flatMap((b) => b.failed ?? []);
  assert.deepEqual(
    failed.map((f) => [f.index, f.id]),
    [
      [9, 'x_truncated.jpg'],
      [10, 'y_not_an_image.png'],
      [11, 'missing.jpg'],
    ],
  );
  assert.deepEqual(PHOTOS.broken, ['x_truncated.jpg', 'y_not_an_image.png']);
  for (const f of failed.slice(0, 2)) {
    assert.ok(f.reason.startsWith(`${f.id}: cannot be decoded as an image`), f.reason);
    assert.match(f.reason, /remove or replace it/);
  }
  assert.match(failed[2].reason, /missing\.jpg: image column "image" is null: the row has no image/);
  // Failed rows leave a gap in indices; good rows keep their position.
  assert.deepEqual(
    batches.flatMap((b) => Array.from(b.indices)),
    [0, 1, 2, 3, 4, 5, 6, 7, 8],
  );
});

test('NaN policy: a NaN feature fails its row by default, is replaced by a number, or kept', async () => {
  const store = new FileStore(DIR);
  const job = { idColumn: 'id', ...SMALL };
  const byDefault = (await readAll(await open(store, whole('encoded.parquet'), job), 12)).flatMap(
    (b) => b.failed ?? [],
  );
  const nan = byDefault.find((f) => f.id === 'c_square.png');
  assert.equal(nan?.index, 2);
  assert.match(nan?.reason ?? '', /c_square\.png column "magnitude": holds 1 NaN value of 5.*--nan 0/);
  const zero = await readAll(await open(store, whole('encoded.parquet'), { ...job, nan: 0 }), 12);
  const mags = column(zero, 'magnitude');
  assert.deepEqual(
    mags.slice(10, 15),
    [0, 1, 2, 3, 4].map((band) => (band === 3 ? 0 : 15 + 2 + band / 10)),
  );
  assert.ok(!zero.flatMap((b) => b.failed ?? []).some((f) => f.id === 'c_square.png'));
  const kept = await readAll(await open(store, whole('encoded.parquet'), { ...job, nan: 'keep' }), 12);
  assert.ok(Number.isNaN(column(kept, 'magnitude')[13]));
});

test('Hugging Face {bytes, path} images decode like the files they came from; label is int64', async () => {
  const batches = await readAll(await open(new FileStore(DIR), whole('hf.parquet'), SMALL), 3);
  assert.deepEqual(batches[0].rows.names, ['image', 'label']);
  assert.deepEqual(
    batches.flatMap((b) => b.ids),
    ['hf.parquet#0', 'hf.parquet#1', 'hf.parquet#2', 'hf.parquet#3'],
  );
  assert.equal(batches[0].rows.columns[1].dtype, 'int64');
  assert.deepEqual(column(batches, 'label'), [0, 10, 20, 30]);
  // The fixture holds the first four decodable photos, in name order.
  const sources = Object.keys(PHOTOS.images).sort().slice(0, 4);
  const pixels = Float32Array.from(column(batches, 'image'));
  const size = 3 * 28 * 28;
  sources.forEach((name, i) => {
    const d = differences(
      pixels.subarray(i * size, (i + 1) * size),
      expectedNpy(`images/expected/${name}.small.npy`).data as Float32Array,
    );
    assert.ok(d.max < 0.05 && d.mean < 0.01, `${name}: max ${d.max.toFixed(4)}`);
  });
});

test('a row range reads only the column chunks of its row groups, by range, never the whole file', async () => {
  const store = new CountingStore(new FileStore(DIR));
  const groups = groupRanges('parquet/ray.parquet');
  assert.equal(groups.length, 3);
  const plan = await parquetFiles.planWithStore(
    store,
    [{ key: 'ray.parquet', size: fixture('parquet/ray.parquet').length }],
    { ...RAY, partitionItems: 5 },
  );
  assert.deepEqual(
    plan.map((p) => [p.id, p.rows, p.items]),
    [
      ['ray__0-5', [0, 5], 5],
      ['ray__5-10', [5, 10], 5],
      ['ray__10-12', [10, 12], 2],
    ],
  );
  const stream = await open(store, plan[1], RAY);
  store.ranges.length = 0;
  const batches = await readAll(stream, 2);
  assert.deepEqual(
    batches.flatMap((b) => b.ids),
    ['ray.parquet#5', 'ray.parquet#6', 'ray.parquet#7', 'ray.parquet#8', 'ray.parquet#9'],
  );
  assert.deepEqual(
    batches.flatMap((b) => Array.from(b.indices)),
    [0, 1, 2, 3, 4],
  );
  assert.deepEqual(
    store.ranges.map((r) => [r.start, r.end]),
    [groups[1]],
    'one request: row group 1',
  );
  const pixels = expectedNpy('images/raw/ray_pixels.npy').data as Uint8Array;
  assertSameValues(Uint8Array.from(column(batches, 'image')), pixels.subarray(5 * 960, 10 * 960), 'rows 5-9');
  // Rows 3-7 span groups 0 and 1: two requests, in order; group 2 is never fetched.
  const acrossStream = await open(store, { ...plan[0], rows: [3, 8], items: 5 }, RAY);
  store.ranges.length = 0;
  const across = await readAll(acrossStream, 5);
  assertSameValues(Uint8Array.from(column(across, 'image')), pixels.subarray(3 * 960, 8 * 960), 'rows 3-7');
  assert.deepEqual(
    store.ranges.map((r) => [r.start, r.end]),
    [groups[0], groups[1]],
  );
  assert.equal(store.whole.length, 0);
});

test('a file larger than its footer read is fetched a row group at a time', async () => {
  // 64 rows of 32 x 32 x 3 pixels in row groups of 8 (~200 KB, more than the footer's first read).
  const rows = 64;
  const per = 32 * 32 * 3;
  // Pseudo-random pixels (a linear congruential generator), so compression cannot shrink them.
  let state = 12345;
  const next = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) >>> 24;
  const images = Array.from({ length: rows }, () => Array.from({ length: per }, next));
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-pq-'));
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'image', data: images },
      { name: 'id', data: images.map((_, i) => `img-${i}`) },
    ],
    schema: [
      { name: 'root', num_children: 2 },
      { name: 'image', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
      { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
      { name: 'element', type: 'INT32', repetition_type: 'OPTIONAL', converted_type: 'UINT_8' },
      { name: 'id', type: 'BYTE_ARRAY', converted_type: 'UTF8', repetition_type: 'REQUIRED' },
    ],
    rowGroupSize: 8,
    statistics: false,
  });
  await writeFile(path.join(dir, 'big.parquet'), new Uint8Array(buffer));
  const size = (await readFile(path.join(dir, 'big.parquet'))).length;
  assert.ok(size > 150_000, `${size} bytes`);
  const store = new CountingStore(new FileStore(dir));
  const job = { imageShape: [32, 32, 3], idColumn: 'id' };
  const stream = await open(store, { id: 'x', key: 'big.parquet', bytes: size, rows: [40, 48] }, job);
  const footer = store.rangedBytes();
  const opened = store.ranges.length;
  const batches = await readAll(stream, 3);
  assert.deepEqual(
    batches.flatMap((b) => b.ids),
    Array.from({ length: 8 }, (_, i) => `img-${40 + i}`),
  );
  // Three batches, one request: row group 5's two column chunks, about an eighth of the file.
  const data = store.ranges.slice(opened);
  assert.equal(data.length, 1);
  assert.ok(data[0].end - data[0].start < size / 6, `${data[0].end - data[0].start} of ${size} bytes`);
  const got = column(batches, 'image');
  assert.deepEqual(got.slice(0, 5), images[40].slice(0, 5));
  assert.deepEqual(got.slice(7 * per), images[47]);
  const fetched = store.rangedBytes();
  assert.ok(fetched < footer + size / 6, `fetched ${fetched} of ${size} bytes`);
  assert.equal(store.whole.length, 0);
  assert.equal(stream.stats().bytes, fetched);
});

test('bad input: not Parquet, raw pixels without a shape, a wrong shape, an unknown column', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-pq-bad-'));
  const ray = fixture('parquet/ray.parquet');
  await writeFile(path.join(dir, 'cut.parquet'), ray.subarray(0, ray.length - 100));
  const bad = new FileStore(dir);
  await rejectsWith(() => open(bad, whole('cut.parquet'), RAY), ErrorCodes.corrupt, [
    'cut.parquet',
    'not a readable Parquet file',
  ]);
  const store = new FileStore(DIR);
  await rejectsWith(() => open(store, whole('ray.parquet'), {}), ErrorCodes.option, [
    'ray.parquet',
    'raw pixel arrays',
    '--image-shape',
  ]);
  await rejectsWith(() => open(store, whole('encoded.parquet'), { idColumn: 'name' }), ErrorCodes.option, [
    'encoded.parquet',
    'no column "name"',
    'columns that fit: id',
  ]);
  // A shape that does not fit the pixel count fails each row, saying what to check.
  const [batch] = await readAll(await open(store, whole('ray.parquet'), { imageShape: [16, 20, 4] }), 12);
  assert.equal(batch.rows.items, 0);
  assert.equal(batch.failed?.length, 12);
  assert.match(batch.failed?.[0].reason ?? '', /960 pixel values.*\[16, 20, 4\] needs 1280.*imageShape/);
});

test('list features keep every value of their type: unsigned 32-bit, small ints, floats, dictionary-encoded', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-parquet-lists-'));
  const list = (name: string, type: 'INT32' | 'FLOAT' | 'DOUBLE', converted?: 'UINT_32' | 'INT_8') => [
    { name, repetition_type: 'OPTIONAL' as const, converted_type: 'LIST' as const, num_children: 1 },
    { name: 'list', repetition_type: 'REPEATED' as const, num_children: 1 },
    {
      name: 'element',
      type,
      repetition_type: 'OPTIONAL' as const,
      ...(converted ? { converted_type: converted } : {}),
    },
  ];
  const rows = 40;
  // Few distinct values per column, so the writer dictionary-encodes them as pyarrow does pixels.
  const big = Array.from({ length: rows }, (_, r) => [3_000_000_000 + (r % 3), r % 2]);
  const small = Array.from({ length: rows }, (_, r) => [-5 - (r % 2), 7]);
  const doubles = Array.from({ length: rows }, (_, r) => [0.5 * (r % 4), 1e300]);
  const floats = Array.from({ length: rows }, (_, r) => [Math.fround(0.1 * (r % 5)), -2.25]);
  const buffer = parquetWriteBuffer({
    columnData: [
      { name: 'big', data: big },
      { name: 'small', data: small },
      { name: 'doubles', data: doubles },
      { name: 'floats', data: floats },
    ],
    schema: [
      { name: 'root', num_children: 4 },
      ...list('big', 'INT32', 'UINT_32'),
      ...list('small', 'INT32', 'INT_8'),
      ...list('doubles', 'DOUBLE'),
      ...list('floats', 'FLOAT'),
    ],
  });
  await writeFile(path.join(dir, 'lists.parquet'), new Uint8Array(buffer));
  const batches = await readAll(await open(new FileStore(dir), whole('lists.parquet'), {}), 16);
  const types = Object.fromEntries(
    batches[0].rows.names.map((n, i) => [n, batches[0].rows.columns[i].dtype]),
  );
  assert.deepEqual(types, { big: 'int64', small: 'int8', doubles: 'float64', floats: 'float32' });
  assert.deepEqual(column(batches, 'big'), big.flat());
  assert.deepEqual(column(batches, 'small'), small.flat());
  assert.deepEqual(column(batches, 'doubles'), doubles.flat());
  assert.deepEqual(column(batches, 'floats'), floats.flat());
});

for (const version of [1, 2]) {
  test(`pyarrow's Ray layout, v${version} data pages, dictionary-encoded: the pixels numpy saved; a null row fails`, async () => {
    const stream = await open(new FileStore(DIR), whole(`ray_pyarrow_v${version}.parquet`), RAY);
    assert.equal(stream.items, 12);
    const batches = await readAll(stream, 5);
    const failed = batches.flatMap((b) => b.failed ?? []);
    assert.deepEqual(
      failed.map((f) => f.index),
      [7],
    );
    assert.match(failed[0].reason, /is null/);
    const expected = expectedNpy('images/raw/ray_pixels.npy').data as Uint8Array;
    const per = 16 * 20 * 3;
    const good = [0, 1, 2, 3, 4, 5, 6, 8, 9, 10, 11];
    assert.deepEqual(
      batches.flatMap((b) => Array.from(b.indices)),
      good,
    );
    assertSameValues(
      Uint8Array.from(column(batches, 'image')),
      Uint8Array.from(good.flatMap((i) => Array.from(expected.subarray(i * per, (i + 1) * per)))),
      'pixels',
    );
  });
}

for (const kind of ['dict', 'plain']) {
  test(`pyarrow's list features (${kind}): unsigned 32-bit above 2^31, int8, doubles, floats, exactly`, async () => {
    const batches = await readAll(
      await open(new FileStore(DIR), whole(`lists_pyarrow_${kind}.parquet`), {}),
      16,
    );
    const r = Array.from({ length: 40 }, (_, i) => i);
    assert.deepEqual(
      column(batches, 'big'),
      r.flatMap((i) => [3_000_000_000 + (i % 3), i % 2, 4294967295]),
    );
    assert.deepEqual(
      column(batches, 'small'),
      r.flatMap((i) => [-5 - (i % 2), 7, -128]),
    );
    assert.deepEqual(
      column(batches, 'doubles'),
      r.flatMap((i) => [0.5 * (i % 4), 1e300, -0]),
    );
    assert.deepEqual(
      column(batches, 'floats'),
      r.flatMap((i) => [Math.fround(0.1 * (i % 5)), -2.25, 3.5]),
    );
  });
}
