// hyparquet reads through an AsyncBuffer (byteLength + slice). This one asks the Store for byte ranges,
// so only the footer and the column chunks a batch needs are fetched, from disk or S3 alike; a row
// group's chunks are fetched once and served from memory to every batch of that group.
import type { AsyncBuffer } from 'hyparquet';
import type { Store } from '../../storage/store.js';

/** An AsyncBuffer over one object of a store, with a cache of prefetched ranges and a byte counter. */
export interface StoreBuffer extends AsyncBuffer {
  /** Bytes fetched from the store so far. */
  readonly fetched: () => number;
  /** Fetches `[start, end)` ranges now (one request each) so later slices inside them need none. */
  prefetch(ranges: readonly (readonly [number, number])[]): Promise<void>;
  /** Drops prefetched ranges (a finished row group). */
  release(): void;
}

function exactBuffer(u8: Uint8Array): ArrayBuffer {
  if (u8.byteOffset === 0 && u8.byteLength === u8.buffer.byteLength && u8.buffer instanceof ArrayBuffer) {
    return u8.buffer;
  }
  return u8.slice().buffer as ArrayBuffer;
}

/**
 * Wraps `store.getRange(key, ...)` as an AsyncBuffer of `size` bytes.
 *
 * @example const file = storeBuffer(store, 'part-0.parquet', size); const meta = await parquetMetadataAsync(file);
 */
export function storeBuffer(store: Store, key: string, size: number): StoreBuffer {
  let fetched = 0;
  let cached: { start: number; bytes: Uint8Array }[] = [];
  const get = async (start: number, end: number): Promise<Uint8Array> => {
    const bytes = await store.getRange(key, start, end);
    fetched += bytes.length;
    return bytes;
  };
  return {
    byteLength: size,
    fetched: () => fetched,
    async slice(start: number, end = size): Promise<ArrayBuffer> {
      const hit = cached.find((c) => start >= c.start && end <= c.start + c.bytes.length);
      if (hit) return exactBuffer(hit.bytes.subarray(start - hit.start, end - hit.start));
      return exactBuffer(await get(start, end));
    },
    async prefetch(ranges) {
      const loaded = await Promise.all(ranges.map(async ([s, e]) => ({ start: s, bytes: await get(s, e) })));
      cached = cached.concat(loaded);
    },
    release() {
      cached = [];
    },
  };
}

/**
 * Merges byte ranges that touch or are closer than `gap` bytes, so a row group's column chunks become
 * one or a few requests.
 *
 * @example coalesce([[4, 100], [100, 300], [900, 1000]], 64) // [[4, 300], [900, 1000]]
 */
export function coalesce(
  ranges: readonly (readonly [number, number])[],
  gap = 64 * 1024,
): [number, number][] {
  const sorted = [...ranges].sort((a, b) => a[0] - b[0]);
  const out: [number, number][] = [];
  for (const [s, e] of sorted) {
    const last = out[out.length - 1];
    if (last && s <= last[1] + gap) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}
