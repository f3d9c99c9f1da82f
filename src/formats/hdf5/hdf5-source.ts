import { performance } from 'node:perf_hooks';
import type { ObjectInfo, Store } from '../../storage/store.js';
import { arrayStream, type ArraySourceFields } from '../arrays/batches.js';
import { chooseArrays, type ArrayLayout } from '../arrays/layout.js';
import { rowPartitions } from '../arrays/row-partitions.js';
import { partitionId, type PlannedPartition } from '../planned-partition.js';
import type { PartitionStream, StoreSourceKind } from '../source.js';
import { openHdf5, type Hdf5File } from './h5-file.js';
import { localFile, type LocalFile } from './local-file.js';

/** Name endings read as HDF5 (lower case). */
export const HDF5_SUFFIXES = Object.freeze(['.h5', '.hdf5', '.hdf', '.he5']);

/** Whether a key names an HDF5 file. @example isHdf5Key('healpix=11/001-of-001.hdf5') // true */
export function isHdf5Key(key: string): boolean {
  const k = key.toLowerCase();
  return HDF5_SUFFIXES.some((s) => k.endsWith(s));
}

/** An HDF5 object opened for reading: its file, the chosen columns, and how to let go of it. */
interface Opened {
  readonly file: Hdf5File;
  readonly local: LocalFile;
  readonly layout: ArrayLayout;
  /** Closes the file; a downloaded copy is kept for the next partition unless `reusable` is false. */
  close(reusable?: boolean): Promise<void>;
}

async function openObject(store: Store, key: string, job: ArraySourceFields): Promise<Opened> {
  const source = store.describe(key);
  const local = await localFile(store, key);
  let file: Hdf5File | undefined;
  try {
    file = await openHdf5(local.path, source);
    const layout = chooseArrays(file.arrays, job, source);
    const f = file;
    return { file: f, local, layout, close: async (reusable) => (f.close(), local.dispose(reusable)) };
  } catch (err) {
    file?.close();
    // An object that cannot be read as asked is not kept for the next partition.
    await local.dispose(false);
    throw err;
  }
}

// One partition per file, when no partition size asks to split them.
const planFiles = (objects: readonly ObjectInfo[]): PlannedPartition[] =>
  objects.map((o) => ({ id: partitionId(o.key), key: o.key, bytes: o.size }));

/**
 * HDF5 files (Galaxy10 DECaLS, the Multimodal Universe's HEALPix folders, survey cutout sets), read with
 * h5wasm (libhdf5). Columns are the job's `datasets` (under `group`), else every numeric dataset whose
 * first dimension is the most common one; `idColumn` names a dataset of ids. Each file is a partition,
 * or row ranges of `partitionItems` / about `partitionBytes` rows, rounded up to whole chunks. Batches are
 * hyperslabs of batch rows, so memory stays near a batch; HWC uint8 images go through the image
 * preprocessing when the job asks for any. Objects in S3 are downloaded by ranges to a temporary file,
 * which the next partition of the same object in this process reads again (see `localFile`).
 *
 * @example await runJob(parseJobSpec({ input: 'Galaxy10_DECals.h5', model: 'm.onnx', output: 'out', datasets: { image: 'images' }, label: 'ans' }))
 */
export const hdf5Files: StoreSourceKind<ArraySourceFields> = Object.freeze({
  name: 'hdf5',
  accepts: isHdf5Key,
  plan: planFiles,
  async planWithStore(store: Store, objects: readonly ObjectInfo[], job: ArraySourceFields) {
    // Without a partition size each file is one partition: nothing needs opening (or downloading).
    if (job.partitionItems === undefined && job.partitionBytes === undefined) return planFiles(objects);
    const out: PlannedPartition[] = [];
    for (const o of objects) {
      const opened = await openObject(store, o.key, job);
      try {
        // Whole chunks of the first column, so no chunk is inflated by two partitions.
        const align = opened.layout.columns[0]?.array.chunkRows ?? 1;
        out.push(...rowPartitions(o, opened.layout.items, job, align));
      } finally {
        await opened.close();
      }
    }
    return out;
  },
  async open(store: Store, partition: PlannedPartition, job: ArraySourceFields): Promise<PartitionStream> {
    const t0 = performance.now();
    const opened = await openObject(store, partition.key, job);
    const stats = { read: (performance.now() - t0) / 1000, decode: 0, bytes: opened.local.bytes };
    const [first, last] = partition.rows ?? [0, opened.layout.items];
    try {
      return arrayStream({
        layout: opened.layout,
        read: async (array, start, end) => opened.file.read(array, start, end),
        name: partition.key,
        first,
        last,
        job,
        source: store.describe(partition.key),
        stats,
        // A download counts the bytes fetched; a file read in place (or a kept copy), the rows read.
        countRows: !opened.local.copied,
        close: opened.close,
      });
    } catch (err) {
      await opened.close();
      throw err;
    }
  },
});
