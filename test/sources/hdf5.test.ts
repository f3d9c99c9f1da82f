// The HDF5 source against files h5py wrote (scripts/fixtures/make_hdf5_zarr_fixtures.py): the Galaxy10
// layout (chunked, gzip + shuffle), a HEALPix-style folder with string ids under a group, a contiguous
// dataset; bad input (missing dataset, ragged items, a missing filter plugin, a truncated file, NaN);
// `cai run` end to end with the trivial model (the mean of each item) against NumPy's numbers, locally
// and from a real S3 server; `cai partition` from HDF5.
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { Command } from 'commander';
import { addSourceOptions, sourceOverrides } from '../../src/cli/commands/partition.js';
import { ErrorCodes } from '../../src/errors.js';
import type { ArraySourceFields } from '../../src/formats/arrays/index.js';
import { hdf5Files } from '../../src/formats/hdf5/index.js';
import { partitionDataset } from '../../src/formats/partition/partition.js';
import type { SourceBatch } from '../../src/formats/source.js';
import { runJob } from '../../src/run/run.js';
import { parseJobSpec, type JobSpecInput } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import type { PlannedPartition } from '../../src/plan/plan.js';
import { FileStore } from '../../src/storage/file-store.js';
import '../../src/storage/register.js';
import { S3Store } from '../../src/storage/s3-store.js';
import type { Store } from '../../src/storage/store.js';
import { allPredictions } from '../helpers/demo-fixture.js';
import { startS3Server } from '../helpers/s3-server.js';
import { assertClose, fixture, FIXTURES, readAll, rejectsWith, rowMeans } from './helpers.js';

const DIR = `${FIXTURES}hdf5`;
interface Expected {
  galaxy10: {
    items: number;
    ids: string[];
    labels: number[];
    image_mean: number[];
    image_mean_pre: number[];
    features_mean: number[];
    redshift: number[];
  };
  healpix: { items: number; ids: string[]; image_mean: number[]; z: number[] };
  contiguous: { items: number; ids: string[]; x_mean: number[]; big_endian: number[]; flag: number[] };
  nan: { nan_rows: number[]; features_zero_mean: number[] };
  lzf: { x_mean: number[] };
  preprocess: { crop: number; mean: number[]; std: number[] };
}
const EXPECTED = JSON.parse(new TextDecoder().decode(fixture('hdf5/expected.json'))) as Expected;
const PRE = {
  preprocess: {
    centerCrop: EXPECTED.preprocess.crop,
    mean: EXPECTED.preprocess.mean,
    std: EXPECTED.preprocess.std,
  },
};

const whole = (key: string): PlannedPartition => ({ id: '1', key, bytes: 0 });
const open = (store: Store, p: PlannedPartition, job: ArraySourceFields) =>
  hdf5Files.open(store, p, job as never);

test('Galaxy10 layout: every numeric dataset but the ids is a column, read in batches, ids carried', async () => {
  const stream = await open(new FileStore(DIR), whole('galaxy10.h5'), { idColumn: 'ids' });
  assert.equal(stream.items, 64);
  assert.equal(stream.hasIds, true);
  const batches = await readAll(stream, 10);
  assert.deepEqual(batches[0].rows.names, ['ans', 'dec', 'features', 'images', 'ra', 'redshift']);
  assert.deepEqual(
    batches.map((b) => b.rows.items),
    [10, 10, 10, 10, 10, 10, 4],
  );
  const images = batches[0].rows.columns[3];
  assert.equal(images.dtype, 'uint8');
  assert.deepEqual(images.shape, [10, 64, 64, 3]);
  assert.deepEqual(
    batches.flatMap((b) => b.ids),
    EXPECTED.galaxy10.ids,
  );
  assert.deepEqual(
    batches.flatMap((b) => Array.from(b.indices)),
    Array.from({ length: 64 }, (_, i) => i),
  );
  assertClose(
    rowMeans(batches, 'images').map((m) => m / 255),
    EXPECTED.galaxy10.image_mean,
    1e-12,
    'images',
  );
  assertClose(rowMeans(batches, 'features'), EXPECTED.galaxy10.features_mean, 1e-12, 'features');
  assertClose(rowMeans(batches, 'redshift'), EXPECTED.galaxy10.redshift, 0, 'redshift');
  assertClose(rowMeans(batches, 'ans'), EXPECTED.galaxy10.labels, 0, 'labels');
  assert.ok(stream.stats().read > 0);
});

test('named datasets become named columns; HWC uint8 images go through the image preprocessing', async () => {
  const stream = await open(new FileStore(DIR), whole('galaxy10.h5'), {
    datasets: { image: '/images', mags: 'features' },
    ...PRE,
  });
  const batches = await readAll(stream, 16);
  assert.deepEqual(batches[0].rows.names, ['image', 'mags']);
  const image = batches[0].rows.columns[0];
  assert.equal(image.dtype, 'float32');
  assert.deepEqual(image.shape, [16, 3, 48, 48]);
  assertClose(rowMeans(batches, 'image'), EXPECTED.galaxy10.image_mean_pre, 1e-5, 'preprocessed');
  assert.deepEqual(
    batches.flatMap((b) => b.ids),
    Array.from({ length: 64 }, (_, i) => `galaxy10.h5#${i}`),
  );
});

test('a HEALPix-style folder: datasets under a group, string ids, row ranges of whole chunks in each file', async () => {
  const store = new FileStore(`${DIR}/healpix`);
  const objects = [
    { key: 'healpix=11/001-of-001.hdf5', size: 1 },
    { key: 'healpix=12/001-of-001.hdf5', size: 1 },
  ];
  const job = { group: '/data', idColumn: 'object_id', partitionItems: 6 };
  const planned = await hdf5Files.planWithStore(store, objects, job);
  // partitionItems 6 over chunks of 4 images: 8 rows a partition, the rest of each file last.
  assert.deepEqual(
    planned.map((p) => [p.key, p.rows]),
    [
      ['healpix=11/001-of-001.hdf5', [0, 8]],
      ['healpix=11/001-of-001.hdf5', [8, 10]],
      ['healpix=12/001-of-001.hdf5', [0, 8]],
      ['healpix=12/001-of-001.hdf5', [8, 14]],
    ],
  );
  const batches: SourceBatch[] = [];
  for (const p of planned) batches.push(...(await readAll(await open(store, p, job), 4)));
  assert.deepEqual(batches[0].rows.names, ['image', 'z']);
  assert.deepEqual(
    batches.flatMap((b) => b.ids),
    EXPECTED.healpix.ids,
  );
  assertClose(rowMeans(batches, 'image'), EXPECTED.healpix.image_mean, 1e-6, 'image');
  assertClose(rowMeans(batches, 'z'), EXPECTED.healpix.z, 0, 'z');
});

test('a contiguous (unchunked) dataset, big-endian floats, booleans and LZF read like chunked ones', async () => {
  const store = new FileStore(DIR);
  const batches = await readAll(await open(store, whole('contiguous.h5'), { idColumn: 'id' }), 7);
  assert.deepEqual(batches[0].rows.names, ['big_endian', 'flag', 'x']);
  assert.equal(batches[0].rows.columns[1].dtype, 'bool');
  assertClose(rowMeans(batches, 'big_endian'), EXPECTED.contiguous.big_endian, 0, 'big-endian');
  assertClose(rowMeans(batches, 'flag'), EXPECTED.contiguous.flag, 0, 'flag');
  assert.deepEqual(
    batches.flatMap((b) => b.ids),
    EXPECTED.contiguous.ids,
  );
  assertClose(rowMeans(batches, 'x'), EXPECTED.contiguous.x_mean, 1e-6, 'x');
  const lzf = await readAll(await open(store, whole('bad/lzf.h5'), {}), 5);
  assertClose(rowMeans(lzf, 'x'), EXPECTED.lzf.x_mean, 1e-12, 'lzf');
});

test('bad input: a missing dataset lists those that exist; ragged items; a missing plugin; a truncated file', async () => {
  const store = new FileStore(DIR);
  await rejectsWith(
    () => open(store, whole('galaxy10.h5'), { datasets: ['images', 'magnitudes'] }),
    ErrorCodes.option,
    ['galaxy10.h5', 'no dataset "/magnitudes"', '/images uint8 [64, 64, 64, 3]', '/features float64 [64, 5]'],
  );
  await rejectsWith(() => open(store, whole('bad/ragged.h5'), {}), ErrorCodes.corrupt, [
    'ragged.h5',
    '/images: 10',
    '/labels: 9',
    '--datasets',
  ]);
  await rejectsWith(
    async () => readAll(await open(store, whole('bad/blosc.h5'), {}), 4),
    ErrorCodes.unsupported,
    ['blosc.h5', 'dataset "/x"', 'Blosc (filter id 32001)', 'plugin'],
  );
  const truncated = await rejectsWith(() => open(store, whole('bad/truncated.h5'), {}), ErrorCodes.corrupt, [
    'truncated.h5',
    'not a readable HDF5 file',
    'truncated',
  ]);
  assert.match(truncated.message, /eof = \d+/);
});

test('NaN: an item with NaN fails by default naming the file and dataset; nan 0 replaces it', async () => {
  const store = new FileStore(DIR);
  const strict = await readAll(await open(store, whole('bad/nan.h5'), {}), 4);
  const failed = strict.flatMap((b) => b.failed ?? []);
  assert.deepEqual(
    failed.map((f) => [f.index, f.id]),
    [
      [3, 'bad/nan.h5#3'],
      [7, 'bad/nan.h5#7'],
    ],
  );
  assert.match(failed[0].reason, /nan\.h5 dataset "\/features" item bad\/nan\.h5#3 \(row 3\): holds 1 NaN/);
  assert.deepEqual(
    strict.flatMap((b) => Array.from(b.indices)),
    [0, 1, 2, 4, 5, 6, 8, 9],
  );
  const zero = await readAll(await open(store, whole('bad/nan.h5'), { nan: 0 }), 4);
  assertClose(rowMeans(zero, 'features'), EXPECTED.nan.features_zero_mean, 1e-12, 'nan 0');
});

async function run(job: Omit<JobSpecInput, 'model' | 'output'>, name: string, shape: (string | number)[]) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-run-hdf5-'));
  try {
    const model = path.join(dir, 'trivial.onnx');
    await writeFile(model, buildTrivial({ inputName: name, shape }));
    const output = path.join(dir, 'out');
    const summary = await runJob(
      parseJobSpec({ ...job, model, output, concurrency: 2, threads: 1, batchSize: 8 }),
      { retryBaseMs: 10 },
    );
    const rows = await allPredictions(output);
    return { summary, rows, byId: new Map(rows.map((r) => [String(r.id), r])) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('cai run on a Galaxy10 file in row ranges: each prediction is the NumPy reference, every id once', async () => {
  const input = await mkdtemp(path.join(os.tmpdir(), 'cai-run-galaxy10-'));
  await writeFile(path.join(input, 'galaxy10.h5'), fixture('hdf5/galaxy10.h5'));
  try {
    const { summary, rows, byId } = await run(
      {
        input,
        datasets: { image: 'images', ans: 'ans' },
        idColumn: 'ids',
        label: 'ans',
        inputs: { image: 'image' },
        partitionItems: 24,
        ...PRE,
      },
      'image',
      ['N', 3, 48, 48],
    );
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.partitions.planned, 3);
    assert.equal(summary.items, 64);
    assert.equal(rows.length, 64);
    assert.deepEqual([...byId.keys()].sort(), [...EXPECTED.galaxy10.ids].sort());
    EXPECTED.galaxy10.ids.forEach((id, i) => {
      const r = byId.get(id);
      assert.ok(Math.abs(Number(r?.mean) - EXPECTED.galaxy10.image_mean_pre[i]) < 5e-5, `${id}: ${r?.mean}`);
      assert.equal(Number(r?.label), EXPECTED.galaxy10.labels[i], id);
    });
  } finally {
    await rm(input, { recursive: true, force: true });
  }
});

test('cai run on a HEALPix-style folder of HDF5 files', async () => {
  const { summary, byId } = await run(
    { input: `${DIR}/healpix`, group: 'data', idColumn: 'object_id', inputs: { image: 'image' } },
    'image',
    ['N', 2, 16, 16],
  );
  assert.equal(summary.status, 'succeeded');
  assert.equal(summary.partitions.planned, 2);
  assert.equal(byId.size, EXPECTED.healpix.items);
  EXPECTED.healpix.ids.forEach((id, i) =>
    assert.ok(Math.abs(Number(byId.get(id)?.mean) - EXPECTED.healpix.image_mean[i]) < 1e-5, id),
  );
});

async function hdf5Temps(): Promise<string[]> {
  return (await readdir(os.tmpdir())).filter((n) => n.startsWith('cai-hdf5-'));
}

test('HDF5 in S3: read by byte ranges with no temporary copy, rows of a partition fetch less than the object; same predictions', async () => {
  const s3 = await startS3Server(['data']);
  try {
    const store = new S3Store('s3://data/galaxies', { s3Endpoint: s3.endpoint });
    const size = fixture('hdf5/galaxy10.h5').byteLength;
    await store.put('galaxy10.h5', fixture('hdf5/galaxy10.h5'));
    const before = await hdf5Temps();
    const job = { datasets: ['images'], idColumn: 'ids' };
    const stream = await open(store, whole('galaxy10.h5'), job);
    const batches = await readAll(stream, 32);
    assertClose(
      rowMeans(batches, 'images').map((m) => m / 255),
      EXPECTED.galaxy10.image_mean,
      1e-12,
      'images',
    );
    const all = stream.stats().bytes;
    assert.ok(all > 0 && all <= size, `the whole file's rows fetched ${all} bytes of ${size}`);
    const rows = await open(store, { id: '1__48-64', key: 'galaxy10.h5', bytes: 0, rows: [48, 64] }, job);
    const again = await readAll(rows, 8);
    assertClose(
      rowMeans(again, 'images').map((m) => m / 255),
      EXPECTED.galaxy10.image_mean.slice(48, 64),
      1e-12,
      'images of rows 48-64',
    );
    assert.ok(
      rows.stats().bytes < size / 2,
      `a quarter of the rows fetched ${rows.stats().bytes} of ${size} bytes`,
    );
    assert.deepEqual(await hdf5Temps(), before, 'no temporary copy');
    // Truncated: E_CORRUPT naming the object, as a local file.
    const elsewhere = new S3Store('s3://data/elsewhere', { s3Endpoint: s3.endpoint });
    await elsewhere.put('other.h5', fixture('hdf5/galaxy10.h5').subarray(0, size - 1));
    await rejectsWith(
      () => open(elsewhere, whole('other.h5'), job).then((s) => readAll(s, 64)),
      ErrorCodes.corrupt,
      ['other.h5'],
    );
    await rejectsWith(() => open(store, whole('missing.h5'), job), ErrorCodes.notFound, ['missing.h5']);
    const { summary, byId } = await run(
      {
        input: 's3://data/galaxies',
        s3Endpoint: s3.endpoint,
        datasets: { image: 'images' },
        idColumn: 'ids',
        partitionItems: 32,
        ...PRE,
      },
      'image',
      ['N', 3, 48, 48],
    );
    assert.equal(summary.status, 'succeeded');
    assert.equal(byId.size, 64);
    EXPECTED.galaxy10.ids.forEach((id, i) =>
      assert.ok(Math.abs(Number(byId.get(id)?.mean) - EXPECTED.galaxy10.image_mean_pre[i]) < 5e-5, id),
    );
    assert.deepEqual(await hdf5Temps(), before, 'no temporary copy');
  } finally {
    await s3.stop();
  }
});

test('cai partition takes an HDF5 file: safetensors partitions of the chosen datasets, ids kept', async () => {
  const out = await mkdtemp(path.join(os.tmpdir(), 'cai-part-hdf5-'));
  try {
    const manifest = await partitionDataset({
      input: `${DIR}/galaxy10.h5`,
      output: out,
      items: 20,
      job: { datasets: { image: 'images', features: 'features' }, idColumn: 'ids' },
    });
    assert.deepEqual(
      manifest.partitions.map((p) => p.items),
      [20, 20, 20, 4],
    );
    assert.deepEqual(
      manifest.columns.map((c) => [c.name, c.dtype, c.rowShape]),
      [
        ['image', 'uint8', [64, 64, 3]],
        ['features', 'float64', [5]],
      ],
    );
    assert.deepEqual(
      manifest.partitions.flatMap((p) => p.ids),
      EXPECTED.galaxy10.ids,
    );
    const { summary, rows } = await run(
      { input: out, inputs: { features: 'features' }, format: 'tensor' },
      'features',
      ['N', 5],
    );
    assert.equal(summary.items, 64);
    // Tensor partitions have no ids: rows come back in order, partition by partition.
    const means = rows.map((r) => Number(r.mean)).sort((a, b) => a - b);
    const want = [...EXPECTED.galaxy10.features_mean].sort((a, b) => a - b);
    assertClose(means, want, 1e-5, 'features');
  } finally {
    await rm(out, { recursive: true, force: true });
  }
});

test('flags: --datasets takes paths or name=path pairs, --group a path; both are job fields', () => {
  const parse = (args: string[]) =>
    sourceOverrides(
      addSourceOptions(new Command())
        .exitOverride()
        .configureOutput({ writeErr: () => undefined })
        .parse(args, { from: 'user' })
        .opts(),
    );
  assert.deepEqual(parse(['--datasets', 'images, features']).datasets, ['images', 'features']);
  const named = parse(['--datasets', 'image=/images,mags=features', '--group', '/data']);
  assert.deepEqual(named.datasets, { image: '/images', mags: 'features' });
  assert.equal(named.group, '/data');
  const job = parseJobSpec({ input: 'in', model: 'm.onnx', output: 'out', ...named });
  assert.deepEqual(job.datasets, { image: '/images', mags: 'features' });
  assert.throws(() => parse(['--datasets', 'image=/images,features']), /name=path pairs or paths/);
});
