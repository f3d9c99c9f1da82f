import { createHash, randomBytes } from 'node:crypto';
import { promises as fs } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CaiError, ErrorCodes } from '../errors.js';

/**
 * Where {@link cachedDownload} keeps files unless told otherwise: `<tmpdir>/cai-s3-cache`, so `TMPDIR`
 * moves it (a cluster's scratch disk; the tests' own temporary folder, removed when they end).
 * @example defaultCacheDir() // '/tmp/cai-s3-cache' on Linux and in Lambda
 */
export function defaultCacheDir(): string {
  return path.join(os.tmpdir(), 'cai-s3-cache');
}

/**
 * What identifies one version of one remote object.
 * @example const o: CachedObject = { id: 'aws|b|m.onnx', uri: 's3://b/m.onnx', etag: '"9b2c"', size: 42, basename: 'm.onnx' };
 */
export interface CachedObject {
  /** Where it lives, e.g. `http://127.0.0.1:9000|bucket|models/m.onnx`; hashed into a folder name. */
  readonly id: string;
  /** Its URI, for messages. */
  readonly uri: string;
  /** Its ETag (any version tag); a new version gets a new file, so a re-uploaded model is fetched. */
  readonly etag: string;
  readonly size: number;
  /** The file name to keep, so that tools that look at extensions (`.onnx`) still work. */
  readonly basename: string;
}

/** Downloads in flight in this process, so concurrent callers share one download. */
const inFlight = new Map<string, Promise<string>>();

/**
 * A local copy of a remote object in `cacheDir`, downloaded at most once per version: by the first
 * caller in a process (concurrent callers wait for the same download) and then found on disk by every
 * later caller, in this process or another on the same machine. `download(file)` writes the object to
 * a temporary file that is renamed into place only when complete and of the right size, so a crash or
 * a concurrent process never leaves or sees a partial file under the final name.
 *
 * @example
 * const file = await cachedDownload(dir, { id, etag, size, basename: 'm.onnx' }, (tmp) => fetchTo(tmp));
 */
export async function cachedDownload(
  cacheDir: string,
  object: CachedObject,
  download: (file: string) => Promise<void>,
): Promise<string> {
  const folder = path.join(cacheDir, createHash('sha256').update(object.id).digest('hex').slice(0, 24));
  const version = `${object.etag.replace(/[^A-Za-z0-9_-]/g, '')}-${object.size}`;
  const target = path.join(folder, version, object.basename.replace(/[^A-Za-z0-9._-]/g, '_') || 'object');
  // Checked and set without an await in between, so concurrent callers share one download.
  let pending = inFlight.get(target);
  if (!pending) {
    pending = (async () => {
      const existing = await fs.stat(target).catch(() => undefined);
      if (existing?.isFile() && existing.size === object.size) return target;
      return fetchInto(target, object, download);
    })().finally(() => inFlight.delete(target));
    inFlight.set(target, pending);
  }
  return pending;
}

async function fetchInto(
  target: string,
  object: CachedObject,
  download: (file: string) => Promise<void>,
): Promise<string> {
  await fs.mkdir(path.dirname(target), { recursive: true });
  const tmp = `${target}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await download(tmp);
    const st = await fs.stat(tmp);
    if (st.size !== object.size) {
      throw new CaiError(
        ErrorCodes.corrupt,
        object.uri,
        `downloaded ${st.size} bytes but the object has ${object.size}; it may have been overwritten meanwhile, try again`,
      );
    }
    await fs.rename(tmp, target);
    return target;
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}
