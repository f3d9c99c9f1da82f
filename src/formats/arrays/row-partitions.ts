import { partitionId, type PlannedPartition } from '../planned-partition.js';

/**
 * Rows of one container as partitions: the whole container when no size is asked, else row ranges of
 * `partitionItems` rows (or about `partitionBytes`), rounded up to a multiple of `align` (the arrays'
 * chunk length) so that no chunk is read by two partitions.
 *
 * @example rowPartitions({ key: 'g.h5', size: 2e9 }, 17736, { partitionItems: 1000 }, 8)
 */
export function rowPartitions(
  o: { readonly key: string; readonly size: number; readonly id?: string },
  rows: number,
  job: { readonly partitionItems?: number; readonly partitionBytes?: number },
  align = 1,
): PlannedPartition[] {
  const id = o.id ?? partitionId(o.key);
  let per =
    job.partitionItems ??
    (job.partitionBytes ? Math.max(1, Math.floor((job.partitionBytes * rows) / Math.max(1, o.size))) : rows);
  per = Math.max(1, Math.ceil(per / Math.max(1, align)) * Math.max(1, align));
  if (per >= rows) return [{ id, key: o.key, bytes: o.size, items: rows, rows: [0, rows] }];
  const out: PlannedPartition[] = [];
  for (let start = 0; start < rows; start += per) {
    const end = Math.min(rows, start + per);
    out.push({
      id: `${id}__${start}-${end}`,
      key: o.key,
      bytes: Math.round((o.size * (end - start)) / rows),
      items: end - start,
      rows: [start, end],
    });
  }
  return out;
}
