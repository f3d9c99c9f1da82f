// The Zarr source against stores zarr-python 2.13 wrote (scripts/fixtures/make_hdf5_zarr_fixtures.py):
// a v2 group (blosc and zlib chunks) in the Galaxy10 layout, a single array with `/` chunk keys, an LZMA
// array zarrita cannot decode; a v3 array written by zarrita; chunk-aligned row ranges that fetch each
// chunk once; `cai run` end to end against NumPy's numbers, locally and from a real S3 server.
import assert from 'node:assert/strict';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import * as zarr from 'zarrita';
import { ErrorCodes } from '../../src/errors.js';
import type { ArraySourceFields } from '../../src/formats/arrays/index.js';
import type { SourceBatch } from '../../src/formats/source.js';
import { isZarrKey, zarrRoot, zarrStores } from '../../src/formats/zarr/index.js';
import { runJob } from '../../src/run/run.js';
import { parseJobSpec, type JobSpecInput } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { planPartitions, type PlannedPartition } from '../../src/plan/plan.js';
import { FileStore } from '../../src/storage/file-store.js';
import '../../src/storage/register.js';
import { S3Store } from '../../src/storage/s3-store.js';
import type { ObjectInfo, Store } from '../../src/storage/store.js';
import { allPredictions } from '../helpers/demo-fixture.js';
import { startS3Server } from '../helpers/s3-server.js';
import { assertClose, CountingStore, fixture, FIXTURES, readAll, rejectsWith, rowMeans } from './helpers.js';

const DIR = `${FIXTURES}zarr`;
interface Expected {
  galaxy_zarr: {
    items: number;
    ids: string[];
    labels: number[];
    image_mean: number[];
    features_mean: number[];
  };
  cube_zarr: { items: number; mean: number[] };
}
const EXPECTED = JSON.parse(new TextDecoder().decode(fixture('hdf5/expected.json'))) as Expected;
const G = EXPECTED.galaxy_zarr;

const open = (store: Store, p: PlannedPartition, job: ArraySourceFields) =>
  zarrStores.open(store, p, job as never);

async function listAll(store: Store): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  for await (const o of store.list()) if (zarrStores.accepts(o.key)) out.push(o);
  return out;
}

test('keys: chunks and v3 metadata belong to Zarr; the store is the nearest *.zarr folder', () => {
  assert.ok(isZarrKey('galaxy.zarr/images/0.0.0.0'));
  assert.ok(isZarrKey('cube.zarr/3/0/0'));
  assert.ok(isZarrKey('a.zarr/zarr.json'));
  assert.ok(!isZarrKey('a/1.pt'));
  assert.ok(!isZarrKey('a/part.parquet'));
  assert.equal(zarrRoot('data/galaxy.zarr/images/0.0.0.0'), 'data/galaxy.zarr');
  assert.equal(zarrRoot('images/0.0.0.0'), '');
});

test('a v2 group (blosc, zlib): every numeric array but the ids is a column, values as zarr reads them', async () => {
  const store = new FileStore(DIR);
  const planned = await zarrStores.planWithStore(
    store,
    (await listAll(store)).filter((o) => o.key.startsWith('galaxy.zarr/')),
    { idColumn: 'ids' },
  );
  assert.deepEqual(
    planned.map((p) => [p.id, p.key, p.rows]),
    [['galaxy', 'galaxy.zarr', [0, 64]]],
  );
  const stream = await open(store, planned[0], { idColumn: 'ids' });
  assert.equal(stream.items, 64);
  const batches = await readAll(stream, 24);
  assert.deepEqual(batches[0].rows.names, ['features', 'images', 'label']);
  assert.deepEqual(batches[0].rows.columns[1].shape, [24, 32, 32, 3]);
  assert.deepEqual(
    batches.flatMap((b) => b.ids),
    G.ids,
  );
  assertClose(
    rowMeans(batches, 'images').map((m) => m / 255),
    G.image_mean,
    1e-12,
    'images',
  );
  assertClose(rowMeans(batches, 'features'), G.features_mean, 1e-12, 'features');
  assertClose(rowMeans(batches, 'label'), G.labels, 0, 'labels');
  assert.ok(stream.stats().bytes > 0);
});

test('a single array with "/" chunk keys is one column named after the store; ids are store#row', async () => {
  const store = new FileStore(`${DIR}/cube.zarr`);
  const planned = await zarrStores.planWithStore(store, await listAll(store), {});
  assert.deepEqual(
    planned.map((p) => [p.id, p.key, p.rows]),
    [['cube', '', [0, 30]]],
  );
  const batches = await readAll(await open(store, planned[0], {}), 8);
  assert.deepEqual(batches[0].rows.names, ['cube']);
  assertClose(rowMeans(batches, 'cube'), EXPECTED.cube_zarr.mean, 1e-6, 'cube');
  assert.equal(batches[0].ids?.[2], 'cube#2');
});

test('row ranges are whole chunks: partitionItems 20 over chunks of 16 rows gives 32-row partitions, each chunk fetched once', async () => {
  const store = new CountingStore(new FileStore(DIR));
  const objects = (await listAll(store)).filter((o) => o.key.startsWith('galaxy.zarr/'));
  const job = { idColumn: 'ids', datasets: ['images'], partitionItems: 20 };
  const planned = await zarrStores.planWithStore(store, objects, job);
  assert.deepEqual(
    planned.map((p) => [p.id, p.rows]),
    [
      ['galaxy__0-32', [0, 32]],
      ['galaxy__32-64', [32, 64]],
    ],
  );
  store.whole.length = 0;
  const batches: SourceBatch[] = [];
  for (const p of planned) batches.push(...(await readAll(await open(store, p, job), 16)));
  const chunks = store.whole.filter((k) => /^galaxy\.zarr\/images\/\d/.test(k));
  assert.deepEqual([...chunks].sort(), [
    'galaxy.zarr/images/0.0.0.0',
    'galaxy.zarr/images/1.0.0.0',
    'galaxy.zarr/images/2.0.0.0',
    'galaxy.zarr/images/3.0.0.0',
  ]);
  assert.deepEqual(
    batches.flatMap((b) => b.ids),
    G.ids,
  );
});

test('a v3 array written by zarrita, in a folder with no group metadata, reads the same way', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-zarr3-'));
  try {
    const files = new Map<string, Uint8Array>();
    const mem = {
      get: async (k: `/${string}`) => files.get(k),
      set: async (k: `/${string}`, v: Uint8Array) => void files.set(k, v),
    };
    const arr = await zarr.create(zarr.root(mem).resolve('x'), {
      shape: [12, 3],
      chunkShape: [5, 3],
      dtype: 'float32',
      codecs: [{ name: 'bytes', configuration: { endian: 'little' } }],
    });
    const values = Float32Array.from({ length: 36 }, (_, i) => i / 4);
    await zarr.set(arr, null, { data: values, shape: [12, 3], stride: [3, 1] });
    // Chunked along both axes: read through zarrita's general indexing, not whole-row chunks.
    const tiles = await zarr.create(zarr.root(mem).resolve('y'), {
      shape: [12, 4],
      chunkShape: [5, 2],
      dtype: 'int32',
      codecs: [{ name: 'bytes', configuration: { endian: 'little' } }],
    });
    await zarr.set(tiles, null, {
      data: Int32Array.from({ length: 48 }, (_, i) => i),
      shape: [12, 4],
      stride: [4, 1],
    });
    for (const [k, v] of files) {
      const file = path.join(dir, 'v3.zarr', k);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, v);
    }
    const store = new FileStore(dir);
    const planned = await zarrStores.planWithStore(store, await listAll(store), {});
    assert.deepEqual(
      planned.map((p) => [p.key, p.rows]),
      [['v3.zarr', [0, 12]]],
    );
    const batches = await readAll(await open(store, planned[0], {}), 5);
    assert.deepEqual(batches[0].rows.names, ['x', 'y']);
    assertClose(
      rowMeans(batches, 'y'),
      Array.from({ length: 12 }, (_, i) => 4 * i + 1.5),
      0,
      'y',
    );
    assertClose(
      rowMeans(batches, 'x'),
      Array.from({ length: 12 }, (_, i) => (3 * i + 1) / 4),
      1e-6,
      'x',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('bad input: a missing array lists those that exist; a codec zarrita lacks is named', async () => {
  const store = new FileStore(DIR);
  await rejectsWith(
    () => open(store, { id: 'g', key: 'galaxy.zarr', bytes: 0 }, { datasets: ['images', 'mags'] }),
    ErrorCodes.option,
    ['galaxy.zarr', 'no dataset "/mags"', '/features float64 [64, 5]', '/images uint8 [64, 32, 32, 3]'],
  );
  await rejectsWith(
    async () => readAll(await open(store, { id: 'l', key: 'bad/lzma.zarr', bytes: 0 }, {}), 4),
    ErrorCodes.unsupported,
    ['lzma.zarr', 'array "/lzma"', 'lzma', 'codec'],
  );
  await rejectsWith(() => open(store, { id: 'n', key: 'nothing.zarr', bytes: 0 }, {}), ErrorCodes.notFound, [
    'nothing.zarr',
    'holds no Zarr array',
  ]);
});

async function run(job: Omit<JobSpecInput, 'model' | 'output'>, name: string, shape: (string | number)[]) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-run-zarr-'));
  try {
    const model = path.join(dir, 'trivial.onnx');
    await writeFile(model, buildTrivial({ inputName: name, shape }));
    const output = path.join(dir, 'out');
    const summary = await runJob(
      parseJobSpec({ ...job, model, output, concurrency: 2, threads: 1, batchSize: 8 }),
      { retryBaseMs: 10 },
    );
    const rows = await allPredictions(output);
    return { summary, byId: new Map(rows.map((r) => [String(r.id), r])) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function checkRun(r: Awaited<ReturnType<typeof run>>): void {
  assert.equal(r.summary.status, 'succeeded');
  assert.equal(r.summary.items, 64);
  assert.equal(r.byId.size, 64, 'every item once');
  G.ids.forEach((id, i) => {
    assert.ok(Math.abs(Number(r.byId.get(id)?.mean) - G.features_mean[i]) < 1e-5, id);
    assert.equal(Number(r.byId.get(id)?.label), G.labels[i], id);
  });
}

test('cai run on a folder holding a Zarr store, in chunk-aligned row ranges', async () => {
  const job = {
    input: DIR,
    format: 'zarr',
    datasets: ['features', 'label'],
    idColumn: 'ids',
    label: 'label',
    inputs: { features: 'features' },
    partitionItems: 25,
  };
  // The input folder also holds cube.zarr and an unreadable store: read the galaxy store alone.
  const input = await mkdtemp(path.join(os.tmpdir(), 'cai-zarr-in-'));
  try {
    await cp(`${DIR}/galaxy.zarr`, path.join(input, 'galaxy.zarr'), { recursive: true });
    const planned = await planPartitions(new FileStore(input), { job: { ...job, input } });
    assert.deepEqual(
      planned.map((p) => p.rows),
      [
        [0, 30],
        [30, 60],
        [60, 64],
      ],
      'features come in chunks of 10 rows',
    );
    checkRun(await run({ ...job, input }, 'features', ['N', 5]));
  } finally {
    await rm(input, { recursive: true, force: true });
  }
});

test('cai run on a Zarr store in S3, read chunk by chunk through ranged GETs', async () => {
  const s3 = await startS3Server(['data']);
  try {
    const store = new S3Store('s3://data/galaxy.zarr', { s3Endpoint: s3.endpoint });
    const root = `${DIR}/galaxy.zarr`;
    for (const name of await readdir(root, { recursive: true })) {
      const bytes = await readFile(path.join(root, name)).catch(() => undefined);
      if (bytes) await store.put(name, new Uint8Array(bytes));
    }
    checkRun(
      await run(
        {
          input: 's3://data/galaxy.zarr',
          s3Endpoint: s3.endpoint,
          datasets: ['features', 'label'],
          idColumn: 'ids',
          label: 'label',
          inputs: { features: 'features' },
        },
        'features',
        ['N', 5],
      ),
    );
  } finally {
    await s3.stop();
  }
});
