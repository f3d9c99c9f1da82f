/** One object in a store: its key relative to the store's root and its size in bytes. */
export interface ObjectInfo {
  readonly key: string;
  readonly size: number;
  /**
   * When the object was last written, in ms since the epoch, where the listing says so (a file's
   * mtime; S3's LastModified, whole seconds). Lets resume tell, without a read, that a predictions file
   * was not rewritten after its record.
   */
  readonly modified?: number;
  /**
   * The object's entity tag where the store gives one (S3's ETag, quotes included): changes whenever the
   * content does, unlike `modified` within one second.
   */
  readonly etag?: string;
}

/** Options of {@link Store.list}. */
export interface ListOptions {
  /**
   * Called for each entry the listing cannot read as an object, with its key and why: a symbolic link
   * whose target is gone, or one that leads back into a folder being listed (a loop, not followed). The
   * entry is then left out. Without it such an entry is an error naming it.
   */
  readonly onSkip?: (key: string, reason: string) => void;
}

/** Options of {@link Store.get}. */
export interface GetOptions {
  /**
   * Memory to read the object into: called once with the object's size, returns a view of exactly that
   * many bytes, which `get` fills and returns. A store may ignore it and allocate (a remote object whose
   * size the response does not give).
   */
  readonly into?: (size: number) => Uint8Array;
  /**
   * The object's size as planned. A remote store treats a shorter (or longer) body as a transient fault
   * and retries it; a local one reports a file that changed since planning.
   */
  readonly expectedSize?: number;
}

/**
 * How {@link Store.putIfAbsent} ended: `created` (atomically: nobody else can have created it too),
 * `exists` (another writer's object is there; nothing written), or `unconditional` (the server ignores
 * conditional writes, so the object was written without the guarantee: the caller must check another way).
 */
export type CreateResult = 'created' | 'exists' | 'unconditional';

/**
 * Where data, models and outputs live: a local directory or an S3 prefix, chosen by URI. Keys are
 * relative to the store's root and use `/`.
 *
 * @example
 * const store = await openStore('s3://bucket/galaxies');
 * for await (const o of store.list()) console.log(o.key, o.size);
 */
export interface Store {
  /** The URI the store was opened from, for messages. */
  readonly uri: string;
  /** Every object under `prefix` (all of them when omitted), page by page, in no particular order. */
  list(prefix?: string, options?: ListOptions): AsyncIterable<ObjectInfo>;
  /** The whole object. Throws `E_NOT_FOUND` naming the URI when it is missing. */
  get(key: string, options?: GetOptions): Promise<Uint8Array>;
  /** Bytes `[start, end)` of an object. */
  getRange(key: string, start: number, end: number): Promise<Uint8Array>;
  /** Writes an object so that readers see either nothing or all of it, never a part. */
  put(key: string, body: Uint8Array | string): Promise<void>;
  /**
   * Writes an object only if none exists under `key`, atomically where the store can: a hard link on a
   * local disk, `If-None-Match: *` on S3. Stores without it fall back to a plain `put`
   * (`unconditional`).
   */
  putIfAbsent?(key: string, body: Uint8Array | string): Promise<CreateResult>;
  /** Size of an object, or `undefined` when it does not exist. */
  head(key: string): Promise<ObjectInfo | undefined>;
  /** Removes an object; missing objects are not an error. */
  delete(key: string): Promise<void>;
  /** A human-readable location for a key, e.g. `/data/out/plan.json` or `s3://b/out/plan.json`. */
  describe(key: string): string;
  /** A local file path for the object, downloading it to a cache when the store is remote. */
  localPath(key: string): Promise<string>;
}

/**
 * Every key under `prefix`, listed once (a listing page holds up to 1,000 keys, where a HEAD per key
 * would be one request each).
 * @example (await listKeys(output, 'results')).has('results/1.json')
 */
export async function listKeys(store: Store, prefix?: string): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const o of store.list(prefix)) keys.add(o.key);
  return keys;
}
