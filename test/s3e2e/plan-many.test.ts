// Planning an S3 input of more than 1000 partitions: the seeds' system listed one page and silently
// planned 1000. Against s3rver on loopback, behind a request log that shows the listing's pages.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { decodeTensorFile } from '../../src/formats/registry.js';
import { planPartitions } from '../../src/plan/plan.js';
import { measureTraffic } from '../../src/storage/s3-stats.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { startRequestLog, type RequestLog } from '../helpers/s3-request-log.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { putAll } from '../helpers/s3-upload.js';

const BUCKET = 'many';
const PARTITIONS = 1234;

/**
 * A .npy file of shape [2] float32 holding `[value, -value]`, written byte by byte as NumPy's format
 * 1.0 lays it out: magic, version, header length, a Python dict literal padded with spaces to a
 * multiple of 64 bytes and ended with a newline, then the data.
 */
function tinyNpy(value: number): Uint8Array {
  let header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }";
  const unpadded = 10 + header.length + 1;
  header += ' '.repeat((64 - (unpadded % 64)) % 64) + '\n';
  const bytes = new Uint8Array(10 + header.length + 8);
  bytes.set([0x93, ...Buffer.from('NUMPY'), 1, 0], 0);
  new DataView(bytes.buffer).setUint16(8, header.length, true);
  bytes.set(Buffer.from(header, 'latin1'), 10);
  new Float32Array(bytes.buffer, 10 + header.length, 2).set([value, -value]);
  return bytes;
}

let s3: S3TestServer;
let log: RequestLog;
let direct: S3Store;
const stores: S3Store[] = [];

before(async () => {
  s3 = await startS3Server([BUCKET]);
  log = await startRequestLog(s3.endpoint);
  direct = new S3Store(`s3://${BUCKET}/parts`, { s3Endpoint: s3.endpoint });
  stores.push(direct);
  // Uploaded in a shuffled order: the plan's order must come from the keys, not from upload order.
  const ids = Array.from({ length: PARTITIONS }, (_, i) => i + 1).sort(
    (a, b) => ((a * 7919) % 1237) - ((b * 7919) % 1237),
  );
  await putAll(
    direct,
    [
      ...ids.map((i) => [`${i}.npy`, tinyNpy(i)] as const),
      ['README.txt', 'not a partition'],
      ['.hidden.npy', tinyNpy(0)],
    ],
    12,
  );
});

after(async () => {
  for (const s of stores) s.close();
  await log?.stop();
  await s3?.stop();
});

test(`all ${PARTITIONS} partitions of an S3 input are planned, in natural order, over several listing pages`, async () => {
  const input = new S3Store(`s3://${BUCKET}/parts`, { s3Endpoint: log.endpoint });
  stores.push(input);
  const plan = await planPartitions(input);
  assert.equal(plan.length, PARTITIONS);
  assert.deepEqual(
    plan.map((p) => p.id),
    Array.from({ length: PARTITIONS }, (_, i) => String(i + 1)),
  );
  assert.ok(plan.every((p) => p.key === `${p.id}.npy` && p.bytes === tinyNpy(1).byteLength));
  const lists = log.requests().filter((r) => r.method === 'GET' && /(^|&)list-type=2/.test(r.query));
  assert.equal(lists.length, 2, 'two pages: 1000 keys, then the rest');
  assert.equal(lists.filter((r) => /continuation-token=/.test(r.query)).length, 1);

  // The partitions are real .npy files: the last one, past the first page, decodes to its values.
  const last = decodeTensorFile(await input.get(plan[PARTITIONS - 1].key), input.describe('1234.npy'));
  assert.equal(last.items, 2);
  assert.deepEqual([...(last.columns[0].data as Float32Array)], [1234, -1234]);
});

test('fileLimit keeps the first K partitions in natural order, past the first page too', async () => {
  const input = new S3Store(`s3://${BUCKET}/parts`, { s3Endpoint: s3.endpoint });
  stores.push(input);
  const first = await planPartitions(input, { fileLimit: 1001 });
  assert.equal(first.length, 1001);
  assert.equal(first[0].id, '1');
  assert.equal(first[1000].id, '1001');
  assert.equal((await planPartitions(input, { job: { fileLimit: 12 } })).at(-1)?.id, '12');
  assert.equal((await planPartitions(input, { fileLimit: 5000 })).length, PARTITIONS);
});

test('overlapping reads of one store are charged each to its own caller', async () => {
  const input = new S3Store(`s3://${BUCKET}/parts`, { s3Endpoint: s3.endpoint });
  stores.push(input);
  const before = input.stats();
  // Like a worker reading its partition while it prefetches the next: both on the same store at once.
  const [a, b] = await Promise.all([
    measureTraffic(async () => [await input.get('1.npy'), await input.get('2.npy')]),
    measureTraffic(() => input.get('1000.npy')),
  ]);
  const size = tinyNpy(1).byteLength;
  assert.deepEqual([a.traffic.requests, a.traffic.bytes, a.traffic.retries], [2, 2 * size, 0]);
  assert.deepEqual([b.traffic.requests, b.traffic.bytes], [1, size]);
  assert.equal(input.stats().requests - before.requests, 3, 'the store itself still counts all');
  const nested = await measureTraffic(async () => (await measureTraffic(() => input.head('3.npy'))).traffic);
  assert.deepEqual([nested.result.requests, nested.traffic.requests], [1, 1], 'outer scopes see inner ones');
});
