// A lying S3 endpoint: a well-formed 200 whose body is half the object (only the planned size tells)
// is a transient fault, retried and counted; past the retries it is one clear error naming the s3://
// address. A dead endpoint's raw errors name the address too.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';

let s3: S3TestServer;
const proxies: FaultProxy[] = [];
const stores: S3Store[] = [];
const body = Uint8Array.from({ length: 100_000 }, (_, i) => (i * 31) % 251);

function store(endpoint: string, attempts: number): S3Store {
  const s = new S3Store('s3://short/data', {
    s3Endpoint: endpoint,
    retry: { attempts, baseMs: 2, maxMs: 10 },
  });
  stores.push(s);
  return s;
}

before(async () => {
  s3 = await startS3Server(['short']);
  await store(s3.endpoint, 2).put('1.pt', body);
});
after(async () => {
  for (const s of stores) s.close();
  await Promise.all(proxies.map((p) => p.stop()));
  await s3?.stop();
});

test('a 200 shorter than the planned size is retried, counted, and the object arrives whole', async () => {
  const proxy = await startFaultProxy({ target: s3.endpoint, shortRate: 1, maxConsecutive: 2 });
  proxies.push(proxy);
  const flaky = store(proxy.endpoint, 4);
  const got = await flaky.get('1.pt', { expectedSize: body.length });
  assert.deepEqual(got, body);
  assert.equal(proxy.counts().shorts, 2);
  assert.ok(flaky.stats().retries >= 2, JSON.stringify(flaky.stats()));
});

test('a body that stays short is one clear error naming the s3:// address', async () => {
  const proxy = await startFaultProxy({ target: s3.endpoint, shortRate: 1, maxConsecutive: 100 });
  proxies.push(proxy);
  const err = await store(proxy.endpoint, 3)
    .get('1.pt', { expectedSize: body.length })
    .catch((e: unknown) => e);
  assert.ok(err instanceof CaiError, String(err));
  assert.equal(err.code, ErrorCodes.storage);
  assert.equal(err.object, 's3://short/data/1.pt');
  assert.match(err.message, /returned 50000 of the 100000 bytes planned/);
});

test('a dead endpoint: every error names the s3:// address', async () => {
  const server = http.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  const dead = store(`http://127.0.0.1:${port}`, 2);
  for (const call of [() => dead.get('1.pt'), () => dead.head('1.pt'), () => dead.getRange('1.pt', 0, 10)]) {
    const err = await call().catch((e: unknown) => e);
    assert.ok(err instanceof Error, String(err));
    assert.match(err.message, /s3:\/\/short\/data\/1\.pt/, err.message);
  }
});
