// A local file for an HDF5 object. libhdf5 (in h5wasm) reads through a synchronous file API, so an
// object in S3 cannot be read by ranges from it without blocking the event loop; it is downloaded by
// ranged GETs into a temporary file (memory stays at one range).
//
// Row-range partitions of one big object follow each other, and a worker process (a local worker, an
// array task, a warm Lambda container) usually runs several of them: so in a worker the last copy stays
// after its partition is read, and the next partition of the same object version reads it again instead
// of downloading it again. At most one copy nobody reads is kept; it goes when another object is wanted
// and when the process exits. Elsewhere (planning, the preflight, a library call) a copy goes once read.
import { randomBytes } from 'node:crypto';
import { promises as fs, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { uriScheme } from '../../storage/open.js';
import type { Store } from '../../storage/store.js';

/** Bytes per ranged GET when downloading an HDF5 object. */
export const DOWNLOAD_RANGE = 16 * 1024 * 1024;

/** A local path for an object, and what to do once it is no longer read. */
export interface LocalFile {
  readonly path: string;
  /** Whether this call downloaded the object (a temporary copy, not a file read in place or a kept copy). */
  readonly copied: boolean;
  /** Bytes this call downloaded (0 for a kept copy read again). */
  readonly bytes: number;
  /**
   * Lets go of the file: a copy stays for the next reader of the same object until another is wanted,
   * unless `reusable` is false (the copy could not be read: it goes once nobody reads it).
   */
  dispose(reusable?: boolean): Promise<void>;
}

/** A downloaded copy in this process: one version of one object, and how many read it now. */
interface Copy {
  readonly id: string;
  /** Its temporary folder and file, once made. */
  dir?: string;
  path?: string;
  readers: number;
  /** The download, shared by readers who ask while it runs (a worker reads its next partition early). */
  ready?: Promise<void>;
}

const removeCopy = (c: Copy) => (c.dir ? fs.rm(c.dir, { recursive: true, force: true }) : Promise.resolve());

const copies = new Map<string, Copy>();
let exitHook = false;
let keepCopies = false;

/**
 * Declares this process a worker that reads partition after partition: from now on the last copy is
 * kept for the next partition of the same object. @example keepCopiesBetweenPartitions(); // in createWorkerContext
 */
export function keepCopiesBetweenPartitions(): void {
  keepCopies = true;
}

function removeAtExit(): void {
  if (exitHook) return;
  exitHook = true;
  process.once('exit', () => {
    for (const c of copies.values()) if (c.dir) rmSync(c.dir, { recursive: true, force: true });
  });
}

/** Removes the copies nobody reads, but `keep`. */
async function removeIdle(keep?: Copy): Promise<void> {
  const idle = [...copies.values()].filter((c) => c.readers === 0 && c !== keep);
  for (const c of idle) copies.delete(c.id);
  await Promise.all(idle.map(removeCopy));
}

/**
 * Removes every copy this process keeps that nobody reads now (tests; a long-lived process that knows
 * it is done with its objects). @example await dropKeptCopies();
 */
export function dropKeptCopies(): Promise<void> {
  return removeIdle();
}

async function download(store: Store, key: string, size: number, file: string, range: number): Promise<void> {
  const fh = await fs.open(file, 'w');
  try {
    for (let at = 0; at < size; at += range) {
      const part = await store.getRange(key, at, Math.min(size, at + range));
      await fh.write(part, 0, part.byteLength, at);
    }
  } finally {
    await fh.close();
  }
}

/**
 * The object's own path when the store is a folder, else a copy fetched range by range (`range` bytes
 * at a time) into `os.tmpdir()`, or the copy this process already holds of the same version (same
 * store, key, size and modification time) of the object.
 *
 * @example const f = await localFile(store, 'galaxy10.h5'); try { ... } finally { await f.dispose(); }
 */
export async function localFile(store: Store, key: string, range = DOWNLOAD_RANGE): Promise<LocalFile> {
  if (uriScheme(store.uri) === 'file') {
    const dispose = async () => undefined;
    return { path: await store.localPath(key), copied: false, bytes: 0, dispose };
  }
  const info = await store.head(key);
  // A missing object: the store's own get names it in a not-found error.
  if (!info) await store.get(key);
  const size = info?.size ?? 0;
  const id = JSON.stringify([store.uri, key, size, info?.modified ?? null]);
  // Looked up and registered with no await in between, so a reader arriving meanwhile shares the download.
  const found = copies.get(id);
  const held: Copy = found ?? { id, readers: 0 };
  if (!found) {
    copies.set(id, held);
    held.ready = (async () => {
      // Another object is wanted: the idle copy goes first, so the disk holds one copy per object read now.
      await removeIdle(held);
      removeAtExit();
      held.dir = await fs.mkdtemp(path.join(os.tmpdir(), 'cai-hdf5-'));
      held.path = path.join(held.dir, `${randomBytes(4).toString('hex')}-${path.posix.basename(key)}`);
      await download(store, key, size, held.path, range);
    })();
  }
  held.readers++;
  try {
    await held.ready;
  } catch (err) {
    held.readers--;
    if (copies.get(id) === held) copies.delete(id);
    await removeCopy(held);
    throw err;
  }
  let released = false;
  return {
    path: held.path as string,
    copied: !found,
    bytes: found ? 0 : size,
    dispose: async (reusable = true) => {
      if (released) return;
      released = true;
      held.readers--;
      await removeIdle(reusable && keepCopies ? held : undefined);
    },
  };
}
