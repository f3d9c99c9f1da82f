import { DelegatingStore } from '../../storage/delegating-store.js';
import type { ObjectInfo } from '../../storage/store.js';

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
export class ListingHeadStore extends DelegatingStore {
  private readonly folders = new Map<string, Map<string, number>>();

  /** Lists `folder` once; later heads of keys in it are answered from this listing. */
  async preload(folder: string): Promise<void> {
    const name = folder.replace(/^\/+|\/+$/g, '');
    const keys = new Map<string, number>();
    for await (const o of this.inner.list(name)) keys.set(o.key, o.size);
    this.folders.set(name, keys);
  }

  override async put(key: string, body: Uint8Array | string): Promise<void> {
    await this.inner.put(key, body);
    this.cached(key)?.set(key, typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength);
  }

  override async head(key: string): Promise<ObjectInfo | undefined> {
    const folder = this.cached(key);
    if (folder) {
      const size = folder.get(key);
      return size === undefined ? undefined : { key, size };
    }
    for await (const o of this.inner.list(key)) if (o.key === key) return o;
    return undefined;
  }

  override async delete(key: string): Promise<void> {
    await this.inner.delete(key);
    this.cached(key)?.delete(key);
  }

  private cached(key: string): Map<string, number> | undefined {
    for (let cut = key.lastIndexOf('/'); cut > 0; cut = key.lastIndexOf('/', cut - 1)) {
      const folder = this.folders.get(key.slice(0, cut));
      if (folder) return folder;
    }
    return undefined;
  }
}
