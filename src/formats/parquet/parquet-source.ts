import { performance } from 'node:perf_hooks';
import { parquetMetadataAsync, type FileMetaData } from 'hyparquet';
import { CaiError, ErrorCodes } from '../../errors.js';
import { partitionId, type PlannedPartition } from '../planned-partition.js';
import type { ObjectInfo, Store } from '../../storage/store.js';
import { resolvePreprocess, type PreprocessOptions } from '../image/preprocess.js';
import type { NanPolicy } from '../partition/nan.js';
import type { PartitionStream, SourceBatch, StoreSourceKind } from '../source.js';
import { storeBuffer, type StoreBuffer } from './async-buffer.js';
import { assembleBatch, type BatchContext } from './batch.js';
import { checkFooter } from './footer-check.js';
import { parquetLayout, type ParquetJobFields, type ParquetLayout } from './layout.js';
import { RowReader } from './row-reader.js';

/** Every job field the Parquet source reads. */
export interface ParquetSourceFields extends ParquetJobFields {
  readonly preset?: string;
  readonly preprocess?: PreprocessOptions;
  readonly nan?: NanPolicy;
  readonly partitionItems?: number;
  readonly partitionBytes?: number;
}

/** A Parquet file opened for reading: its metadata, the roles of its columns, and a ranged buffer. */
export interface OpenedParquet {
  readonly file: StoreBuffer;
  readonly metadata: FileMetaData;
  readonly layout: ParquetLayout;
  readonly reader: RowReader;
}

/**
 * Opens a Parquet object: reads its footer (one ranged request for small footers) and decides the
 * columns' roles. Throws `E_CORRUPT` naming the file when it is not Parquet.
 *
 * @example const { reader, layout } = await openParquet(store, 'part-0.parquet', job);
 */
export async function openParquet(store: Store, key: string, job: ParquetJobFields): Promise<OpenedParquet> {
  const source = store.describe(key);
  const size = (await store.head(key))?.size;
  if (size === undefined) throw new CaiError(ErrorCodes.notFound, source, 'does not exist; check --input');
  const file = storeBuffer(store, key, size);
  let metadata: FileMetaData;
  try {
    metadata = await parquetMetadataAsync(file, { initialFetchSize: Math.min(size, 64 * 1024) });
  } catch (err) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `is not a readable Parquet file (${(err as Error).message}); it is truncated or not Parquet: write it again`,
      { cause: err },
    );
  }
  checkFooter(metadata, size, source);
  const layout = parquetLayout(metadata, job, source);
  const flat = [layout.id, layout.image, ...layout.features, ...(layout.carry ?? [])].filter(
    (c, i, all): c is NonNullable<typeof c> =>
      c !== undefined && c.kind !== 'list' && all.findIndex((d) => d?.name === c.name) === i,
  );
  const lists = [layout.image, layout.shape, ...layout.features].filter(
    (c): c is NonNullable<typeof c> => c !== undefined && c.kind === 'list',
  );
  return { file, metadata, layout, reader: new RowReader(file, metadata, flat, lists) };
}

/** Row ranges of `rows` rows in partitions of `per` rows. */
function rowPartitions(o: ObjectInfo, rows: number, per: number): PlannedPartition[] {
  if (per >= rows) return [{ id: partitionId(o.key), key: o.key, bytes: o.size, items: rows }];
  const out: PlannedPartition[] = [];
  for (let start = 0; start < rows; start += per) {
    const end = Math.min(rows, start + per);
    out.push({
      id: `${partitionId(o.key)}__${start}-${end}`,
      key: o.key,
      bytes: Math.round((o.size * (end - start)) / rows),
      items: end - start,
      rows: [start, end],
    });
  }
  return out;
}

// One partition per file.
const planFiles = (objects: readonly ObjectInfo[]): PlannedPartition[] =>
  objects.map((o) => ({ id: partitionId(o.key), key: o.key, bytes: o.size }));

/**
 * Parquet files: one partition per file (or, planned with the store, row ranges of `partitionItems`
 * rows or about `partitionBytes`). Items are rows; their id is the `idColumn` value or `key#row`. Row
 * groups are fetched one at a time, only the columns used, and decoded batch by batch; a row whose
 * image or features cannot be used is a failed item.
 *
 * @example await runJob(parseJobSpec({ input: 'ray/', model: 'resnet.onnx', output: 'out', preset: 'imagenet', imageShape: [256, 256, 3] }))
 */
export const parquetFiles: StoreSourceKind<ParquetSourceFields> = Object.freeze({
  name: 'parquet',
  options: [
    'idColumn',
    'carry',
    'imageColumn',
    'shapeColumn',
    'imageShape',
    'featureColumns',
    'preset',
    'preprocess',
    'partitionItems',
    'partitionBytes',
  ] as const,
  accepts: (key: string) => /\.(parquet|parq|pq)$/i.test(key),
  plan: planFiles,
  async planWithStore(store: Store, objects: readonly ObjectInfo[], job: ParquetSourceFields) {
    // Without a partition size each file is one partition: no footer needs reading to plan.
    if (job.partitionItems === undefined && job.partitionBytes === undefined) return planFiles(objects);
    const out: PlannedPartition[] = [];
    for (const o of objects) {
      const { reader } = await openParquet(store, o.key, job);
      const rows = reader.rows;
      const per =
        job.partitionItems ??
        (job.partitionBytes
          ? Math.max(1, Math.floor((job.partitionBytes * rows) / Math.max(1, o.size)))
          : rows);
      out.push(...rowPartitions(o, rows, Math.max(1, per)));
    }
    return out;
  },
  async open(store: Store, partition: PlannedPartition, job: ParquetSourceFields): Promise<PartitionStream> {
    const t0 = performance.now();
    const opened = await openParquet(store, partition.key, job);
    const stats = { read: (performance.now() - t0) / 1000, decode: 0, bytes: 0 };
    const { reader, layout, file } = opened;
    const [first, last] = partition.rows ?? [0, reader.rows];
    if (first < 0 || last > reader.rows || first > last) {
      throw new CaiError(
        ErrorCodes.option,
        store.describe(partition.key),
        `rows [${first}, ${last}) are outside its ${reader.rows} rows; plan the job again`,
      );
    }
    if ((job.preset !== undefined || job.preprocess !== undefined) && !layout.image) {
      throw new CaiError(
        ErrorCodes.option,
        store.describe(partition.key),
        `image preprocessing (--preset or its flags) is asked, and the file has no image column (columns: ${layout.columns.map((c) => `${c.name} (${c.kind})`).join(', ')}); name it with --image-column, or remove the preprocessing flags`,
      );
    }
    const ctx: BatchContext = {
      layout,
      key: partition.key,
      preprocess: resolvePreprocess(job),
      preprocessRaw: job.preset !== undefined || job.preprocess !== undefined,
      imageShape: job.imageShape,
      nan: job.nan,
      shapes: new Map(),
      notes: { sixteenBit: 0 },
    };
    return {
      items: last - first,
      hasIds: true,
      ...(layout.carry ? { carries: layout.carry.map((c) => c.name) } : {}),
      stats: () => ({
        ...stats,
        bytes: file.fetched(),
        ...(ctx.notes?.sixteenBit ? { sixteen_bit_images: ctx.notes.sixteenBit } : {}),
      }),
      async *batches(batchSize: number): AsyncIterable<SourceBatch> {
        for (let a = first; a < last; a += batchSize) {
          const b = Math.min(last, a + batchSize);
          const tr = performance.now();
          const rows = await reader.read(a, b).catch((err: unknown) => {
            // hyparquet's own errors (a damaged page) name no file: say which, and that it is damage.
            if (err instanceof CaiError) throw err;
            throw new CaiError(
              ErrorCodes.corrupt,
              store.describe(partition.key),
              `rows ${a}-${b} cannot be read (${(err as Error).message}); the file is damaged: write it again`,
              { cause: err },
            );
          });
          const td = performance.now();
          const batch = await assembleBatch(ctx, rows, a - first, a);
          stats.read += (td - tr) / 1000;
          stats.decode += (performance.now() - td) / 1000;
          yield batch;
        }
        file.release();
      },
    };
  },
});
