import { promises as fs } from 'node:fs';
import path from 'node:path';
import type { ObjectInfo, Store } from '../../src/storage/store.js';

/**
 * Writes every `[key, body]` to a store, `concurrency` at a time: fast enough for thousands of tiny
 * objects without opening a connection per object at once (which a local s3rver answers with resets).
 *
 * @example await putAll(store, [['1.npy', bytes]], 8);
 */
export async function putAll(
  store: Store,
  entries: Iterable<readonly [string, Uint8Array | string]>,
  concurrency = 8,
): Promise<void> {
  const iterator = entries[Symbol.iterator]();
  const lane = async (): Promise<void> => {
    for (let r = iterator.next(); !r.done; r = iterator.next()) await store.put(r.value[0], r.value[1]);
  };
  await Promise.all(Array.from({ length: Math.max(1, concurrency) }, lane));
}

/**
 * Uploads the files of a local folder (not its subfolders) under `prefix` of a store, returning the
 * keys written.
 *
 * @example await uploadDir(demo.data, s3Store, 'data'); // data/1.pt, data/2.pt ...
 */
export async function uploadDir(dir: string, store: Store, prefix: string): Promise<string[]> {
  const names = (await fs.readdir(dir, { withFileTypes: true })).filter((d) => d.isFile()).map((d) => d.name);
  const entries: [string, Uint8Array][] = [];
  for (const name of names) entries.push([`${prefix}/${name}`, await fs.readFile(path.join(dir, name))]);
  await putAll(store, entries, 4);
  return entries.map(([key]) => key);
}

/**
 * Uploads a local folder and its subfolders under `prefix` (keys `<prefix><relative path>`), one object
 * at a time, and returns what a listing would: each key and size.
 * @example const objects = await uploadTree(store, 'test/fixtures/ranged', '');
 */
export async function uploadTree(store: Store, local: string, prefix: string): Promise<ObjectInfo[]> {
  const out: ObjectInfo[] = [];
  const walk = async (rel: string) => {
    for (const e of await fs.readdir(path.join(local, rel), { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) await walk(r);
      else {
        const body = await fs.readFile(path.join(local, r));
        await store.put(`${prefix}${r}`, body);
        out.push({ key: `${prefix}${r}`, size: body.byteLength });
      }
    }
  };
  await walk('');
  return out;
}

/**
 * Every key under a store's root (or `prefix`), sorted, for checking what a run left behind.
 * @example assert.deepEqual(await listKeys(out), ['job.json', 'plan.json', ...]);
 */
export async function listKeys(store: Store, prefix?: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key);
  return keys.sort();
}
