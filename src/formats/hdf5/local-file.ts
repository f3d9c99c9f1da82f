// A local file for an HDF5 object. libhdf5 (in h5wasm) reads through a synchronous file API, so an
// object in S3 cannot be read by ranges from it without blocking the event loop; it is downloaded by
// ranged GETs into a temporary file (memory stays at one range) and the file is removed once read.
import { randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { uriScheme } from '../../storage/open.js';
import type { Store } from '../../storage/store.js';

/** Bytes per ranged GET when downloading an HDF5 object. */
export const DOWNLOAD_RANGE = 16 * 1024 * 1024;

/** A local path for an object, and what to do once it is no longer read. */
export interface LocalFile {
  readonly path: string;
  /** Whether the object was downloaded (a temporary copy). */
  readonly copied: boolean;
  /** Bytes downloaded. */
  readonly bytes: number;
  /** Removes the temporary copy; nothing for a file read in place. */
  dispose(): Promise<void>;
}

/**
 * The object's own path when the store is a folder, else a temporary copy fetched range by range
 * (`range` bytes at a time) into `os.tmpdir()`.
 *
 * @example const f = await localFile(store, 'galaxy10.h5'); try { ... } finally { await f.dispose(); }
 */
export async function localFile(store: Store, key: string, range = DOWNLOAD_RANGE): Promise<LocalFile> {
  if (uriScheme(store.uri) === 'file') {
    return { path: await store.localPath(key), copied: false, bytes: 0, dispose: async () => undefined };
  }
  const size = (await store.head(key))?.size;
  // A missing object: the store's own get names it in a not-found error.
  if (size === undefined) await store.get(key);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cai-hdf5-'));
  const file = path.join(dir, `${randomBytes(4).toString('hex')}-${path.posix.basename(key)}`);
  const remove = () => fs.rm(dir, { recursive: true, force: true });
  try {
    const fh = await fs.open(file, 'w');
    try {
      for (let at = 0; at < (size as number); at += range) {
        const part = await store.getRange(key, at, Math.min(size as number, at + range));
        await fh.write(part, 0, part.byteLength, at);
      }
    } finally {
      await fh.close();
    }
  } catch (err) {
    await remove();
    throw err;
  }
  return { path: file, copied: true, bytes: size as number, dispose: remove };
}
