import { performance } from 'node:perf_hooks';
import { partitionId, type PlannedPartition } from './planned-partition.js';
import { sliceColumns } from './columns.js';
import { decodeTensorFile, formatForKey } from './registry.js';
import type { PartitionStream, SourceBatch, SourceKind } from './source.js';

/**
 * Tensor files (`.pt`, `.npy`, `.npz`, `.safetensors`): each file is one partition, read whole and
 * decoded zero-copy where the layout allows; batches are views into it.
 */
export const tensorFiles: SourceKind = Object.freeze<SourceKind>({
  name: 'tensor',
  options: [],
  accepts: (key: string) => formatForKey(key) !== undefined,
  plan: (objects) =>
    objects.map((o): PlannedPartition => ({ id: partitionId(o.key), key: o.key, bytes: o.size })),
  async open(store, partition, _job, options): Promise<PartitionStream> {
    const pool = options?.buffers;
    const t0 = performance.now();
    // The planned size: a remote body shorter than it is retried, a local file that changed is named.
    const expectedSize = partition.bytes > 0 ? partition.bytes : undefined;
    const bytes = await store.get(partition.key, {
      ...(pool ? { into: (n: number) => pool.acquire(n) } : {}),
      expectedSize,
    });
    const t1 = performance.now();
    let set;
    try {
      set = decodeTensorFile(bytes, store.describe(partition.key));
    } catch (err) {
      pool?.release(bytes);
      throw err;
    }
    const t2 = performance.now();
    const stats = { read: (t1 - t0) / 1000, decode: (t2 - t1) / 1000, bytes: bytes.byteLength };
    return {
      items: set.items,
      hasIds: false,
      stats: () => stats,
      // The pool ignores a view given back twice, so a second release cannot free memory in use.
      release: () => pool?.release(bytes),
      async *batches(batchSize: number): AsyncIterable<SourceBatch> {
        for (let start = 0; start < set.items; start += batchSize) {
          const end = Math.min(set.items, start + batchSize);
          const indices = new Int32Array(end - start);
          for (let i = 0; i < indices.length; i++) indices[i] = start + i;
          yield { rows: sliceColumns(set, start, end), indices };
        }
      },
    };
  },
});
