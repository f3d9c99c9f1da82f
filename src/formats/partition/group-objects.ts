// Planning for inputs of many small objects: consecutive items are grouped into partitions by count or
// bytes, as lists of keys (nothing is copied).
import type { PlannedPartition } from '../planned-partition.js';

/** Items per partition when the job sets neither `partitionItems` nor `partitionBytes`: about one Ray
 *  benchmark Parquet file's worth of images. */
export const DEFAULT_PARTITION_ITEMS = 1000;

/** One item of a keyed input, with the objects it is made of, in order. */
export interface KeyedItem {
  readonly keys: readonly string[];
  readonly bytes: number;
}

/**
 * Groups items into partitions of at most `partitionItems` items and, when `partitionBytes` is set, at
 * most that many bytes (an item larger than the limit gets a partition of its own). Partitions are
 * named `1`, `2`, ... in item order; each lists every key of its items.
 *
 * @example groupItems(items, { partitionItems: 1000 }).map((p) => p.items) // [1000, 1000, 312]
 */
export function groupItems(
  items: readonly KeyedItem[],
  job: { partitionItems?: number; partitionBytes?: number },
): PlannedPartition[] {
  const maxItems = job.partitionItems ?? (job.partitionBytes ? Infinity : DEFAULT_PARTITION_ITEMS);
  const maxBytes = job.partitionBytes ?? Infinity;
  const out: PlannedPartition[] = [];
  let keys: string[] = [];
  let count = 0;
  let bytes = 0;
  const flush = () => {
    if (count === 0) return;
    out.push({ id: String(out.length + 1), key: keys[0], bytes, keys, items: count });
    keys = [];
    count = 0;
    bytes = 0;
  };
  for (const item of items) {
    if (count > 0 && (count + 1 > maxItems || bytes + item.bytes > maxBytes)) flush();
    keys.push(...item.keys);
    count++;
    bytes += item.bytes;
  }
  flush();
  return out;
}
