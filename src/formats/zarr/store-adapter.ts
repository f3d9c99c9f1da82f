// zarrita reads through a tiny store interface (get a key, get a range of a key); this one serves it
// from any CAI Store (a folder, an S3 prefix), so Zarr on S3 is read chunk by chunk with ranged GETs.
import type { AbsolutePath, AsyncReadable, RangeQuery } from 'zarrita';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { Store } from '../../storage/store.js';

/**
 * A zarrita store over the objects under `root` (`galaxy.zarr`, or '' for the store's root). Missing
 * keys (absent chunks, which Zarr fills with the fill value; metadata probes) are `undefined`; any other
 * failure is thrown. Counts the bytes it returns.
 *
 * @example const z = zarrStore(store, 'galaxy.zarr'); const arr = await zarr.open(zarr.root(z).resolve('images'), { kind: 'array' });
 */
export function zarrStore(store: Store, root: string): AsyncReadable & { bytes(): number } {
  let bytes = 0;
  const keyOf = (key: AbsolutePath) => (root ? `${root}/${key.slice(1)}` : key.slice(1));
  const missing = (err: unknown) => err instanceof CaiError && err.code === ErrorCodes.notFound;
  return {
    async get(key) {
      try {
        const out = await store.get(keyOf(key));
        bytes += out.byteLength;
        return out;
      } catch (err) {
        if (missing(err)) return undefined;
        throw err;
      }
    },
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
        if (missing(err)) return undefined;
        throw err;
      }
    },
    bytes: () => bytes,
  };
}
