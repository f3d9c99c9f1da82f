// HDF5 and Zarr objects on a loopback S3 server read by byte range: planning reads metadata only, and a
// row-range partition fetches the chunks of its rows and little else, counted at the server (a proxy
// records every answer's bytes). Fixtures: scripts/fixtures/make_ranged_fixtures.py (h5py, zarr 2.13),
// with each HDF5 chunk's offset and size as h5py reports them. A `cai run` over the S3 copy predicts
// exactly what the same run over the local files predicts.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { ArraySourceFields } from '../../src/formats/arrays/index.js';
import { hdf5Files } from '../../src/formats/hdf5/index.js';
import { zarrStores } from '../../src/formats/zarr/index.js';
import type { PlannedPartition } from '../../src/formats/planned-partition.js';
import type { StoreSourceKind } from '../../src/formats/source.js';
import { parseJobSpec } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { runJob } from '../../src/run/run.js';
import '../../src/storage/register.js';
import { S3Store } from '../../src/storage/s3-store.js';
import type { ObjectInfo } from '../../src/storage/store.js';
import { allPredictions } from '../helpers/demo-fixture.js';
import { uploadTree } from '../helpers/s3-upload.js';
import { startS3Server } from '../helpers/s3-server.js';
import { startRequestLog, type RequestLog } from '../helpers/s3-request-log.js';
import { assertClose, FIXTURES, readAll, rowMeans } from './helpers.js';

const DIR = `${FIXTURES}ranged`;
interface Expected {
  items: number;
  chunk_rows: number;
  ids: number[];
  image_mean: number[];
  h5_chunks: { row: number; offset: number; size: number }[];
  h5_size: number;
}
const E = JSON.parse(await readFile(`${DIR}/expected.json`, 'utf8')) as Expected;
const JOB: ArraySourceFields = { datasets: ['images'], idColumn: 'ids', partitionItems: 128 };

/** Bytes the server sent for GETs of keys matching `match`, from request `from` on. */
function served(log: RequestLog, match: (key: string) => boolean, from = 0): { bytes: number; gets: number } {
  const gets = log
    .requests()
    .slice(from)
    .filter((r) => r.method === 'GET' && match(r.path) && !r.query.includes('list-type'));
  return { bytes: gets.reduce((s, r) => s + r.bytes, 0), gets: gets.length };
}

const upload = uploadTree;

async function partitionsFetch(
  kind: StoreSourceKind<ArraySourceFields>,
  store: S3Store,
  log: RequestLog,
  objects: readonly ObjectInfo[],
  match: (key: string) => boolean,
) {
  const at = log.requests().length;
  const planned = await kind.planWithStore(store, objects, JOB);
  const plan = served(log, match, at);
  const parts: { p: PlannedPartition; bytes: number; gets: number; means: number[] }[] = [];
  for (const p of planned) {
    const from = log.requests().length;
    const batches = await readAll(await kind.open(store, p, JOB as never), 32);
    parts.push({ p, ...served(log, match, from), means: rowMeans(batches, 'images') });
  }
  return { planned, plan, parts };
}

test('HDF5 on S3: planning reads metadata only; each row-range partition fetches its chunks (<= 1.3x) plus the metadata an open reads', async (t) => {
  const s3 = await startS3Server(['data']);
  const log = await startRequestLog(s3.endpoint);
  try {
    const store = new S3Store('s3://data/h5', { s3Endpoint: log.endpoint });
    const objects = await upload(store, DIR, '').then((o) => o.filter((x) => x.key === 'rows.h5'));
    const { planned, plan, parts } = await partitionsFetch(hdf5Files, store, log, objects, (k) =>
      k.endsWith('rows.h5'),
    );
    assert.deepEqual(
      planned.map((p) => p.rows),
      [
        [0, 128],
        [128, 256],
        [256, 384],
        [384, 512],
      ],
    );
    // Opening reads the superblock and object headers: two 64 KiB pages at most, whatever the object's size.
    assert.ok(
      plan.bytes <= 2 * 64 * 1024 && plan.gets <= 2,
      `planning fetched ${plan.bytes} bytes in ${plan.gets} GETs`,
    );
    for (const { p, bytes, gets, means } of parts) {
      const [a, b] = p.rows as [number, number];
      const chunks = E.h5_chunks.filter((c) => c.row >= a && c.row < b).reduce((s, c) => s + c.size, 0);
      const ids = 8 * (b - a);
      const bound = plan.bytes + 1.3 * (chunks + ids);
      assert.ok(
        bytes <= bound,
        `rows [${a}, ${b}) fetched ${bytes} bytes (${gets} GETs); its chunks are ${chunks}, bound ${bound}`,
      );
      t.diagnostic(
        `rows [${a}, ${b}): ${bytes} bytes in ${gets} GETs; chunks ${chunks}, an open ${plan.bytes}`,
      );
      // A few coalesced GETs, not one per chunk of 32 rows.
      assert.ok(gets <= 5, `rows [${a}, ${b}) took ${gets} GETs`);
      assertClose(means, E.image_mean.slice(a, b), 1e-12, `images [${a}, ${b})`);
    }
    const total = parts.reduce((s, x) => s + x.bytes, 0);
    assert.ok(
      total < 4 * plan.bytes + 1.3 * E.h5_size,
      `the four partitions fetched ${total} of ${E.h5_size}`,
    );
  } finally {
    await log.stop();
    await s3.stop();
  }
});

test("HDF5 on S3: a worker keeps an object's chunk index for its next partition, and drops it when the object changes", async () => {
  const s3 = await startS3Server(['data']);
  const log = await startRequestLog(s3.endpoint);
  try {
    const store = new S3Store('s3://data/h5', { s3Endpoint: log.endpoint });
    const objects = await upload(store, DIR, '').then((o) => o.filter((x) => x.key === 'rows.h5'));
    const [first] = await hdf5Files.planWithStore(store, objects, JOB);
    const readFirst = async () => {
      const from = log.requests().length;
      await readAll(await hdf5Files.open(store, first, JOB as never), 32);
      return served(log, (k) => k.endsWith('rows.h5'), from).bytes;
    };
    const [a, b] = first.rows as [number, number];
    const chunks = E.h5_chunks.filter((c) => c.row >= a && c.row < b).reduce((s, c) => s + c.size, 0);
    await readFirst();
    const kept = await readFirst();
    // The same object again: only its chunks (and the ids') are fetched, no metadata.
    assert.ok(
      kept <= 1.3 * (chunks + 8 * (b - a)),
      `a second open fetched ${kept} bytes for ${chunks} of chunks`,
    );
    // The object rewritten with the same size (a byte of the last chunk, which this partition does not
    // read), possibly within the same second: its ETag differs, so the index is read again.
    const body = new Uint8Array(await readFile(`${DIR}/rows.h5`));
    const last = E.h5_chunks[E.h5_chunks.length - 1];
    assert.ok(last.row >= b, 'the changed chunk is outside the partition');
    body[last.offset + 1] ^= 0xff;
    await store.put('rows.h5', body);
    const after = await readFirst();
    assert.ok(after > kept + 4096, `after the rewrite an open fetched ${after} bytes (kept index: ${kept})`);
  } finally {
    await log.stop();
    await s3.stop();
  }
});

test('Zarr v2 on S3: each row-range partition fetches only the chunk objects of its rows (and the metadata)', async (t) => {
  const s3 = await startS3Server(['data']);
  const log = await startRequestLog(s3.endpoint);
  try {
    const store = new S3Store('s3://data/z', { s3Endpoint: log.endpoint });
    const objects = await upload(store, path.join(DIR, 'rows.zarr'), 'rows.zarr/');
    const size = (k: string) => objects.find((o) => o.key === `rows.zarr/${k}`)?.size ?? 0;
    const meta = [
      '.zgroup',
      '.zattrs',
      'images/.zarray',
      'images/.zattrs',
      'ids/.zarray',
      'ids/.zattrs',
      'ids/0',
    ]
      .map(size)
      .reduce((s, n) => s + n, 0);
    const listed = objects.filter((o) => !path.posix.basename(o.key).startsWith('.'));
    const { planned, plan, parts } = await partitionsFetch(zarrStores, store, log, listed, (k) =>
      k.includes('rows.zarr/'),
    );
    assert.equal(planned.length, 4);
    assert.ok(plan.bytes <= meta, `planning fetched ${plan.bytes} bytes; the metadata is ${meta}`);
    for (const { p, bytes, gets, means } of parts) {
      const [a, b] = p.rows as [number, number];
      let chunks = 0;
      for (let c = a / E.chunk_rows; c < b / E.chunk_rows; c++) chunks += size(`images/${c}.0.0.0`);
      t.diagnostic(`rows [${a}, ${b}): ${bytes} bytes in ${gets} GETs; chunks ${chunks}, metadata ${meta}`);
      assert.ok(bytes <= meta + 1.3 * chunks, `rows [${a}, ${b}) fetched ${bytes}; its chunks are ${chunks}`);
      assert.ok(bytes >= chunks, 'every chunk of its rows');
      assertClose(means, E.image_mean.slice(a, b), 1e-12, `images [${a}, ${b})`);
    }
  } finally {
    await log.stop();
    await s3.stop();
  }
});

test('cai run over the HDF5 object in S3 predicts exactly what it predicts over the local file; no file downloaded whole', async (t) => {
  const s3 = await startS3Server(['data']);
  const log = await startRequestLog(s3.endpoint);
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-ranged-run-'));
  try {
    const store = new S3Store('s3://data/h5', { s3Endpoint: log.endpoint });
    await store.put('rows.h5', await readFile(path.join(DIR, 'rows.h5')));
    const model = path.join(dir, 'trivial.onnx');
    await writeFile(model, buildTrivial({ inputName: 'images', shape: ['N', 16, 16, 3] }));
    const run = async (input: string, output: string) => {
      const job = { ...JOB, datasets: { images: 'images' }, input, model, output, s3Endpoint: log.endpoint };
      const summary = await runJob(parseJobSpec({ ...job, concurrency: 2, threads: 1, batchSize: 32 }), {
        retryBaseMs: 10,
      });
      assert.equal(summary.status, 'succeeded');
      const rows = await allPredictions(output);
      return new Map(rows.map((r) => [String(r.id), Number(r.mean)]));
    };
    await mkdir(path.join(dir, 'local'));
    await writeFile(path.join(dir, 'local', 'rows.h5'), await readFile(path.join(DIR, 'rows.h5')));
    const local = await run(path.join(dir, 'local'), path.join(dir, 'out-local'));
    const from = log.requests().length;
    const remote = await run('s3://data/h5', path.join(dir, 'out-s3'));
    assert.equal(local.size, E.items);
    assert.deepEqual(remote, local, 'the same predictions, bit for bit');
    E.ids.forEach((id, i) =>
      assert.ok(Math.abs((local.get(String(id)) ?? NaN) - E.image_mean[i]) < 1e-4, `${id}`),
    );
    const got = served(log, (k) => k.endsWith('rows.h5'), from);
    t.diagnostic(`the run fetched ${got.bytes} bytes in ${got.gets} GETs of a ${E.h5_size}-byte object`);
    // Planning, the preflight and four partitions each open the file (its metadata pages), and the
    // partitions fetch the chunks: never a whole copy per reader.
    const opens = 6;
    assert.ok(
      got.bytes <= opens * 2 * 64 * 1024 + 1.3 * E.h5_size,
      `the run fetched ${got.bytes} bytes of a ${E.h5_size}-byte object`,
    );
    assert.ok(
      log
        .requests()
        .slice(from)
        .every((r) => r.method !== 'GET' || !r.path.endsWith('rows.h5') || r.range),
      'every GET of the object is ranged',
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
    await log.stop();
    await s3.stop();
  }
});
