import { DelegatingStore } from './delegating-store.js';
import type { ObjectInfo, Store } from './store.js';

/**
 * The store of one object given as a job's input (`--input Galaxy10_DECals.h5`, `s3://b/cat.parquet`):
 * its folder, listing only that object, so planning and reading work as for a folder that held just it.
 *
 * @example const input = new SingleObjectStore(new FileStore('data'), 'Galaxy10_DECals.h5', info);
 */
export class SingleObjectStore extends DelegatingStore {
  constructor(
    parent: Store,
    private readonly only: ObjectInfo,
  ) {
    super(parent);
  }

  override get uri(): string {
    return this.inner.describe(this.only.key);
  }

  override async *list(prefix = ''): AsyncIterable<ObjectInfo> {
    if (this.only.key.startsWith(prefix)) yield this.only;
  }
}
