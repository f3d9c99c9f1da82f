import { performance } from 'node:perf_hooks';
import { partitionId, type PlannedPartition } from './planned-partition.js';
import { CaiError, ErrorCodes } from '../errors.js';
import { halfToNumber } from '../tensor/float16.js';
import { numel } from '../tensor/tensor.js';
import { sliceColumns, type ColumnSet } from './columns.js';
import { decodeTensorFile, formatForKey } from './registry.js';
import type { CarriedValue, PartitionStream, SourceBatch, SourceKind } from './source.js';

type CarriedColumns = [string, CarriedValue[]][];

/** The columns named by `carry`, one number per item, or an error naming the flag and the columns. */
function carriedColumns(set: ColumnSet, carry: readonly string[], source: string): CarriedColumns {
  const describe = () => set.names.map((n, i) => `${n} [${set.columns[i].shape.join(', ')}]`).join(', ');
  return carry.map((name) => {
    const k = set.names.indexOf(name);
    if (k < 0) {
      // The job's option does not fit the data (E_OPTION): the preflight refuses the job at planning
      // when the first partition lacks it; a later partition of a mixed folder fails alone.
      throw new CaiError(
        ErrorCodes.option,
        source,
        `has no column "${name}" for --carry; its columns are ${describe()}`,
      );
    }
    const t = set.columns[k];
    if (numel(t.shape.slice(1)) !== 1) {
      throw new CaiError(
        ErrorCodes.option,
        source,
        `column "${name}" is ${t.dtype} [${t.shape.join(', ')}]: --carry copies one value per item (a column of shape [items] or [items, 1]); leave it out of --carry`,
      );
    }
    // float16 is stored as raw bits (and bfloat16 likewise, if a reader keeps it): decode, never copy bits.
    const values = Array.from(t.data as ArrayLike<number | bigint>, (v) =>
      t.dtype === 'float16' ? halfToNumber(Number(v)) : Number(v),
    );
    return [name, values];
  });
}

/**
 * Tensor files (`.pt`, `.npy`, `.npz`, `.safetensors`): each file is one partition, read whole and
 * decoded zero-copy where the layout allows; batches are views into it.
 */
export const tensorFiles: SourceKind = Object.freeze<SourceKind>({
  name: 'tensor',
  options: ['carry'],
  accepts: (key: string) => formatForKey(key) !== undefined,
  plan: (objects) =>
    objects.map((o): PlannedPartition => ({ id: partitionId(o.key), key: o.key, bytes: o.size })),
  async open(store, partition, job, options): Promise<PartitionStream> {
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
    let carry: CarriedColumns;
    try {
      carry = carriedColumns(set, job.carry ?? [], store.describe(partition.key));
    } catch (err) {
      pool?.release(bytes);
      throw err;
    }
    const t2 = performance.now();
    const stats = { read: (t1 - t0) / 1000, decode: (t2 - t1) / 1000, bytes: bytes.byteLength };
    return {
      items: set.items,
      hasIds: false,
      ...(job.carry ? { carries: job.carry } : {}),
      stats: () => stats,
      // The pool ignores a view given back twice, so a second release cannot free memory in use.
      release: () => pool?.release(bytes),
      async *batches(batchSize: number): AsyncIterable<SourceBatch> {
        for (let start = 0; start < set.items; start += batchSize) {
          const end = Math.min(set.items, start + batchSize);
          const indices = new Int32Array(end - start);
          for (let i = 0; i < indices.length; i++) indices[i] = start + i;
          yield {
            rows: sliceColumns(set, start, end),
            indices,
            ...(job.carry
              ? { carried: Object.fromEntries(carry.map(([name, v]) => [name, v.slice(start, end)])) }
              : {}),
          };
        }
      },
    };
  },
});
