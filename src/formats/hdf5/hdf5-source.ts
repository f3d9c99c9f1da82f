import { performance } from 'node:perf_hooks';
import { uriScheme } from '../../storage/open.js';
import type { ObjectInfo, Store } from '../../storage/store.js';
import { ARRAY_SOURCE_OPTIONS, arrayStream, type ArraySourceFields } from '../arrays/batches.js';
import { chooseArrays, type ArrayLayout } from '../arrays/layout.js';
import { rowPartitions } from '../arrays/row-partitions.js';
import { partitionId, type PlannedPartition } from '../planned-partition.js';
import type { PartitionStream, StoreSourceKind } from '../source.js';
import { openRemoteHdf5, openThreadedHdf5, type Hdf5Reader } from './remote-file.js';

/** Name endings read as HDF5 (lower case). */
export const HDF5_SUFFIXES = Object.freeze(['.h5', '.hdf5', '.hdf', '.he5']);

/** Whether a key names an HDF5 file. @example isHdf5Key('healpix=11/001-of-001.hdf5') // true */
export function isHdf5Key(key: string): boolean {
  const k = key.toLowerCase();
  return HDF5_SUFFIXES.some((s) => k.endsWith(s));
}

/** An HDF5 object opened for reading, and the columns chosen. */
interface Opened {
  readonly file: Hdf5Reader;
  readonly layout: ArrayLayout;
  /** Whether the file is read in place (a local file), rather than fetched by ranges. */
  readonly local: boolean;
}

/**
 * A local file opened in place (libhdf5, on a reading thread, reads what it needs through the file system);
 * an object in a remote store, by byte ranges (see `openRemoteHdf5`): never a copy of the whole object.
 */
async function openLocalOrRemote(
  store: Store,
  key: string,
  o: { size?: number; modified?: number; rows?: readonly [number, number] },
): Promise<Hdf5Reader> {
  if (uriScheme(store.uri) !== 'file') return openRemoteHdf5(store, key, o);
  return openThreadedHdf5(await store.localPath(key), store.describe(key), o);
}

async function openObject(
  store: Store,
  key: string,
  job: ArraySourceFields,
  o: { size?: number; modified?: number; rows?: readonly [number, number] } = {},
): Promise<Opened> {
  const file = await openLocalOrRemote(store, key, o);
  try {
    const layout = chooseArrays(file.arrays, job, store.describe(key));
    return { file, layout, local: uriScheme(store.uri) === 'file' };
  } catch (err) {
    await file.close();
    throw err;
  }
}

// One partition per file, when no partition size asks to split them.
const planFiles = (objects: readonly ObjectInfo[]): PlannedPartition[] =>
  objects.map((o) => ({ id: partitionId(o.key), key: o.key, bytes: o.size }));

/**
 * HDF5 files (Galaxy10 DECaLS, the Multimodal Universe's HEALPix folders, survey cutout sets), read
 * through CAI's own chunk index (h5wasm, libhdf5, for what it does not cover). Columns are the job's
 * `datasets` (under `group`), else every numeric dataset whose first dimension is the most common one; `idColumn` names a dataset of ids. Each file is a partition,
 * or row ranges of `partitionItems` / about `partitionBytes` rows, rounded up to whole chunks. Batches are
 * hyperslabs of batch rows, so memory stays near a batch; HWC uint8 images go through the image
 * preprocessing when the job asks for any. Objects in S3 are read by byte ranges, never copied whole:
 * planning reads their metadata, a partition the chunks of its rows (see `openRemoteHdf5`).
 *
 * @example await runJob(parseJobSpec({ input: 'Galaxy10_DECals.h5', model: 'm.onnx', output: 'out', datasets: { image: 'images' }, label: 'ans' }))
 */
export const hdf5Files: StoreSourceKind<ArraySourceFields> = Object.freeze({
  name: 'hdf5',
  options: ARRAY_SOURCE_OPTIONS,
  accepts: isHdf5Key,
  plan: planFiles,
  async planWithStore(store: Store, objects: readonly ObjectInfo[], job: ArraySourceFields) {
    // Without a partition size each file is one partition: nothing needs opening.
    if (job.partitionItems === undefined && job.partitionBytes === undefined) return planFiles(objects);
    const out: PlannedPartition[] = [];
    for (const o of objects) {
      // Only metadata is read: the superblock and object headers.
      const opened = await openObject(store, o.key, job, { size: o.size, modified: o.modified });
      try {
        // Whole chunks of the first column, so no chunk is inflated by two partitions.
        const align = opened.layout.columns[0]?.array.chunkRows ?? 1;
        out.push(...rowPartitions(o, opened.layout.items, job, align));
      } finally {
        await opened.file.close();
      }
    }
    return out;
  },
  async open(store: Store, partition: PlannedPartition, job: ArraySourceFields): Promise<PartitionStream> {
    const t0 = performance.now();
    const opened = await openObject(store, partition.key, job, { rows: partition.rows });
    const { file } = opened;
    const stats = { read: (performance.now() - t0) / 1000, decode: 0, bytes: file.fetched().bytes };
    const [first, last] = partition.rows ?? [0, opened.layout.items];
    try {
      return arrayStream({
        layout: opened.layout,
        read: async (array, start, end) => {
          const rows = await file.read(array, start, end);
          if (!opened.local) stats.bytes = file.fetched().bytes;
          return rows;
        },
        name: partition.key,
        first,
        last,
        job,
        source: store.describe(partition.key),
        stats,
        // Fetched by ranges: the bytes fetched; a file read in place: the rows read.
        countRows: opened.local,
        close: () => file.close(),
      });
    } catch (err) {
      await file.close();
      throw err;
    }
  },
});
