import { performance } from 'node:perf_hooks';
import type { ObjectInfo, Store } from '../../storage/store.js';
import { ARRAY_SOURCE_OPTIONS, arrayStream, type ArraySourceFields } from '../arrays/batches.js';
import { chooseArrays, cleanPath, type ArrayJobFields } from '../arrays/layout.js';
import { rowPartitions } from '../arrays/row-partitions.js';
import type { PlannedPartition } from '../planned-partition.js';
import type { PartitionStream, StoreSourceKind } from '../source.js';
import { openZarr } from './zarr-dataset.js';

const base = (key: string) => key.slice(key.lastIndexOf('/') + 1);

/**
 * Whether a key belongs to a Zarr store: v3 metadata (`zarr.json`) or a chunk (`0.0.1` in v2, `1/0/0`
 * with `/` separators, `c/0/0` in v3). v2's `.zarray` and `.zgroup` are hidden files, which listings skip.
 *
 * @example isZarrKey('galaxy.zarr/images/0.0.0.0') // true
 */
export function isZarrKey(key: string): boolean {
  const b = base(key);
  return b === 'zarr.json' || /^\d+(\.\d+)*$/.test(b);
}

/** The store a key belongs to: its nearest `*.zarr` folder, or '' (the input is the store itself). */
export function zarrRoot(key: string): string {
  const parts = key.split('/');
  for (let i = parts.length - 2; i >= 0; i--) {
    if (/\.zarr$/i.test(parts[i])) return parts.slice(0, i + 1).join('/');
  }
  return '';
}

/** The name of a store for ids and partition ids: `galaxy.zarr` -> `galaxy`. */
function storeName(store: Store, root: string): string {
  const last = (root || store.uri).replace(/\/+$/, '').split('/').pop() ?? '';
  return last.replace(/\.zarr$/i, '') || 'zarr';
}

/**
 * The array paths a job names (its datasets, id column and carried arrays, under its group), so an
 * open fetches their metadata only; `undefined` when it names no datasets (every array is a candidate).
 */
export function namedArrayPaths(job: ArrayJobFields): string[] | undefined {
  if (!job.datasets) return undefined;
  const group = cleanPath(job.group);
  const named = [
    ...(Array.isArray(job.datasets) ? (job.datasets as readonly string[]) : Object.values(job.datasets)),
    ...(job.idColumn ? [job.idColumn] : []),
    ...(job.carry ?? []),
  ];
  return named.map((p) => cleanPath(group ? `${group}/${cleanPath(p)}` : p));
}

/**
 * Zarr stores (v2 and v3, read with zarrita): a folder or S3 prefix that is a store, or holds `*.zarr`
 * stores. Columns are chosen as for HDF5 (`datasets` under `group`, else every numeric array whose first
 * dimension is the most common one; `idColumn`). Each store is a partition, or row ranges of
 * `partitionItems` / about `partitionBytes` rounded up to whole chunks, so no chunk is fetched by two
 * partitions. Only the chunks of a batch's rows are fetched (ranged reads on S3).
 *
 * @example await runJob(parseJobSpec({ input: 's3://b/galaxy.zarr', model: 'm.onnx', output: 'out', idColumn: 'ids' }))
 */
export const zarrStores: StoreSourceKind<ArraySourceFields> = Object.freeze({
  name: 'zarr',
  options: ARRAY_SOURCE_OPTIONS,
  accepts: isZarrKey,
  plan(objects: readonly ObjectInfo[]): PlannedPartition[] {
    const roots = new Map<string, number>();
    for (const o of objects) roots.set(zarrRoot(o.key), (roots.get(zarrRoot(o.key)) ?? 0) + o.size);
    return [...roots.entries()].map(([key, bytes]) => ({
      id: key.replace(/\.zarr$/i, '') || 'zarr',
      key,
      bytes,
    }));
  },
  async planWithStore(store: Store, objects: readonly ObjectInfo[], job: ArraySourceFields) {
    const sizes = new Map<string, number>();
    const keys = new Map<string, string[]>();
    for (const o of objects) {
      const root = zarrRoot(o.key);
      sizes.set(root, (sizes.get(root) ?? 0) + o.size);
      const list = keys.get(root) ?? [];
      list.push(root ? o.key.slice(root.length + 1) : o.key);
      keys.set(root, list);
    }
    const out: PlannedPartition[] = [];
    for (const [root, size] of sizes) {
      // The planner has listed the input already: that listing finds the arrays, not another one.
      const ds = await openZarr(store, root, { paths: namedArrayPaths(job), keys: keys.get(root) });
      const layout = chooseArrays(ds.arrays, job, store.describe(root));
      const align = layout.columns[0]?.array.chunkRows ?? 1;
      const id = storeName(store, root);
      out.push(...rowPartitions({ key: root, size, id }, layout.items, job, align));
    }
    return out;
  },
  async open(store: Store, partition: PlannedPartition, job: ArraySourceFields): Promise<PartitionStream> {
    const t0 = performance.now();
    // A worker opens only the arrays the job names (or those consolidated metadata lists): no listing
    // of the store per partition unless the job names no datasets and the store is not consolidated.
    const ds = await openZarr(store, partition.key, { paths: namedArrayPaths(job) });
    const source = store.describe(partition.key);
    const layout = chooseArrays(ds.arrays, job, source);
    const stats = { read: (performance.now() - t0) / 1000, decode: 0, bytes: 0 };
    const [first, last] = partition.rows ?? [0, layout.items];
    return arrayStream({
      layout,
      read: async (array, start, end) => {
        const rows = await ds.read(array, start, end);
        stats.bytes = ds.bytes();
        return rows;
      },
      countRows: false,
      recycle: (rows) => ds.recycle(rows),
      name: storeName(store, partition.key),
      first,
      last,
      job,
      source,
      stats,
    });
  },
});
