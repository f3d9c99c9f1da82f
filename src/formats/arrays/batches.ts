// Rows of chosen arrays -> source batches: HWC uint8 images through the image preprocessing, the NaN
// policy per item and column (a NaN item is a failed item naming the file and dataset), ids carried.
import { performance } from 'node:perf_hooks';
import { CaiError, ErrorCodes } from '../../errors.js';
import { allocate, type DType, type TypedArray } from '../../tensor/dtype.js';
import { numel, type Tensor } from '../../tensor/tensor.js';
import { decodeImage, toRow } from '../image/decode.js';
import { resolvePreprocess, type PreprocessOptions, type ResolvedPreprocess } from '../image/preprocess.js';
import { mapSettled, reasonOf } from '../partition/map-limit.js';
import { applyNanPolicy, type NanPolicy } from '../partition/nan.js';
import type { CarriedValue, FailedItem, PartitionStream, SourceBatch, SourceOption } from '../source.js';
import type { ArrayInfo, ArrayJobFields, ArrayLayout } from './layout.js';

/** Every job field array sources read. */
export interface ArraySourceFields extends ArrayJobFields {
  readonly preset?: string;
  readonly preprocess?: PreprocessOptions;
  readonly nan?: NanPolicy;
  readonly partitionItems?: number;
  readonly partitionBytes?: number;
}

/** The source options HDF5 and Zarr read (see `checkSourceOptions`). */
export const ARRAY_SOURCE_OPTIONS: readonly SourceOption[] = Object.freeze([
  'datasets',
  'group',
  'idColumn',
  'carry',
  'imageColumn',
  'preset',
  'preprocess',
  'partitionItems',
  'partitionBytes',
]);

/** Reads rows `[start, end)` of one array: numbers as CAI's typed array, strings as strings. */
export type ReadRows = (array: ArrayInfo, start: number, end: number) => Promise<TypedArray | string[]>;

/** Whether an array holds images preprocessing can take: uint8 items x height x width x 1, 3 or 4. */
export function isImageArray(a: ArrayInfo): boolean {
  return a.dtype === 'uint8' && a.shape.length === 4 && [1, 3, 4].includes(a.shape[3]);
}

/** The arrays to preprocess as images, or a clear error when the named one cannot be. */
function imageArrays(layout: ArrayLayout, job: ArraySourceFields, source: string): Set<string> {
  const named = job.imageColumn;
  if (job.preset === undefined && job.preprocess === undefined) {
    if (named === undefined) return new Set();
    throw new CaiError(
      ErrorCodes.option,
      source,
      `--image-column "${named}" names the array to preprocess as images, and no preprocessing is asked; add --preset or the preprocessing flags (--resize, --mean, ...), or remove --image-column`,
    );
  }
  const out = layout.columns.filter((c) => (named ? c.name === named : isImageArray(c.array)));
  if (named && (out.length === 0 || !isImageArray(out[0].array))) {
    const a = out[0]?.array;
    throw new CaiError(
      ErrorCodes.option,
      source,
      a
        ? `dataset "/${a.path}" is ${a.stored} [${a.shape.join(', ')}]; preprocessing takes uint8 images of items x height x width x channels (1, 3 or 4)`
        : `imageColumn "${named}" is not one of the columns (${layout.columns.map((c) => c.name).join(', ')})`,
    );
  }
  if (out.length === 0) {
    throw new CaiError(
      ErrorCodes.option,
      source,
      `image preprocessing (--preset or its flags) is asked, and no column holds images (uint8 items x height x width x 1, 3 or 4 channels); columns: ${layout.columns.map((c) => `${c.name} ${c.array.stored} [${c.array.shape.join(', ')}]`).join(', ')}; remove the preprocessing flags, or choose the images with --datasets`,
    );
  }
  return new Set(out.map((c) => c.name));
}

/**
 * A partition stream over rows `[first, last)` of a container's chosen arrays. Each batch reads only
 * its rows of each array (`read`), so memory stays near a batch whatever the container's size.
 * Ids are the id array's values, else `name#row`. `close` runs once, after the last batch or on `release`.
 *
 * @example return arrayStream({ layout, read, name: 'galaxy10.h5', first: 0, last: 64, job, source, stats });
 */
export function arrayStream(o: {
  readonly layout: ArrayLayout;
  readonly read: ReadRows;
  /** Prefix of default ids (`galaxy10.h5` -> `galaxy10.h5#12`). */
  readonly name: string;
  readonly first: number;
  readonly last: number;
  readonly job: ArraySourceFields;
  /** The container, for messages. */
  readonly source: string;
  readonly stats: { read: number; decode: number; bytes: number };
  /** Whether `stats.bytes` counts the rows read (false when the source counts fetched bytes itself). */
  readonly countRows?: boolean;
  readonly close?: () => void | Promise<void>;
  /** Takes back rows `read` returned, once their batch is released (see `SourceBatch.release`). */
  readonly recycle?: (rows: TypedArray) => void;
}): PartitionStream {
  const { layout, job, source, stats } = o;
  if (o.first < 0 || o.last > layout.items || o.first > o.last) {
    throw new CaiError(
      ErrorCodes.option,
      source,
      `rows [${o.first}, ${o.last}) are outside its ${layout.items} items; plan the job again`,
    );
  }
  const images = imageArrays(layout, job, source);
  const preprocess = images.size ? resolvePreprocess(job) : undefined;
  let closing: Promise<void> | undefined;
  const close = () => (closing ??= Promise.resolve(o.close?.()));
  return {
    items: o.last - o.first,
    hasIds: true,
    ...(layout.carry ? { carries: layout.carry.map((c) => c.name) } : {}),
    stats: () => ({ ...stats }),
    // A stream given up before its last batch still lets go of its file.
    release: () => void close().catch(() => undefined),
    async *batches(batchSize: number): AsyncIterable<SourceBatch> {
      try {
        for (let a = o.first; a < o.last; a += batchSize) {
          const b = Math.min(o.last, a + batchSize);
          const tr = performance.now();
          const raw: (TypedArray | string[])[] = [];
          for (const c of layout.columns) raw.push(await o.read(c.array, a, b));
          const idValues = layout.id ? await o.read(layout.id, a, b) : undefined;
          const carried: Record<string, CarriedValue[]> = {};
          // Ids and carried values are copied into strings and numbers: their rows go back at once.
          const done = (r: TypedArray | string[] | undefined) => {
            if (r && !Array.isArray(r)) o.recycle?.(r);
          };
          for (const c of layout.carry ?? []) {
            const values = await o.read(c.array, a, b);
            carried[c.name] = carriedValues(values);
            done(values);
          }
          const td = performance.now();
          stats.read += (td - tr) / 1000;
          if (o.countRows !== false)
            stats.bytes += raw.reduce((s, r) => s + (Array.isArray(r) ? 0 : r.byteLength), 0);
          const batch = await assemble(layout, raw, idValues, a, b, o, images, preprocess, carried);
          done(idValues);
          stats.decode += (performance.now() - td) / 1000;
          const recycle = o.recycle;
          if (!recycle) {
            yield batch;
            continue;
          }
          let released = false;
          yield {
            ...batch,
            release: () => {
              if (released) return;
              released = true;
              for (const r of raw) if (!Array.isArray(r)) recycle(r);
            },
          };
        }
      } finally {
        await close();
      }
    },
  };
}

async function assemble(
  layout: ArrayLayout,
  raw: readonly (TypedArray | string[])[],
  idValues: TypedArray | string[] | undefined,
  a: number,
  b: number,
  o: { name: string; first: number; job: ArraySourceFields; source: string },
  images: ReadonlySet<string>,
  preprocess: ResolvedPreprocess | undefined,
  carried: Readonly<Record<string, readonly CarriedValue[]>>,
): Promise<SourceBatch> {
  const n = b - a;
  const ids = Array.from({ length: n }, (_, i) =>
    idValues ? String((idValues as ArrayLike<unknown>)[i]) : `${o.name}#${a + i}`,
  );
  const bad = new Map<number, string>();
  const columns: Tensor[] = [];
  for (let k = 0; k < layout.columns.length; k++) {
    const { name, array } = layout.columns[k];
    const data = raw[k] as TypedArray;
    const rowShape = array.shape.slice(1);
    const per = numel(rowShape);
    if (images.has(name) && preprocess) {
      const [h, w, c] = rowShape;
      const rows = await mapSettled(ids, 4, (id, i) =>
        decodeImage(
          { data: (data as Uint8Array).subarray(i * per, (i + 1) * per), height: h, width: w, channels: c },
          preprocess,
          `${id} dataset "/${array.path}"`,
        ).then((img) => toRow(img, preprocess)),
      );
      const good = rows.find((r) => r.ok);
      const shape = good?.ok ? good.value.shape : [];
      const dtype: DType = good?.ok ? good.value.dtype : 'float32';
      const size = numel(shape);
      const out = allocate(dtype, n * size);
      rows.forEach((r, i) => {
        if (r.ok) (out as Float64Array).set(r.value.data as Float64Array, i * size);
        else bad.set(i, reasonOf(r.error));
      });
      columns.push({ dtype, shape: [n, ...shape], data: out });
      continue;
    }
    if (o.job.nan !== 'keep' && (data instanceof Float32Array || data instanceof Float64Array)) {
      for (let i = 0; i < n; i++) {
        if (bad.has(i)) continue;
        try {
          applyNanPolicy(
            data.subarray(i * per, (i + 1) * per),
            o.job.nan,
            `${o.source} dataset "/${array.path}" item ${ids[i]} (row ${a + i})`,
          );
        } catch (err) {
          bad.set(i, reasonOf(err));
        }
      }
    }
    columns.push({ dtype: array.dtype as DType, shape: [n, ...rowShape], data });
  }
  const failed: FailedItem[] = [...bad.entries()]
    .sort((x, y) => x[0] - y[0])
    .map(([i, reason]) => ({ index: a + i - o.first, id: ids[i], reason }));
  const keep = Array.from({ length: n }, (_, i) => i).filter((i) => !bad.has(i));
  const kept = keep.length === n ? columns : columns.map((t) => pick(t, keep));
  return {
    rows: { names: layout.columns.map((c) => c.name), columns: kept, items: keep.length },
    indices: Int32Array.from(keep, (i) => a + i - o.first),
    ids: keep.map((i) => ids[i]),
    failed,
    ...(layout.carry
      ? {
          carried: Object.fromEntries(
            Object.entries(carried).map(([k, v]) => [k, keep.length === n ? v : keep.map((i) => v[i])]),
          ),
        }
      : {}),
  };
}

/** Values read for a carried array as plain numbers or strings (64-bit integers as numbers). */
function carriedValues(values: TypedArray | string[]): CarriedValue[] {
  return Array.from(values as ArrayLike<number | bigint | string>, (v) =>
    typeof v === 'bigint' ? Number(v) : v,
  );
}

/** Rows `keep` of a tensor, copied. */
function pick(t: Tensor, keep: readonly number[]): Tensor {
  const per = numel(t.shape.slice(1));
  const data = allocate(t.dtype, keep.length * per);
  keep.forEach((r, j) =>
    (data as Float64Array).set((t.data as Float64Array).subarray(r * per, (r + 1) * per), j * per),
  );
  return { dtype: t.dtype, shape: [keep.length, ...t.shape.slice(1)], data };
}
