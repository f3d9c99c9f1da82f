import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FileStore } from '../../src/storage/file-store.js';
import { pseudoRandomBytes, storeContract } from './store-contract.js';

let root = '';
before(async () => {
  root = await fs.mkdtemp(path.join(os.tmpdir(), 'cai-filestore-'));
});
after(async () => {
  await fs.rm(root, { recursive: true, force: true });
});

storeContract('FileStore', async (tag) => new FileStore(path.join(root, tag)));

test('FileStore: concurrent writers to one key leave one whole value and no temporary files', async () => {
  const store = new FileStore(path.join(root, 'concurrent'));
  const bodies = [0, 1, 2, 3, 4, 5].map((i) => pseudoRandomBytes(300_000 + i, i + 1));
  await Promise.all(bodies.map((b) => store.put('same/key.bin', b)));
  const got = Buffer.from(await store.get('same/key.bin'));
  assert.ok(
    bodies.some((b) => Buffer.compare(Buffer.from(b), got) === 0),
    'one of the bodies, whole',
  );
  assert.deepEqual(await fs.readdir(path.join(root, 'concurrent', 'same')), ['key.bin']);
});
