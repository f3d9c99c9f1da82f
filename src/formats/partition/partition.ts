// `cai partition`: the seeds' split step. Any input CAI reads -> partitions of a target size or item count,
// named 1, 2, ... (safetensors, CAI-compatible .pt, or HDF5), plus manifest.json. Memory stays bounded: rows
// are read in chunks, at most one partition is held, and each partition is written atomically.
import { performance } from 'node:perf_hooks';
import { CaiError, describeError, ErrorCodes } from '../../errors.js';
import type { JobSpec } from '../../job/spec.js';
import { isDeadTemporary } from '../../storage/file-store.js';
import { openParent, openStore } from '../../storage/open.js';
import type { ObjectInfo, Store } from '../../storage/store.js';
import { allocate, bytesPerElement, type DTypeArrays } from '../../tensor/dtype.js';
import { numel, type Tensor } from '../../tensor/tensor.js';
import { sliceColumns, type ColumnSet } from '../columns.js';
import { encodeSafetensorsRows } from './safetensors-rows.js';
import { extensionOf } from '../registry.js';
import { sourceByName, sourceForKey } from '../sources.js';
import { encodePtDataset } from '../writers/pt-writer.js';
import { encodeHdf5, HDF5_WRITTEN_DTYPES } from '../hdf5/h5-writer.js';
import {
  readAhead,
  sourceChunks,
  tensorChunks,
  type RowChunk,
  type SkippedItem,
  type SourceRange,
} from './rows.js';
import { openTensorRows, type ColumnInfo } from './tensor-ranges.js';

/** Output formats of `cai partition`. */
export const PARTITION_FORMATS = ['safetensors', 'pt', 'hdf5'] as const;

/** The file extension of each partition format. */
const EXTENSIONS: Readonly<Record<(typeof PARTITION_FORMATS)[number], string>> = Object.freeze({
  safetensors: 'safetensors',
  pt: 'pt',
  hdf5: 'h5',
});

/** What to partition, into what. */
export interface PartitionOptions {
  /** A file (`big.npy`, `s3://b/x.safetensors`) or a folder / prefix of files. */
  readonly input: string;
  /** Folder or S3 prefix for `1.safetensors`, `2.safetensors`, ... and `manifest.json`. */
  readonly output: string;
  /** Target bytes of tensor data per partition; the last partition holds the rest. */
  readonly size?: number;
  /** Items per partition (wins over `size`). */
  readonly items?: number;
  readonly format?: (typeof PARTITION_FORMATS)[number];
  /** Source options (format, preset, fitsBands, imageShape...) and `s3Endpoint`, as in a job. */
  readonly job?: Partial<JobSpec>;
  /** Replace partitions of an earlier run in `output`. */
  readonly overwrite?: boolean;
  /** Bytes read per ranged request of a tensor file (default 16 MB); smaller bounds memory further. */
  readonly chunkBytes?: number;
  /** Called after each partition is written. */
  readonly onPartition?: (p: ManifestPartition) => void;
}

/** One written partition, as the manifest lists it. */
export interface ManifestPartition {
  readonly id: string;
  readonly key: string;
  readonly items: number;
  /** Bytes of the written object. */
  readonly bytes: number;
  /** Position of its first item in the whole input. */
  readonly first: number;
  /** The input rows it holds, in order: `[start, end)` of each object. */
  readonly sources: readonly SourceRange[];
  /** Ids of its items, when the input's items are objects or have ids. */
  readonly ids?: readonly string[];
}

/** `manifest.json`. */
export interface PartitionManifest {
  readonly version: 1;
  readonly input: string;
  readonly format: (typeof PARTITION_FORMATS)[number];
  readonly items_per_partition: number;
  readonly columns: readonly ColumnInfo[];
  readonly items: number;
  readonly bytes: number;
  readonly partitions: readonly ManifestPartition[];
  readonly skipped: readonly SkippedItem[];
  /** Inputs that had to be read whole (no ranged reads for their format). */
  readonly read_whole: readonly string[];
  readonly seconds: number;
}

function rowBytes(columns: readonly ColumnInfo[]): number {
  return columns.reduce((s, c) => s + numel(c.rowShape) * bytesPerElement(c.dtype), 0);
}

function infoOf(set: ColumnSet): ColumnInfo[] {
  return set.columns.map((c, i) => ({ name: set.names[i], dtype: c.dtype, rowShape: c.shape.slice(1) }));
}

function sameLayout(a: readonly ColumnInfo[], b: readonly ColumnInfo[]): boolean {
  return (
    a.length === b.length &&
    a.every(
      (c, i) =>
        c.name === b[i].name &&
        c.dtype === b[i].dtype &&
        c.rowShape.length === b[i].rowShape.length &&
        c.rowShape.every((d, k) => d === b[i].rowShape[k]),
    )
  );
}

const describeLayout = (cols: readonly ColumnInfo[]) =>
  cols.map((c) => `"${c.name}" ${c.dtype} [${c.rowShape.join(', ')}]`).join(', ');

/** Rows waiting to be written, as pieces; `take(n)` cuts exactly n rows off the front. */
class Pending {
  private pieces: RowChunk[] = [];
  count = 0;

  push(chunk: RowChunk): void {
    this.pieces.push(chunk);
    this.count += chunk.set.items;
  }

  /** The first `n` rows as the pieces they are in (cut where a piece straddles `n`). */
  take(n: number): RowChunk[] {
    const parts: RowChunk[] = [];
    let need = n;
    while (need > 0) {
      const head = this.pieces[0];
      if (head.set.items <= need) {
        parts.push(head);
        this.pieces.shift();
        need -= head.set.items;
      } else {
        parts.push(cut(head, 0, need));
        this.pieces[0] = cut(head, need, head.set.items);
        need = 0;
      }
    }
    this.count -= n;
    return parts;
  }
}

function cut(chunk: RowChunk, a: number, b: number): RowChunk {
  // Source ranges are per row in order: walk them to find the ones rows [a, b) came from.
  const from: SourceRange[] = [];
  let at = 0;
  for (const r of chunk.from) {
    const len = r.end - r.start;
    const s = Math.max(a, at);
    const e = Math.min(b, at + len);
    if (s < e) from.push({ key: r.key, start: r.start + (s - at), end: r.start + (e - at) });
    at += len;
  }
  return { set: sliceColumns(chunk.set, a, b), from, ids: chunk.ids?.slice(a, b) };
}

/** The columns of consecutive pieces joined into one set (one copy). */
function joinColumns(parts: readonly RowChunk[]): ColumnSet {
  if (parts.length === 1) return parts[0].set;
  const items = parts.reduce((s, p) => s + p.set.items, 0);
  const first = parts[0].set;
  const columns: Tensor[] = first.columns.map((c, k) => {
    const data = allocate(c.dtype, items * numel(c.shape.slice(1)));
    let at = 0;
    for (const p of parts) {
      const src = p.set.columns[k].data as DTypeArrays['float64'];
      (data as DTypeArrays['float64']).set(src, at);
      at += src.length;
    }
    return { dtype: c.dtype, shape: [items, ...c.shape.slice(1)], data };
  });
  return { names: first.names, columns, items };
}

/** Where consecutive pieces came from, adjacent ranges of one object merged, and their ids. */
function provenance(parts: readonly RowChunk[]): { from: SourceRange[]; ids?: string[] } {
  const from: SourceRange[] = [];
  for (const p of parts) {
    for (const r of p.from) {
      const last = from[from.length - 1];
      if (last && last.key === r.key && last.end === r.start) from[from.length - 1] = { ...last, end: r.end };
      else from.push(r);
    }
  }
  const ids = parts.every((p) => p.ids) ? parts.flatMap((p) => p.ids as string[]) : undefined;
  return { from, ids };
}

/**
 * Opens the header of every `.npy` and `.safetensors` input (a few bytes each) before anything is
 * written, so a truncated file or one of another layout is reported with nothing written at all.
 */
async function checkTensorInputs(store: Store, inputs: readonly ObjectInfo[]): Promise<void> {
  let first: { key: string; columns: readonly ColumnInfo[] } | undefined;
  for (const o of inputs) {
    if (!['.npy', '.safetensors'].includes(extensionOf(o.key))) continue;
    const t = await openTensorRows(store, o.key, o.size);
    if (!t.ranged) continue;
    if (first && !sameLayout(first.columns, t.columns)) {
      throw new CaiError(
        ErrorCodes.corrupt,
        store.describe(o.key),
        `has columns ${describeLayout(t.columns)} but ${first.key} has ${describeLayout(first.columns)}; partition inputs of one layout together`,
      );
    }
    first ??= { key: o.key, columns: t.columns };
  }
}

/**
 * Keys of an earlier run in the output: its manifest and partition files (`1.safetensors`, `2.pt`,
 * `3.h5`...). The temporary files of a run that was killed while it wrote (`.cai-tmp-<pid>-...`, whose
 * process is gone) are removed: a partition is complete under its name, or not there.
 */
async function existingOutput(output: Store): Promise<string[]> {
  const keys: string[] = [];
  const stale: string[] = [];
  try {
    for await (const o of output.list()) {
      if (o.key === 'manifest.json' || /^\d+\.(safetensors|pt|h5)$/.test(o.key)) keys.push(o.key);
      if (isDeadTemporary(o.key)) stale.push(o.key);
    }
    for (const key of stale) await output.delete(key);
  } catch (err) {
    if (!(err instanceof CaiError && err.code === ErrorCodes.notFound)) throw err;
  }
  return keys.sort((a, b) => a.length - b.length || (a < b ? -1 : a > b ? 1 : 0));
}

/** The error that stopped a run, saying which partitions it had written (they are complete and kept). */
function partialFailure(err: unknown, written: readonly ManifestPartition[], output: Store): unknown {
  if (written.length === 0) return err;
  const note = `; partitions ${written[0].key} to ${written[written.length - 1].key} were written to ${output.describe('')} before this (no manifest.json): fix the input and run again with --overwrite`;
  if (err instanceof CaiError)
    return new CaiError(err.code, err.object, `${err.message.slice(err.object.length + 2)}${note}`, {
      cause: err,
    });
  const { code, message } = describeError(err);
  return new CaiError(code, output.describe(''), `${message}${note}`, { cause: err });
}

async function resolveInput(
  uri: string,
  job: Partial<JobSpec>,
): Promise<{ store: Store; objects: ObjectInfo[]; single: boolean }> {
  const storeOptions = { s3Endpoint: job.s3Endpoint };
  const [parent, key] = await openParent(uri, storeOptions);
  const single = key ? await parent.head(key).catch(() => undefined) : undefined;
  if (single) return { store: parent, objects: [single], single: true };
  const store = await openStore(uri, storeOptions);
  const objects: ObjectInfo[] = [];
  for await (const o of store.list()) {
    if (!/(^|\/)\./.test(o.key)) objects.push(o);
  }
  return { store, objects, single: false };
}

/**
 * Repartitions any input CAI reads into partitions of `items` items, or of about `size` bytes of tensor
 * data, named `1`, `2`, ... in safetensors (default), `.pt` (`torch.save(TensorDataset(...))`, loadable
 * with `torch.load`) or HDF5 (`1.h5`: a dataset per column, readable with h5py), and writes `manifest.json`
 * last. Column names and dtypes are kept (HDF5 writes float16 as float32 and bool as uint8). `.npy` and
 * `.safetensors` inputs are read by ranges, so memory stays near two partitions whatever the input size;
 * `.pt` and `.npz` inputs are read one whole file at a time.
 *
 * @example const m = await partitionDataset({ input: 'images.npy', output: 'parts/', size: 25 * 2 ** 20 });
 */
export async function partitionDataset(options: PartitionOptions): Promise<PartitionManifest> {
  const t0 = performance.now();
  const job = options.job ?? {};
  const format = options.format ?? 'safetensors';
  if (options.items === undefined && options.size === undefined) {
    throw new CaiError(
      ErrorCodes.option,
      'partition',
      'give a target with --size (e.g. 25MB) or --items (e.g. 1278)',
    );
  }
  const output = await openStore(options.output, { s3Endpoint: job.s3Endpoint });
  // Partitions of an earlier run, finished (with a manifest) or not: never replaced without --overwrite.
  const earlier = await existingOutput(output);
  if (earlier.length && !options.overwrite) {
    throw new CaiError(
      ErrorCodes.option,
      output.describe(''),
      `already holds partitions (${earlier.slice(0, 3).join(', ')}${earlier.length > 3 ? ', ...' : ''}); choose another output or pass --overwrite to replace them`,
    );
  }
  const { store, objects, single } = await resolveInput(options.input, job);
  const kinds = new Map<string, ObjectInfo[]>();
  const forced = job.format ? sourceByName(job.format) : undefined;
  // An output inside the input folder: its own (earlier) partitions are not input.
  const outside = `${output.describe('').replace(/\/+$/, '')}/`;
  for (const o of objects) {
    if (store.describe(o.key).startsWith(outside)) continue;
    const kind = forced ? (forced.accepts(o.key) ? forced : undefined) : sourceForKey(o.key);
    if (!kind) continue;
    kinds.set(kind.name, [...(kinds.get(kind.name) ?? []), o]);
  }
  if (kinds.size === 0 && single) {
    const key = objects[0].key;
    throw new CaiError(
      ErrorCodes.unsupported,
      store.describe(key),
      `${forced ? `is not read by --input-format ${forced.name}` : `has an extension CAI does not read (${extensionOf(key) || 'none'})`}; give a .npy, .safetensors, .pt, .npz, an image, a FITS, Parquet or HDF5 file, or a folder of them (or a Zarr store)`,
    );
  }
  if (kinds.size !== 1) {
    throw new CaiError(
      kinds.size ? ErrorCodes.option : ErrorCodes.notFound,
      store.describe(''),
      kinds.size
        ? `mixes kinds of files (${[...kinds.entries()].map(([k, o]) => `${o.length} ${k}`).join(', ')}); choose one with --input-format`
        : `holds nothing CAI reads (${objects.length} object(s)); give .npy, .safetensors, .pt, .npz, images, FITS, Parquet, HDF5 or a Zarr store`,
    );
  }
  const [[kindName, inputs]] = [...kinds.entries()];
  // The earlier run's manifest goes first, so an output this run leaves half-written is never taken
  // for a finished one; its partitions are replaced one by one, and the extra ones removed at the end.
  if (earlier.includes('manifest.json')) await output.delete('manifest.json');
  if (kindName === 'tensor') await checkTensorInputs(store, inputs);
  const skipped: SkippedItem[] = [];
  const readWhole: string[] = [];
  const chunks =
    kindName === 'tensor'
      ? tensorChunks(
          store,
          inputs,
          (key, ranged) => (ranged ? undefined : readWhole.push(key)),
          options.chunkBytes,
        )
      : sourceChunks(sourceByName(kindName), store, inputs, job as JobSpec, (s) => skipped.push(s));

  const ext = EXTENSIONS[format];
  const partitions: ManifestPartition[] = [];
  const pending = new Pending();
  let columns: ColumnInfo[] | undefined;
  let firstKey = '';
  let perPartition = options.items ?? 0;
  let written = 0;
  let bytes = 0;
  const flush = async (n: number) => {
    const parts = pending.take(n);
    const chunk = provenance(parts);
    const id = String(partitions.length + 1);
    const key = `${id}.${ext}`;
    const body =
      format === 'pt'
        ? encodePtDataset(joinColumns(parts).columns, id)
        : format === 'hdf5'
          ? await encodeHdf5(
              joinColumns(parts).columns.map((tensor, k) => ({ name: parts[0].set.names[k], tensor })),
              { input: options.input, first: String(written) },
            )
          : encodeSafetensorsRows(
              parts.map((p) => p.set),
              { input: options.input, first: String(written) },
            );
    await output.put(key, body);
    const entry: ManifestPartition = {
      id,
      key,
      items: n,
      bytes: body.byteLength,
      first: written,
      sources: chunk.from,
      ...(chunk.ids ? { ids: chunk.ids } : {}),
    };
    partitions.push(entry);
    written += n;
    bytes += body.byteLength;
    options.onPartition?.(entry);
  };
  try {
    // The next chunk is read while this one's partition is encoded and written.
    for await (const chunk of readAhead(chunks)) {
      const info = infoOf(chunk.set);
      if (!columns) {
        columns = info;
        firstKey = chunk.from[0]?.key ?? chunk.ids?.[0] ?? '';
        perPartition ||= Math.max(1, Math.floor((options.size as number) / Math.max(1, rowBytes(columns))));
      } else if (!sameLayout(columns, info)) {
        const where = chunk.from[0]?.key ?? chunk.ids?.[0] ?? 'an item';
        throw new CaiError(
          ErrorCodes.corrupt,
          where,
          `has columns ${describeLayout(info)} but ${firstKey} has ${describeLayout(columns)}; partition inputs of one layout together`,
        );
      }
      pending.push(chunk);
      while (pending.count >= perPartition) await flush(perPartition);
    }
    if (pending.count > 0) await flush(pending.count);
  } catch (err) {
    throw partialFailure(err, partitions, output);
  }
  const kept = new Set(partitions.map((p) => p.key));
  for (const key of earlier) if (key !== 'manifest.json' && !kept.has(key)) await output.delete(key);
  if (!columns) {
    throw new CaiError(
      ErrorCodes.corrupt,
      store.describe(''),
      `no item could be read${skipped.length ? ` (${skipped.length} failed, e.g. ${skipped[0].id}: ${skipped[0].reason})` : ''}`,
    );
  }
  const manifest: PartitionManifest = {
    version: 1,
    input: options.input,
    format,
    items_per_partition: perPartition,
    // As written: HDF5 partitions hold float16 as float32 and bool as uint8.
    columns:
      format === 'hdf5' ? columns.map((c) => ({ ...c, dtype: HDF5_WRITTEN_DTYPES[c.dtype] })) : columns,
    items: written,
    bytes,
    partitions,
    skipped,
    read_whole: readWhole,
    seconds: (performance.now() - t0) / 1000,
  };
  await output.put('manifest.json', `${JSON.stringify(manifest, null, 1)}\n`);
  return manifest;
}
