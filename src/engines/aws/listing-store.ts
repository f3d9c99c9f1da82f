import type { ObjectInfo, Store } from '../../storage/store.js';

/**
 * A store whose `head` answers from listings instead of HeadObject. On S3, a HEAD of a missing key is
 * answered 404 only to a caller allowed `s3:ListBucket` on the whole bucket, and 403 otherwise; CAI's
 * functions may list only their prefixes (an `s3:prefix` condition, which a HEAD does not carry), so a
 * missing record would look like "access denied". A listing with the key as prefix is allowed and tells
 * the truth. `preload(folder)` lists a folder once (paginated) so that many heads in it cost nothing,
 * as Summarize's look-up of every partition record needs.
 *
 * @example
 * const out = new ListingHeadStore(await openStore('s3://b/out'));
 * await out.preload('results');
 * await out.head('results/1.json'); // from the preloaded listing
 */
export class ListingHeadStore implements Store {
  private readonly folders = new Map<string, Map<string, number>>();

  constructor(private readonly inner: Store) {}

  get uri(): string {
    return this.inner.uri;
  }

  /** Lists `folder` once; later heads of keys in it are answered from this listing. */
  async preload(folder: string): Promise<void> {
    const name = folder.replace(/^\/+|\/+$/g, '');
    const keys = new Map<string, number>();
    for await (const o of this.inner.list(name)) keys.set(o.key, o.size);
    this.folders.set(name, keys);
  }

  list(prefix?: string): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix);
  }

  get(key: string): Promise<Uint8Array> {
    return this.inner.get(key);
  }

  getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    return this.inner.getRange(key, start, end);
  }

  async put(key: string, body: Uint8Array | string): Promise<void> {
    await this.inner.put(key, body);
    this.cached(key)?.set(key, typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  }

  async head(key: string): Promise<ObjectInfo | undefined> {
    const folder = this.cached(key);
    if (folder) {
      const size = folder.get(key);
      return size === undefined ? undefined : { key, size };
    }
    for await (const o of this.inner.list(key)) if (o.key === key) return o;
    return undefined;
  }

  async delete(key: string): Promise<void> {
    await this.inner.delete(key);
    this.cached(key)?.delete(key);
  }

  describe(key: string): string {
    return this.inner.describe(key);
  }

  localPath(key: string): Promise<string> {
    return this.inner.localPath(key);
  }

  private cached(key: string): Map<string, number> | undefined {
    for (let cut = key.lastIndexOf('/'); cut > 0; cut = key.lastIndexOf('/', cut - 1)) {
      const folder = this.folders.get(key.slice(0, cut));
      if (folder) return folder;
    }
    return undefined;
  }
}
