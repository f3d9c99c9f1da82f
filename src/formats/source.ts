import type { JobSpec } from '../job/spec.js';
import type { PlannedPartition } from './planned-partition.js';
import type { BufferPool } from '../storage/buffer-pool.js';
import type { ObjectInfo, Store } from '../storage/store.js';
import type { ColumnSet } from './columns.js';

/** One batch of rows read from a partition, in partition order. */
export interface SourceBatch {
  /** The decoded rows (only items that could be decoded). */
  readonly rows: ColumnSet;
  /** Position within the partition of each row of `rows`. */
  readonly indices: ArrayLike<number>;
  /** A stable id per row of `rows` (e.g. the image's key), when items are separate objects. */
  readonly ids?: readonly string[];
  /** Items of this stretch that could not be decoded: they get an error row instead of a prediction. */
  readonly failed?: readonly FailedItem[];
}

/** An item that could not be decoded (a corrupt image, say): recorded, not fatal to its partition. */
export interface FailedItem {
  readonly index: number;
  readonly id?: string;
  readonly reason: string;
}

/** Wall-clock seconds a source spent fetching bytes and decoding them, and the bytes it read. */
export interface ReadStats {
  readonly read: number;
  readonly decode: number;
  readonly bytes: number;
  /** Images with 16 bits per sample reduced to 8 (preprocess.sixteenBit's rule): announced, never silent. */
  readonly sixteen_bit_images?: number;
}

/** A partition opened for reading: its item count is known before any batch is read. */
export interface PartitionStream {
  readonly items: number;
  /** Whether rows carry ids (then predictions get an `id` column). */
  readonly hasIds: boolean;
  /** Batches of at most `batchSize` rows, in order. */
  batches(batchSize: number): AsyncIterable<SourceBatch>;
  /** Read and decode time so far. */
  stats(): ReadStats;
  /**
   * Gives the partition's memory back to the pool it came from ({@link OpenOptions.buffers}). Call it
   * once nothing views the batches any more (predictions copied out), never before.
   */
  release?(): void;
}

/** How a worker opens partitions, beyond the store and the job. */
export interface OpenOptions {
  /** Memory for whole-object reads, reused from partition to partition. */
  readonly buffers?: BufferPool;
}

/**
 * A kind of input CAI reads (tensor files, images, FITS, Parquet). A source only describes and opens
 * partitions; the worker does the rest (design rule 1).
 *
 * @example
 * const stream = await tensorFiles.open(store, partition, job);
 * for await (const batch of stream.batches(128)) ...
 */
export interface SourceKind {
  readonly name: string;
  /** Whether an object of the input belongs to this source (by its key). */
  accepts(key: string): boolean;
  /** Groups the input's objects (already filtered by `accepts`, in natural order) into partitions. */
  plan(objects: readonly ObjectInfo[], job: JobSpec): PlannedPartition[];
  /**
   * Like `plan`, for sources whose partitions can be row ranges of one big object (Parquet row groups,
   * FITS cutout files): reads what it needs of each object (a footer, a header) to split it.
   */
  planWithStore?(store: Store, objects: readonly ObjectInfo[], job: JobSpec): Promise<PlannedPartition[]>;
  /** Opens one planned partition. */
  open(
    store: Store,
    partition: PlannedPartition,
    job: JobSpec,
    options?: OpenOptions,
  ): Promise<PartitionStream>;
}

/**
 * A source kind that always plans with the store, typed by the job fields its planning reads (so that
 * callers such as `cai partition` can pass just those).
 *
 * @example export const hdf5Files: StoreSourceKind<ArraySourceFields> = Object.freeze({ name: 'hdf5', ... });
 */
export type StoreSourceKind<Fields = JobSpec> = SourceKind & {
  planWithStore(store: Store, objects: readonly ObjectInfo[], job: Fields): Promise<PlannedPartition[]>;
};

/**
 * Plans a source's objects (in natural order) into partitions, with the store when the source can split
 * big objects into row ranges, else from the listing alone.
 *
 * @example const partitions = await planSource(parquetFiles, store, objects, job);
 */
export function planSource(
  kind: SourceKind,
  store: Store,
  objects: readonly ObjectInfo[],
  job: JobSpec,
): Promise<PlannedPartition[]> {
  return kind.planWithStore
    ? kind.planWithStore(store, objects, job)
    : Promise.resolve(kind.plan(objects, job));
}
