// S3Store under injected faults: a loopback proxy in front of s3rver answers 503 SlowDown or drops
// connections (before the server sees a request, or halfway through a response) for a seeded share
// of requests. Every object must still be written and read intact, and the counters must show it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import { isRetryableS3Error, s3ErrorName } from '../../src/storage/s3-errors.js';
import { diffStats } from '../../src/storage/s3-stats.js';
import { S3Store, type S3StoreOptions } from '../../src/storage/s3-store.js';
import { type FaultProxy, startFaultProxy } from '../helpers/fault-proxy.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { pseudoRandomBytes } from './store-contract.js';

let s3: S3TestServer;
const proxies: FaultProxy[] = [];
const stores: S3Store[] = [];

function store(uri: string, endpoint: string, options: S3StoreOptions = {}): S3Store {
  const s = new S3Store(uri, {
    s3Endpoint: endpoint,
    retry: { attempts: 4, baseMs: 2, maxMs: 20 },
    ...options,
  });
  stores.push(s);
  return s;
}

async function proxy(options: Omit<Parameters<typeof startFaultProxy>[0], 'target'>): Promise<FaultProxy> {
  const p = await startFaultProxy({ target: s3.endpoint, lifetimeMs: 60_000, ...options });
  proxies.push(p);
  return p;
}

before(async () => {
  s3 = await startS3Server(['faulty']);
});
after(async () => {
  for (const s of stores) s.close();
  await Promise.all(proxies.map((p) => p.stop()));
  await s3?.stop();
});

describe('S3Store under injected faults', () => {
  test('every object is written and read intact through 503s and dropped connections', async () => {
    const faults = await proxy({ seed: 42, slowDownRate: 0.15, dropRate: 0.15, maxConsecutive: 2 });
    const flaky = store('s3://faulty/run', faults.endpoint);
    const direct = store('s3://faulty/run', s3.endpoint);

    const small = Array.from(
      { length: 60 },
      (_, i) => [`parts/${i + 1}.bin`, pseudoRandomBytes(3000 + i * 97, i + 1)] as const,
    );
    const big = pseudoRandomBytes(10 * 1024 * 1024 + 333, 77);
    let next = 0;
    await Promise.all([
      flaky.put('big/blob.bin', big),
      ...Array.from({ length: 4 }, async () => {
        while (next < small.length) {
          const [key, body] = small[next++];
          await flaky.put(key, body);
        }
      }),
    ]);

    // What the server holds, read without faults: every object, whole, and nothing else.
    const listed = new Map<string, number>();
    for await (const o of direct.list()) listed.set(o.key, o.size);
    assert.equal(listed.size, small.length + 1);
    for (const [key, body] of small) {
      assert.equal(Buffer.compare(Buffer.from(await direct.get(key)), Buffer.from(body)), 0, key);
    }
    assert.equal(Buffer.compare(Buffer.from(await direct.get('big/blob.bin')), Buffer.from(big)), 0);

    // And read back through the faults: whole objects, ranges, heads and the listing.
    const readsBefore = flaky.stats();
    for (const [key, body] of small) {
      assert.equal(Buffer.compare(Buffer.from(await flaky.get(key)), Buffer.from(body)), 0, key);
      assert.equal((await flaky.head(key))?.size, body.byteLength);
      const part = await flaky.getRange(key, 100, 1100);
      assert.equal(Buffer.compare(Buffer.from(part), Buffer.from(body.subarray(100, 1100))), 0, key);
    }
    assert.equal(Buffer.compare(Buffer.from(await flaky.get('big/blob.bin')), Buffer.from(big)), 0);
    let n = 0;
    for await (const _ of flaky.list('parts')) n++;
    assert.equal(n, small.length);
    const reads = diffStats(flaky.stats(), readsBefore);

    const c = faults.counts();
    const stats = flaky.stats();
    assert.ok(
      c.slowDowns > 5 && c.drops > 5 && c.dropsAfterServer > 2,
      `faults injected: ${JSON.stringify(c)}`,
    );
    assert.ok(reads.retries > 0, 'reads were retried too');
    // Each injected fault cost the client exactly one retry (a stale pooled socket could add more).
    assert.ok(stats.retries >= c.slowDowns + c.drops, `${JSON.stringify(stats)} vs ${JSON.stringify(c)}`);
    assert.ok(stats.requests >= c.requests, 'every request the proxy saw was counted by the store');
    assert.ok(stats.bytes > 2 * big.byteLength, 'bytes of both directions, retries included');
  });

  test('a download cut off halfway through its body is sent again, not returned short', async () => {
    const faults = await proxy({
      seed: 9,
      dropRate: 1,
      dropWhere: 'after',
      maxConsecutive: 1,
      eligible: (method) => method === 'GET',
    });
    const flaky = store('s3://faulty/cut', faults.endpoint);
    const body = pseudoRandomBytes(300_000, 4);
    await flaky.put('model.onnx', body);
    const whole = await flaky.get('model.onnx');
    const range = await flaky.getRange('model.onnx', 1000, 201_000);
    assert.equal(Buffer.compare(Buffer.from(whole), Buffer.from(body)), 0);
    assert.equal(Buffer.compare(Buffer.from(range), Buffer.from(body.subarray(1000, 201_000))), 0);
    assert.equal(faults.counts().dropsAfterServer, 2);
    const s = flaky.stats();
    assert.deepEqual([s.requests, s.retries], [5, 2]);
    // The bytes that arrived before each cut were paid for and are counted.
    assert.ok(
      s.bytes > 2 * body.byteLength + 200_000 && s.bytes < 3 * body.byteLength + 300_000,
      String(s.bytes),
    );
  });

  test('a multipart upload that keeps failing leaves no object behind and reports the real error', async () => {
    const faults = await proxy({
      seed: 1,
      slowDownRate: 1,
      maxConsecutive: Infinity,
      eligible: (method, url) => method === 'PUT' && url.includes('partNumber=2'),
    });
    const flaky = store('s3://faulty/broken', faults.endpoint);
    const direct = store('s3://faulty/broken', s3.endpoint);
    await assert.rejects(flaky.put('out/big.bin', pseudoRandomBytes(11 * 1024 * 1024, 5)), (err: unknown) => {
      assert.equal(s3ErrorName(err), 'SlowDown');
      assert.ok(isRetryableS3Error(err), 'transient errors stay classifiable after the retries');
      return true;
    });
    assert.equal(faults.counts().slowDowns, 4, 'part 2 was tried `attempts` times');
    assert.equal(flaky.stats().retries, 3);
    assert.equal(await direct.head('out/big.bin'), undefined);
    for await (const o of direct.list()) assert.fail(`nothing may be visible, found ${o.key}`);
  });

  test('client errors are not retried even when the network is flaky', async () => {
    const faults = await proxy({ seed: 3, slowDownRate: 0, dropRate: 0 });
    const flaky = store('s3://faulty/none', faults.endpoint);
    await assert.rejects(
      flaky.get('missing.bin'),
      (e: unknown) => e instanceof CaiError && e.code === ErrorCodes.notFound,
    );
    assert.deepEqual([flaky.stats().requests, flaky.stats().retries, faults.counts().requests], [1, 0, 1]);
  });

  test('one retry loop per request: a dead endpoint costs exactly `attempts` requests', async () => {
    const closed = await proxy({});
    const endpoint = closed.endpoint;
    await closed.stop();
    const dead = store('s3://faulty/x', endpoint, { retry: { attempts: 3, baseMs: 1, maxMs: 5 } });
    await assert.rejects(dead.get('k'), (err: unknown) => {
      assert.ok(isRetryableS3Error(err));
      assert.equal((err as NodeJS.ErrnoException).code, 'ECONNREFUSED');
      return true;
    });
    assert.deepEqual([dead.stats().requests, dead.stats().retries], [3, 2]);
  });
});
