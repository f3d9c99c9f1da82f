// The in-memory S3 endpoint the scale benchmark uses must behave as S3 does for CAI's S3Store: the
// same Store contract s3rver and the file store pass, plus listings past one page.
import { promises as fs } from 'node:fs';
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { S3Store } from '../../src/storage/s3-store.js';
import { startMemoryS3, type MemoryS3 } from '../helpers/memory-s3.js';
import { storeContract } from './store-contract.js';

let s3: MemoryS3;
let cacheDir = '';
const opened: S3Store[] = [];

function store(uri: string): S3Store {
  const s = new S3Store(uri, { s3Endpoint: s3.endpoint, cacheDir, retry: { baseMs: 5, maxMs: 50 } });
  opened.push(s);
  return s;
}

before(async () => {
  s3 = await startMemoryS3(['data']);
  cacheDir = await fs.mkdtemp(path.join(os.tmpdir(), 'cai-memory-s3-cache-'));
});
after(async () => {
  for (const s of opened) s.close();
  await s3?.stop();
  await fs.rm(cacheDir, { recursive: true, force: true });
});

storeContract('S3Store (in-memory endpoint)', async (tag) => store(`s3://data/contract/${tag}`));

test('a listing of 2,500 keys follows continuation tokens in key order, each key once', async () => {
  const keys = Array.from({ length: 2500 }, (_, i) => `many/${String(i).padStart(5, '0')}.json`);
  // Seeded in reverse so that order comes from the listing, not from insertion.
  const one = new Uint8Array([1]);
  await s3.seed([...keys.reverse().map((k) => ['data', k, one] as const), ['data', 'many-not/x.json', one]]);
  keys.reverse();
  const before = await s3.requests();
  const listed: string[] = [];
  for await (const o of store('s3://data').list('many')) listed.push(o.key);
  assert.deepEqual(listed, keys);
  assert.equal((await s3.requests()) - before, 3, 'three pages of at most 1,000 keys');
});

test('keys written one by one in no order are listed in key order at every step, each once', async () => {
  // More keys than the server keeps unsorted before merging: listings see both the merged and the new.
  const s = store('s3://data/mixed');
  const ids = Array.from({ length: 1300 }, (_, i) => (i * 7919) % 1300);
  const written: string[] = [];
  for (const [n, id] of ids.entries()) {
    const key = `r/${id}.json`;
    await s.put(key, '{}');
    written.push(key);
    // A resume check's listing: the key itself as the prefix.
    const found: string[] = [];
    for await (const o of s.list(key)) found.push(o.key);
    assert.deepEqual(found, [key]);
    if (n % 400 === 399 || n === ids.length - 1) {
      const listed: string[] = [];
      for await (const o of s.list('r/')) listed.push(o.key);
      assert.deepEqual(listed, [...written].sort());
    }
  }
  await s.delete('r/5.json');
  const listed: string[] = [];
  for await (const o of s.list('r/')) listed.push(o.key);
  assert.deepEqual(listed, written.filter((k) => k !== 'r/5.json').sort());
});

test('requests are counted by kind: a listing, a get, a head and a put each count once as what they are', async () => {
  const s = store('s3://data/kinds');
  const before = await s3.requestsByKind();
  await s.put('a.json', '{}');
  await s.get('a.json');
  await s.head('a.json');
  for await (const o of s.list('')) void o;
  const after = await s3.requestsByKind();
  const delta = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
  assert.deepEqual(
    { LIST: delta('LIST'), GET: delta('GET'), HEAD: delta('HEAD'), PUT: delta('PUT') },
    { LIST: 1, GET: 1, HEAD: 1, PUT: 1 },
  );
});
