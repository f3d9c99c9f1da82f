// zarrita reads through a tiny store interface (get a key, get a range of a key); this one serves it
// from any CAI Store (a folder, an S3 prefix), so Zarr on S3 is read chunk by chunk with ranged GETs.
import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import type { AbsolutePath, AsyncReadable, RangeQuery } from 'zarrita';
import { CaiError, ErrorCodes } from '../../errors.js';
import { sized } from '../../storage/buffer-pool.js';
import { FileStore } from '../../storage/file-store.js';
import type { Store } from '../../storage/store.js';

/** A synchronous chunk read slower than this (a network file system, a cold disk) turns them off. */
export const SYNC_READ_LIMIT_MS = 5;

/**
 * A chunk of a local folder read on the calling thread (open, fstat, one read, close), as zarr-python
 * and h5py read them, or `undefined` on any failure (the caller then asks the store, which reports it as
 * always). A page-cached chunk of ~700 KB takes ~0.1 ms; through the store's async reads each of the four
 * calls is a round trip to libuv's threads (measured on 125 such chunks: 13 ms of CPU against 22 ms).
 */
function readLocal(file: string, into: (size: number) => Uint8Array): Uint8Array | undefined {
  let fd: number | undefined;
  try {
    fd = openSync(file, 'r');
    const out = sized(into, fstatSync(fd).size, file);
    let done = 0;
    while (done < out.byteLength) {
      const n = readSync(fd, out, done, out.byteLength - done, done);
      if (n === 0) return undefined;
      done += n;
    }
    return out;
  } catch {
    return undefined;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

// Zarr readers find what a node is by asking for metadata objects that may not exist.
const METADATA = /(^|\/)(\.zarray|\.zgroup|\.zattrs|\.zmetadata|zarr\.json)$/;

/**
 * A zarrita store over the objects under `root` (`galaxy.zarr`, or '' for the store's root). Missing
 * keys (absent chunks, which Zarr fills with the fill value; metadata probes) are `undefined`; any other
 * failure is thrown. A metadata probe answered "access denied" is missing too: S3 answers 403, not 404,
 * for a missing key to a principal without bucket-wide s3:ListBucket (CAI's Lambda roles may list only
 * their data prefix), and zarrita probes `.zattrs`, `.zarray` of groups and `zarr.json` of v2 stores. The
 * first such denial is kept (`denied()`), so an open that finds nothing reports it instead of "no array".
 * Chunks are never taken as missing on a denial. Counts the bytes it returns.
 *
 * @example const z = zarrStore(store, 'galaxy.zarr'); const arr = await zarr.open(zarr.root(z).resolve('images'), { kind: 'array' });
 */
export function zarrStore(
  store: Store,
  root: string,
): AsyncReadable & {
  bytes(): number;
  denied(): CaiError | undefined;
  prefetch(keys: readonly string[]): Promise<void>;
  metadata(key: AbsolutePath): Uint8Array | undefined;
  getInto(key: AbsolutePath, into: (size: number) => Uint8Array): Promise<Uint8Array | undefined>;
} {
  let bytes = 0;
  let denied: CaiError | undefined;
  // The metadata objects read so far, for readers that bypass zarrita (zarr-dataset.ts's direct reads).
  const seen = new Map<AbsolutePath, Uint8Array>();
  // Chunks of a local folder are read synchronously until one read is slow (see readLocal).
  let local = store instanceof FileStore;
  // Metadata fetched ahead (prefetch), present or missing: zarrita asks for it one key at a time.
  const ahead = new Map<string, Promise<Uint8Array | undefined>>();
  const keyOf = (key: AbsolutePath) => (root ? `${root}/${key.slice(1)}` : key.slice(1));
  const missing = (err: unknown, key: string) => {
    if (!(err instanceof CaiError)) return false;
    if (err.code === ErrorCodes.notFound) return true;
    if (err.code !== ErrorCodes.accessDenied || !METADATA.test(key)) return false;
    denied ??= err;
    return true;
  };
  const fetchKey = async (
    key: AbsolutePath,
    into?: (size: number) => Uint8Array,
  ): Promise<Uint8Array | undefined> => {
    try {
      const out = await store.get(keyOf(key), into ? { into } : undefined);
      bytes += out.byteLength;
      if (METADATA.test(key)) seen.set(key, out);
      return out;
    } catch (err) {
      if (missing(err, key)) return undefined;
      throw err;
    }
  };
  return {
    async prefetch(keys) {
      const metadata = keys
        .filter((k) => METADATA.test(k))
        .map((k) => `/${k.replace(/^\/+/, '')}` as AbsolutePath);
      for (const k of metadata) {
        if (ahead.has(k)) continue;
        const p = fetchKey(k);
        // A failure is thrown by the get that asks for the key, not here.
        p.catch(() => undefined);
        ahead.set(k, p);
      }
      await Promise.allSettled(metadata.map((k) => ahead.get(k)));
    },
    async get(key) {
      return ahead.get(key) ?? fetchKey(key);
    },
    // The same GET as `get`, read into the caller's memory (a pooled buffer, or a slab of a batch); from
    // a local folder, on this thread while reads are fast.
    async getInto(key, into) {
      if (local) {
        const t0 = performance.now();
        const out = readLocal(store.describe(keyOf(key)), into);
        if (performance.now() - t0 > SYNC_READ_LIMIT_MS) local = false;
        if (out) {
          bytes += out.byteLength;
          return out;
        }
      }
      return fetchKey(key, into);
    },
    metadata: (key) => seen.get(key),
    async getRange(key: AbsolutePath, range: RangeQuery) {
      const k = keyOf(key);
      let start: number;
      let end: number;
      if ('suffixLength' in range) {
        const size = (await store.head(k))?.size;
        if (size === undefined) return undefined;
        start = Math.max(0, size - range.suffixLength);
        end = size;
      } else {
        start = range.offset;
        end = range.offset + range.length;
      }
      try {
        const out = await store.getRange(k, start, end);
        bytes += out.byteLength;
        return out;
      } catch (err) {
        if (missing(err, k)) return undefined;
        throw err;
      }
    },
    bytes: () => bytes,
    denied: () => denied,
  };
}
