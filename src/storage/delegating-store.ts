import type { CreateResult, GetOptions, ListOptions, ObjectInfo, Store } from './store.js';

/**
 * A store that passes every call to another: the base of wrappers that change one or two calls (stamp a
 * record as it is written, answer `head` from listings, count reads) and forward the rest unchanged.
 *
 * @example
 * class Logged extends DelegatingStore {
 *   override get(key: string) { console.log(key); return super.get(key); }
 * }
 */
export class DelegatingStore implements Store {
  constructor(protected readonly inner: Store) {}

  get uri(): string {
    return this.inner.uri;
  }
  list(prefix?: string, options?: ListOptions): AsyncIterable<ObjectInfo> {
    return this.inner.list(prefix, options);
  }
  get(key: string, options?: GetOptions): Promise<Uint8Array> {
    return this.inner.get(key, options);
  }
  getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    return this.inner.getRange(key, start, end);
  }
  put(key: string, body: Uint8Array | string): Promise<void> {
    return this.inner.put(key, body);
  }
  async putIfAbsent(key: string, body: Uint8Array | string): Promise<CreateResult> {
    if (this.inner.putIfAbsent) return this.inner.putIfAbsent(key, body);
    await this.inner.put(key, body);
    return 'unconditional';
  }
  head(key: string): Promise<ObjectInfo | undefined> {
    return this.inner.head(key);
  }
  delete(key: string): Promise<void> {
    return this.inner.delete(key);
  }
  describe(key: string): string {
    return this.inner.describe(key);
  }
  localPath(key: string): Promise<string> {
    return this.inner.localPath(key);
  }
}
