import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import { openParent, openStore } from '../../src/storage/open.js';
import { registerS3Store } from '../../src/storage/s3.js';
import { diffStats, isCountingStore } from '../../src/storage/s3-stats.js';
import { parseS3Uri, S3Store, type S3StoreOptions } from '../../src/storage/s3-store.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { pseudoRandomBytes, storeContract } from './store-contract.js';

let s3: S3TestServer;
let cacheDir = '';
const opened: S3Store[] = [];

function s3Store(uri: string, options: S3StoreOptions = {}): S3Store {
  const store = new S3Store(uri, {
    s3Endpoint: s3.endpoint,
    cacheDir,
    retry: { baseMs: 5, maxMs: 50 },
    ...options,
  });
  opened.push(store);
  return store;
}

before(async () => {
  s3 = await startS3Server(['data', 'other']);
  cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cai-s3-cache-test-'));
});
after(async () => {
  for (const store of opened) store.close();
  await s3?.stop();
  await fs.rm(cacheDir, { recursive: true, force: true });
});

storeContract('S3Store (s3rver)', async (tag) => s3Store(`s3://data/contract/${tag}`));

/** Runs `fn` over `items` with at most `limit` at once. */
async function pool<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: limit }, async () => {
      while (next < items.length) await fn(items[next++]);
    }),
  );
}

describe('S3Store', () => {
  test('parses s3:// URIs into bucket and prefix, and refuses other shapes', () => {
    assert.deepEqual(parseS3Uri('s3://b'), { bucket: 'b', prefix: '' });
    assert.deepEqual(parseS3Uri('s3://b/'), { bucket: 'b', prefix: '' });
    assert.deepEqual(parseS3Uri('s3://b/galaxies/25mb/'), { bucket: 'b', prefix: 'galaxies/25mb/' });
    assert.throws(
      () => parseS3Uri('s3:///key'),
      (e: unknown) => e instanceof CaiError && e.code === ErrorCodes.option,
    );
    const store = s3Store('s3://data/runs/1/');
    assert.equal(store.uri, 's3://data/runs/1');
    assert.equal(store.describe('results/1.json'), 's3://data/runs/1/results/1.json');
  });

  test('openStore and openParent open S3 URIs once registered, with the endpoint from options or env', async () => {
    registerS3Store();
    const store = await openStore('s3://data/opened', { s3Endpoint: s3.endpoint });
    assert.ok(store instanceof S3Store);
    opened.push(store);
    await store.put('models/m.onnx', 'model-bytes');
    const saved = process.env.AWS_ENDPOINT_URL_S3;
    process.env.AWS_ENDPOINT_URL_S3 = s3.endpoint;
    try {
      const [parent, key] = await openParent('s3://data/opened/models/m.onnx');
      opened.push(parent as S3Store);
      assert.equal(parent.uri, 's3://data/opened/models');
      assert.equal(key, 'm.onnx');
      assert.equal(Buffer.from(await parent.get(key)).toString(), 'model-bytes');
    } finally {
      if (saved === undefined) delete process.env.AWS_ENDPOINT_URL_S3;
      else process.env.AWS_ENDPOINT_URL_S3 = saved;
    }
  });

  test('lists all of 1,234 keys, following continuation tokens past the 1000-key page', async () => {
    const store = s3Store('s3://data/paged');
    const keys = Array.from({ length: 1234 }, (_, i) => `parts/${i + 1}.pt`);
    await pool(keys, 8, (k) => store.put(k, k));
    const before = store.stats();
    const listed = new Map<string, number>();
    for await (const o of store.list()) listed.set(o.key, o.size);
    const listing = diffStats(store.stats(), before);
    assert.equal(listed.size, 1234);
    for (const k of keys) assert.equal(listed.get(k), Buffer.byteLength(k), k);
    assert.equal(listing.requests, 2, 'two pages: 1000 keys, then 234');
    assert.equal(listing.retries, 0);
    assert.ok(listing.bytes > 1234 * 20, 'the listing XML was counted');
    let underParts = 0;
    for await (const _ of store.list('parts/')) underParts++;
    assert.equal(underParts, 1234);
  });

  test('a missing bucket is E_NOT_FOUND naming the s3:// URI, at once and without retries', async () => {
    const store = s3Store('s3://no-such-bucket/input');
    const check = (err: unknown): boolean => {
      assert.ok(err instanceof CaiError);
      assert.equal(err.code, ErrorCodes.notFound);
      assert.match(err.message, /s3:\/\/no-such-bucket\/input/);
      assert.match(err.message, /bucket s3:\/\/no-such-bucket does not exist/);
      return true;
    };
    await assert.rejects(async () => {
      for await (const _ of store.list()) assert.fail('nothing to list');
    }, check);
    await assert.rejects(store.get('1.pt'), check);
    await assert.rejects(store.head('1.pt'), check);
    await assert.rejects(store.put('1.pt', 'x'), check);
    const stats = store.stats();
    assert.equal(stats.retries, 0);
    assert.equal(
      stats.requests,
      5,
      'one request each, plus the HeadBucket that tells a missing bucket from a key',
    );
  });

  // s3rver checks the access key id but not SigV4 signatures, so an unknown key id stands for denial.
  test('denied access (an unknown access key) is a clear error, not a retry loop', async () => {
    const store = s3Store('s3://data/x', {
      credentials: { accessKeyId: 'NOBODY', secretAccessKey: 'wrong' },
    });
    await assert.rejects(store.get('k'), (err: unknown) => {
      assert.ok(err instanceof CaiError);
      assert.equal(err.code, ErrorCodes.accessDenied);
      assert.match(err.message, /^s3:\/\/data\/x\/k: access denied \(InvalidAccessKeyId\)/);
      return true;
    });
    assert.deepEqual(
      { requests: store.stats().requests, retries: store.stats().retries },
      { requests: 1, retries: 0 },
    );
  });

  test('missing credentials are a clear error naming what to set, found without leaving the machine', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    try {
      const store = s3Store('s3://data/x');
      await assert.rejects(store.get('k'), (err: unknown) => {
        assert.ok(err instanceof CaiError, String(err));
        assert.match(err.message, /^s3:\/\/data\/x\/k: no AWS credentials found; set AWS_PROFILE/);
        return true;
      });
      assert.equal(store.stats().retries, 0);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
    }
  });

  test('a 10 MB put goes up as a multipart upload; small ones as one PutObject', async () => {
    const store = s3Store('s3://data/multipart');
    const big = pseudoRandomBytes(10 * 1024 * 1024, 3);
    let snap = store.stats();
    await store.put('out/big.bin', big);
    const bigPut = diffStats(store.stats(), snap);
    assert.equal(bigPut.requests, 4, 'CreateMultipartUpload, two UploadParts, CompleteMultipartUpload');
    assert.ok(bigPut.bytes >= big.byteLength);
    snap = store.stats();
    await store.put('out/small.bin', big.subarray(0, 1000));
    assert.equal(diffStats(store.stats(), snap).requests, 1);
    assert.equal(Buffer.compare(Buffer.from(await store.get('out/big.bin')), Buffer.from(big)), 0);
  });

  test('localPath downloads once per version, in ranged chunks, and later calls only HEAD', async () => {
    const store = s3Store('s3://data/models', { downloadChunkSize: 100_000 });
    const v1 = pseudoRandomBytes(250_000, 11);
    await store.put('astromae.onnx', v1);

    let snap = store.stats();
    const [a, b] = await Promise.all([store.localPath('astromae.onnx'), store.localPath('astromae.onnx')]);
    const first = diffStats(store.stats(), snap);
    assert.equal(a, b);
    assert.ok(a.startsWith(cacheDir) && a.endsWith('astromae.onnx'), a);
    assert.equal(Buffer.compare(await fs.readFile(a), Buffer.from(v1)), 0);
    assert.equal(first.requests, 2 + 3, 'two HEADs, one download of three ranged GETs');
    assert.equal(first.bytes, v1.byteLength);

    snap = store.stats();
    assert.equal(await store.localPath('astromae.onnx'), a);
    assert.deepEqual(
      { ...diffStats(store.stats(), snap), seconds: 0 },
      { requests: 1, retries: 0, bytes: 0, seconds: 0 },
    );

    // Another process on the same machine (another store, same cache) finds the file too.
    const other = s3Store('s3://data/models');
    assert.equal(await other.localPath('astromae.onnx'), a);
    assert.equal(other.stats().requests, 1);
    assert.equal(other.stats().bytes, 0);

    // A re-uploaded model is a new version and is fetched again.
    const v2 = pseudoRandomBytes(250_000, 12);
    await store.put('astromae.onnx', v2);
    const c = await store.localPath('astromae.onnx');
    assert.notEqual(c, a);
    assert.equal(Buffer.compare(await fs.readFile(c), Buffer.from(v2)), 0);
    const leftovers = (await fs.readdir(path.dirname(c))).filter((f) => f.includes('.tmp-'));
    assert.deepEqual(leftovers, []);
  });

  test('stats are exposed through isCountingStore and grow with traffic', async () => {
    const store = s3Store('s3://other/stats');
    assert.ok(isCountingStore(store));
    assert.deepEqual(store.stats(), { requests: 0, retries: 0, bytes: 0, seconds: 0 });
    await store.put('a.bin', new Uint8Array(1000));
    await store.get('a.bin');
    const s = store.stats();
    assert.equal(s.requests, 2);
    assert.equal(s.bytes, 2000);
    assert.ok(s.seconds > 0 && s.seconds < 10);
    assert.ok(Object.isFrozen(s));
  });
});
