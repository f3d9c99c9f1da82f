import { CaiError, ErrorCodes } from '../errors.js';
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
  /** Values of the job's `carry` columns, name -> one value per row of `rows`. */
  readonly carried?: Readonly<Record<string, readonly CarriedValue[]>>;
  /**
   * Lets the source reuse this batch's memory for a later batch (Zarr does: no fresh pages, no garbage
   * to collect). Call it once nothing views `rows` any more, never before; a batch never released is
   * simply collected.
   */
  release?(): void;
}

/** One item's value of a carried column (`--carry`): a number or a string, null when missing. */
export type CarriedValue = number | string | null;

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
  /** The carried columns (`--carry`) its batches hold, in the job's order. */
  readonly carries?: readonly string[];
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
  /**
   * The job fields of {@link SOURCE_OPTIONS} this source reads; a job that sets another one is refused
   * ({@link checkSourceOptions}): no option is ignored. Left out, the source takes them all.
   */
  readonly options?: readonly SourceOption[];
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

/** The flag of each preprocessing step, for messages. */
const PREPROCESS_FLAGS: Readonly<Record<string, string>> = Object.freeze({
  resize: '--resize',
  centerCrop: '--center-crop',
  scale: '--unscaled',
  mean: '--mean',
  std: '--std',
  channels: '--channels',
  layout: '--layout',
  dtype: '--image-dtype',
  interpolation: '--interpolation',
  resizeMethod: '--resize-method',
  iccProfile: '--icc-profile',
  exifOrientation: '--exif-orientation',
  sixteenBit: '--sixteen-bit',
});

/** The job fields that only some sources read, with their flags. */
export const SOURCE_OPTIONS = Object.freeze({
  preset: '--preset',
  preprocess: '--resize, --center-crop, --mean, --std, --unscaled, --channels, --layout or --image-dtype',
  partitionItems: '--partition-items',
  partitionBytes: '--partition-bytes',
  fitsHdu: '--fits-hdu',
  fitsBands: '--fits-bands',
  fitsPattern: '--fits-pattern',
  fitsCutouts: '--fits-cutouts',
  idColumn: '--id-column',
  carry: '--carry',
  imageColumn: '--image-column',
  shapeColumn: '--shape-column',
  imageShape: '--image-shape',
  featureColumns: '--feature-columns',
  datasets: '--datasets',
  group: '--group',
} as const satisfies Partial<Record<keyof JobSpec, string>>);

/** A job field only some sources read. */
export type SourceOption = keyof typeof SOURCE_OPTIONS;

/** The flag that set a field, for messages: `--channels` for `preprocess.channels`. */
function flagOf(field: SourceOption, job: Partial<JobSpec>): string {
  if (field !== 'preprocess' || !job.preprocess) return SOURCE_OPTIONS[field];
  const set = Object.keys(job.preprocess).filter(
    (k) => (job.preprocess as Record<string, unknown>)[k] !== undefined,
  );
  return set.map((k) => PREPROCESS_FLAGS[k] ?? `preprocess.${k}`).join(', ') || SOURCE_OPTIONS.preprocess;
}

// Why an option does not fit a kind of input, where a better way exists.
const INSTEAD: Readonly<Record<string, string>> = Object.freeze({
  'tensor preset':
    'tensor partitions go to the model as stored; preprocess images when making partitions (cai partition --preset imagenet)',
  'tensor preprocess':
    'tensor partitions go to the model as stored; preprocess images when making partitions (cai partition --resize ...)',
  'tensor partitionItems': 'each tensor file is one partition; size them with cai partition --items',
  'tensor partitionBytes': 'each tensor file is one partition; size them with cai partition --size',
  'hdf5 featureColumns': 'HDF5 datasets are chosen with --datasets',
  'zarr featureColumns': 'Zarr arrays are chosen with --datasets',
  'parquet datasets': 'Parquet columns are chosen with --feature-columns, --image-column and --id-column',
});

/**
 * Refuses a job that sets an option the input's kind does not read (`--preset` on tensor partitions,
 * FITS options on Parquet...), naming each option, the sources that do read it and what to do: a flag
 * is never silently ignored.
 *
 * @example checkSourceOptions(tensorFiles, { preset: 'imagenet' }, 'data/') // throws E_OPTION
 */
export function checkSourceOptions(
  kind: SourceKind,
  job: Partial<JobSpec>,
  where: string,
  kinds: readonly SourceKind[] = [],
): void {
  const reads = kind.options;
  if (!reads) return;
  const unread = (Object.keys(SOURCE_OPTIONS) as SourceOption[]).filter(
    (f) => job[f] !== undefined && !reads.includes(f),
  );
  if (!unread.length) return;
  const problems = unread.map((f) => {
    const readers = kinds.filter((k) => k.options?.includes(f)).map((k) => k.name);
    const instead = INSTEAD[`${kind.name} ${f}`];
    return `${flagOf(f, job)} (${f}) does not apply to ${kind.name} input${readers.length ? ` (${readers.join(', ')} inputs read it)` : ''}${instead ? `: ${instead}` : ''}`;
  });
  throw new CaiError(
    ErrorCodes.option,
    where,
    `${problems.join('; ')}; remove ${unread.length > 1 ? 'them' : 'it'}`,
  );
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
