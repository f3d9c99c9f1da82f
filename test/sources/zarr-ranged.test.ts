// Zarr on a loopback S3 server, counted at the server (a proxy logs every request): an open lists
// nothing when the job names its datasets or the store has consolidated metadata (zarr-python's
// .zmetadata), and a row-range partition of a sharded Zarr v3 array fetches its inner chunks' byte ranges
// and each shard's index, never a whole shard, with NumPy's values. Fixtures: scripts/fixtures/
// make_ranged_fixtures.py (zarr 2.13), make_consolidated_fixture.py (zarr 2.13), make_sharded_v3_fixture.py
// (laid out by hand per the Zarr v3 spec: nothing here writes sharded v3; its header says why).
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import type { ArraySourceFields } from '../../src/formats/arrays/index.js';
import type { PlannedPartition } from '../../src/formats/planned-partition.js';
import { openZarr, zarrStores } from '../../src/formats/zarr/index.js';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import { FileStore } from '../../src/storage/file-store.js';
import '../../src/storage/register.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { uploadTree } from '../helpers/s3-upload.js';
import { startS3Server } from '../helpers/s3-server.js';
import { startRequestLog, type LoggedRequest, type RequestLog } from '../helpers/s3-request-log.js';
import { assertClose, FIXTURES, readAll, rowMeans } from './helpers.js';

const upload = uploadTree;

const isList = (r: LoggedRequest) => r.method === 'GET' && r.query.includes('list-type');
const isGet = (r: LoggedRequest) => r.method === 'GET' && !isList(r);

async function during<T>(
  log: RequestLog,
  fn: () => Promise<T>,
): Promise<{ value: T; requests: LoggedRequest[] }> {
  const from = log.requests().length;
  const value = await fn();
  return { value, requests: log.requests().slice(from) };
}

const read = async (store: S3Store, p: PlannedPartition, job: ArraySourceFields) =>
  readAll(await zarrStores.open(store, p, job as never), 16);

test('a Zarr open lists nothing when the job names its datasets or the store has consolidated metadata', async () => {
  const s3 = await startS3Server(['data']);
  const log = await startRequestLog(s3.endpoint);
  try {
    const store = new S3Store('s3://data/z', { s3Endpoint: log.endpoint });
    await upload(store, `${FIXTURES}ranged/rows.zarr`, 'rows.zarr/');
    await upload(store, `${FIXTURES}consolidated/rows.zarr`, 'cons.zarr/');
    const part = (key: string, rows: [number, number]): PlannedPartition => ({
      id: 'p',
      key,
      bytes: 0,
      rows,
    });

    // Named datasets: their metadata and chunks, no listing.
    const named = await during(log, () =>
      read(store, part('rows.zarr', [0, 64]), { datasets: ['images'], idColumn: 'ids' }),
    );
    assert.equal(named.requests.filter(isList).length, 0, 'no LIST with named datasets');
    const metaGets = named.requests.filter(
      (r) => isGet(r) && /\/\.z(array|group|attrs|metadata)$/.test(r.path),
    );
    // The root's and the named arrays' possible metadata objects, fetched at once (missing ones too).
    assert.ok(metaGets.length <= 11, `${metaGets.length} metadata GETs`);
    assert.equal(named.value.flatMap((b) => b.ids).length, 64);

    // Nothing named, no consolidated metadata: the store is listed to find its arrays (once per open).
    const unnamed = await during(log, () => read(store, part('rows.zarr', [0, 64]), { idColumn: 'ids' }));
    assert.equal(unnamed.requests.filter(isList).length, 1, 'one LIST (paginated) to find the arrays');

    // Consolidated metadata: one GET of .zmetadata gives every array, nested ones too; no LIST, and no
    // GET of an array's metadata object.
    const expected = JSON.parse(await readFile(`${FIXTURES}consolidated/expected.json`, 'utf8')) as {
      ids: number[];
      image_mean: number[];
    };
    const cons = await during(log, () => read(store, part('cons.zarr', [16, 48]), { idColumn: 'ids' }));
    assert.equal(cons.requests.filter(isList).length, 0, 'no LIST with consolidated metadata');
    const consMeta = cons.requests.filter((r) => isGet(r) && /\/(\.z\w+|zarr\.json)$/.test(r.path));
    // The root's metadata objects, fetched at once; no array's own .zarray (they are in .zmetadata).
    assert.deepEqual(
      consMeta
        .filter((r) => r.status === 200)
        .map((r) => r.path.slice(r.path.indexOf('cons.zarr/') + 'cons.zarr/'.length))
        .sort(),
      ['.zgroup', '.zmetadata'],
    );
    assert.deepEqual(cons.value[0].rows.names, ['extra/flux', 'images']);
    assert.deepEqual(
      cons.value.flatMap((b) => b.ids),
      expected.ids.slice(16, 48).map(String),
    );
    assertClose(rowMeans(cons.value, 'images'), expected.image_mean.slice(16, 48), 1e-12, 'images');
  } finally {
    await log.stop();
    await s3.stop();
  }
});

interface Sharded {
  items: number;
  inner_rows: number;
  ids: number[];
  image_mean: number[];
  image_shards: { key: string; size: number; inner: ([number, number] | null)[] }[];
  id_shards: { key: string; size: number; inner: ([number, number] | null)[] }[];
}

test('sharded Zarr v3 on S3: a row-range partition fetches its inner chunks and the shard indexes, nothing else', async (t) => {
  const E = JSON.parse(await readFile(`${FIXTURES}sharded/expected.json`, 'utf8')) as Sharded;
  const s3 = await startS3Server(['data']);
  const log = await startRequestLog(s3.endpoint);
  try {
    const store = new S3Store('s3://data/v3', { s3Endpoint: log.endpoint });
    const objects = await upload(store, `${FIXTURES}sharded/rows.zarr`, 'rows.zarr/');
    const job: ArraySourceFields = { datasets: ['images'], idColumn: 'ids', partitionItems: 32 };
    const listed = objects.filter((o) => zarrStores.accepts(o.key));
    const planning = await during(log, () => zarrStores.planWithStore(store, listed, job));
    const planGets = planning.requests.filter(isGet).map((r) => `${r.path} ${r.range ?? ''}`);
    assert.ok(
      planGets.every((r) => !r.includes('/images/c/')),
      `planning reads no image: ${planGets.join(', ')}`,
    );
    const planned = planning.value;
    assert.deepEqual(
      planned.map((p) => p.rows),
      Array.from({ length: 8 }, (_, i) => [32 * i, 32 * i + 32]),
    );
    const indexBytes = (inner: unknown[]) => 16 * inner.length + 4;
    const imageShardKeys = new Set(E.image_shards.map((s) => `rows.zarr/${s.key}`));
    let total = 0;
    for (const p of planned) {
      const [a, b] = p.rows as [number, number];
      const { value: batches, requests } = await during(log, () => read(store, p, job));
      // What this partition needs from the images' shard: its index and the inner chunks of its rows.
      const shard = E.image_shards[Math.floor(a / 64)];
      const needed = shard.inner.filter((_, c) => {
        const row = Math.floor(a / 64) * 64 + c * E.inner_rows;
        return row >= a && row < b;
      });
      const chunkBytes = needed.reduce((s, r) => s + (r ? r[1] : 0), 0);
      const images = requests.filter((r) => isGet(r) && [...imageShardKeys].some((k) => r.path.endsWith(k)));
      const fetched = images.reduce((s, r) => s + r.bytes, 0);
      t.diagnostic(
        `rows [${a}, ${b}): images ${fetched} bytes in ${images.length} ranged GETs; inner chunks ${chunkBytes} + index ${indexBytes(shard.inner)} of a ${shard.size}-byte shard`,
      );
      assert.equal(fetched, chunkBytes + indexBytes(shard.inner), `rows [${a}, ${b})`);
      assert.ok(
        images.every((r) => r.range),
        'every GET of a shard is ranged',
      );
      assert.equal(
        images.length,
        1 + needed.filter((r) => r).length,
        'the index, then one GET per inner chunk',
      );
      assert.equal(requests.filter(isList).length, 0);
      total += fetched;
      assert.deepEqual(
        batches.flatMap((x) => x.ids),
        E.ids.slice(a, b).map(String),
      );
      assertClose(rowMeans(batches, 'images'), E.image_mean.slice(a, b), 1e-12, `images [${a}, ${b})`);
    }
    const stored = E.image_shards.reduce((s, x) => s + x.size, 0);
    t.diagnostic(`all partitions: ${total} bytes of images for ${stored} stored`);
    // Each shard's index is read by each of its two partitions: the only bytes read twice.
    assert.equal(total, stored + E.image_shards.reduce((s, x) => s + indexBytes(x.inner), 0));
  } finally {
    await log.stop();
    await s3.stop();
  }
});

test('a metadata probe answered "access denied" counts as missing, but an open that finds nothing says access was denied', async () => {
  // S3 answers 403 for a missing key to a role that may list only a prefix: v2 stores have no zarr.json.
  const deny = (key: string) => new CaiError(ErrorCodes.accessDenied, key, 'access denied (AccessDenied)');
  class Denying extends FileStore {
    constructor(private readonly denied: (key: string) => boolean) {
      super(`${FIXTURES}ranged`);
    }
    override async get(key: string, options?: Parameters<FileStore['get']>[1]): Promise<Uint8Array> {
      if (this.denied(key)) throw deny(key);
      return super.get(key, options);
    }
  }
  const missingDenied = new Denying((k) => /(zarr\.json|\.zattrs|\.zmetadata)$/.test(k));
  const ds = await openZarr(missingDenied, 'rows.zarr', { paths: ['images'] });
  assert.deepEqual(
    ds.arrays.map((a) => a.path),
    ['images'],
  );
  const allDenied = new Denying(() => true);
  await assert.rejects(openZarr(allDenied, 'rows.zarr', { paths: ['images'] }), (err: unknown) => {
    assert.ok(err instanceof CaiError);
    assert.equal(err.code, ErrorCodes.accessDenied);
    return true;
  });
});
