// The Store contract (DESIGN.md style rule 9): written once, run against every implementation.
// test/storage/file-store.test.ts and s3-store.test.ts call storeContract with their own stores.
import { promises as fs } from 'node:fs';
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import type { Store } from '../../src/storage/store.js';

/** Opens a store rooted at a fresh, empty location named after `tag`, so tests do not see each other. */
export type OpenStore = (tag: string) => Promise<Store>;

/** Deterministic pseudo-random bytes (xorshift32), so a failing binary round trip can be replayed. */
export function pseudoRandomBytes(length: number, seed = 1): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

async function collect(store: Store, prefix?: string): Promise<Array<[string, number]>> {
  const out: Array<[string, number]> = [];
  for await (const o of store.list(prefix)) out.push([o.key, o.size]);
  return out.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

const text = (bytes: Uint8Array): string => Buffer.from(bytes).toString('utf8');

/** Asserts that `promise` rejects with E_NOT_FOUND naming `where` (the store's URI for the key). */
/** A head's key and size: `modified` and `etag` are what a store may add (S3 gives both, a folder neither). */
async function keyAndSize(store: Store, key: string): Promise<{ key: string; size: number } | undefined> {
  const info = await store.head(key);
  return info && { key: info.key, size: info.size };
}

async function assertNotFound(promise: Promise<unknown>, where: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => {
    assert.ok(err instanceof CaiError, `expected a CaiError, got ${String(err)}`);
    assert.equal(err.code, ErrorCodes.notFound);
    assert.ok(err.message.includes(where), `"${err.message}" should name ${where}`);
    return true;
  });
}

/**
 * Registers the contract tests for one Store implementation under `describe(name)`.
 *
 * @example storeContract('FileStore', async (tag) => new FileStore(path.join(tmp, tag)));
 */
export function storeContract(name: string, open: OpenStore): void {
  describe(`Store contract: ${name}`, () => {
    test('put then get returns the same bytes, strings as UTF-8, and a second put replaces', async () => {
      const store = await open('roundtrip');
      await store.put('a.txt', 'héllo');
      assert.equal(text(await store.get('a.txt')), 'héllo');
      await store.put('a.txt', new Uint8Array([0, 1, 2, 255]));
      assert.deepEqual([...(await store.get('a.txt'))], [0, 1, 2, 255]);
      await store.put('empty.bin', new Uint8Array(0));
      assert.equal((await store.get('empty.bin')).byteLength, 0);
      await store.put('odd names/a b+ü=1.txt', 'odd');
      assert.equal(text(await store.get('odd names/a b+ü=1.txt')), 'odd');
      assert.deepEqual(await keyAndSize(store, 'odd names/a b+ü=1.txt'), {
        key: 'odd names/a b+ü=1.txt',
        size: 3,
      });
    });

    test('head gives the size of an object and undefined for a missing one', async () => {
      const store = await open('head');
      await store.put('dir/x.bin', new Uint8Array(1234));
      assert.deepEqual(await keyAndSize(store, 'dir/x.bin'), { key: 'dir/x.bin', size: 1234 });
      assert.equal(await store.head('dir/missing.bin'), undefined);
      assert.equal(await store.head('nowhere/missing.bin'), undefined);
    });

    test('getRange reads [start, end) and stops at the end of the object', async () => {
      const store = await open('range');
      await store.put('r.bin', new Uint8Array([10, 11, 12, 13, 14, 15, 16, 17, 18, 19]));
      assert.deepEqual([...(await store.getRange('r.bin', 2, 5))], [12, 13, 14]);
      assert.deepEqual([...(await store.getRange('r.bin', 0, 1))], [10]);
      assert.deepEqual([...(await store.getRange('r.bin', 8, 10))], [18, 19]);
      assert.deepEqual([...(await store.getRange('r.bin', 8, 50))], [18, 19]);
      assert.equal((await store.getRange('r.bin', 10, 20)).byteLength, 0);
      assert.equal((await store.getRange('r.bin', 3, 3)).byteLength, 0);
    });

    test('delete removes an object, and deleting a missing one is not an error', async () => {
      const store = await open('delete');
      await store.put('d/gone.txt', 'x');
      await store.put('d/kept.txt', 'y');
      await store.delete('d/gone.txt');
      await store.delete('d/never-there.txt');
      assert.equal(await store.head('d/gone.txt'), undefined);
      assert.deepEqual(await collect(store), [['d/kept.txt', 1]]);
    });

    test('list finds nested keys relative to the root, and a prefix names a folder or a key', async () => {
      const store = await open('list');
      const keys = ['1.pt', '2.pt', 'a/x.bin', 'a/b/y.bin', 'a/b/c/z.bin', 'ab.bin', 'results/1.json'];
      for (const [i, k] of keys.entries()) await store.put(k, new Uint8Array(i + 1));
      const all = await collect(store);
      assert.deepEqual(
        all,
        keys.map((k, i) => [k, i + 1] as [string, number]).sort(([a], [b]) => (a < b ? -1 : 1)),
      );
      assert.deepEqual(
        (await collect(store, 'a')).map(([k]) => k),
        ['a/b/c/z.bin', 'a/b/y.bin', 'a/x.bin'],
      );
      assert.deepEqual(
        (await collect(store, 'a/b/')).map(([k]) => k),
        ['a/b/c/z.bin', 'a/b/y.bin'],
      );
      assert.deepEqual(await collect(store, 'ab.bin'), [['ab.bin', 6]]);
      assert.deepEqual(await collect(store, 'results'), [['results/1.json', 7]]);
      assert.deepEqual(await collect(store, 'nothing-here'), []);
    });

    // Atomicity itself cannot be observed from outside without a crash; what can be checked is that
    // no temporary object is ever listed and that an overwrite replaces the whole value. (Concurrent
    // writers to one key are checked on FileStore only: s3rver, unlike S3, writes objects in place.)
    test('put leaves no temporary objects and an overwrite replaces the whole value', async () => {
      const store = await open('atomic');
      const bodies = [0, 1, 2, 3].map((i) => pseudoRandomBytes(200_000 * (4 - i), i + 1));
      await Promise.all(bodies.map((b, i) => store.put(`many/${i}.bin`, b)));
      for (const b of [...bodies, bodies[1]]) await store.put('same/key.bin', b);
      const got = await store.get('same/key.bin');
      assert.equal(Buffer.compare(Buffer.from(got), Buffer.from(bodies[1])), 0);
      assert.deepEqual(await collect(store), [
        ['many/0.bin', 800_000],
        ['many/1.bin', 600_000],
        ['many/2.bin', 400_000],
        ['many/3.bin', 200_000],
        ['same/key.bin', 600_000],
      ]);
    });

    test('a missing key is E_NOT_FOUND naming its full location', async () => {
      const store = await open('missing');
      await store.put('present.txt', 'here');
      const where = store.describe('sub/absent.bin');
      assert.ok(where.includes('sub/absent.bin'));
      await assertNotFound(store.get('sub/absent.bin'), where);
      await assertNotFound(store.getRange('sub/absent.bin', 0, 10), where);
      await assertNotFound(store.localPath('sub/absent.bin'), where);
    });

    test('a 10 MB binary body round-trips byte for byte, whole and in ranges', async () => {
      const store = await open('big');
      const body = pseudoRandomBytes(10 * 1024 * 1024 + 12_345, 99);
      await store.put('big/blob.bin', body);
      assert.deepEqual(await keyAndSize(store, 'big/blob.bin'), {
        key: 'big/blob.bin',
        size: body.byteLength,
      });
      const back = await store.get('big/blob.bin');
      assert.equal(Buffer.compare(Buffer.from(back), Buffer.from(body)), 0);
      const start = 8 * 1024 * 1024 - 7;
      const end = start + 100_000;
      const range = await store.getRange('big/blob.bin', start, end);
      assert.equal(Buffer.compare(Buffer.from(range), Buffer.from(body.subarray(start, end))), 0);
      assert.deepEqual(
        (await collect(store)).map(([k]) => k),
        ['big/blob.bin'],
      );
    });

    test('get reads into memory the caller gives, sized by the object, and refuses a wrong size', async () => {
      const store = await open('into');
      const body = pseudoRandomBytes(3 * 1024 * 1024 + 17, 7);
      await store.put('a/blob.bin', body);
      // Memory that already holds other bytes, at an offset: get must fill exactly the view it is given.
      const memory = new Uint8Array(body.byteLength + 64).fill(0xee);
      const asked: number[] = [];
      const back = await store.get('a/blob.bin', {
        into: (size) => {
          asked.push(size);
          return memory.subarray(32, 32 + size);
        },
      });
      assert.deepEqual(asked, [body.byteLength]);
      assert.equal(back.buffer, memory.buffer);
      assert.equal(back.byteOffset, 32);
      assert.equal(Buffer.compare(Buffer.from(back), Buffer.from(body)), 0);
      assert.equal(memory[31], 0xee);
      assert.equal(memory[32 + body.byteLength], 0xee);
      await assert.rejects(
        store.get('a/blob.bin', { into: (size) => new Uint8Array(size - 1) }),
        /asked for \d+ bytes of memory, given \d+/,
      );
      await assertNotFound(
        store.get('a/absent.bin', { into: (size) => new Uint8Array(size) }),
        store.describe('a/absent.bin'),
      );
    });

    test('localPath gives a local file with the object bytes', async () => {
      const store = await open('local');
      const body = pseudoRandomBytes(50_000, 5);
      await store.put('models/m.onnx', body);
      const file = await store.localPath('models/m.onnx');
      assert.ok(file.endsWith('m.onnx'), file);
      assert.equal(Buffer.compare(await fs.readFile(file), Buffer.from(body)), 0);
    });
  });
}
