// A partition whose items are whole objects (a folder of images, FITS cutouts, one FITS file per band):
// the plan lists the keys, and each batch fetches and decodes only its own objects.
import { performance } from 'node:perf_hooks';
import { CaiError, ErrorCodes } from '../../errors.js';
import { allocate, bytesPerElement, type DType, type TypedArray } from '../../tensor/dtype.js';
import { numel, type Tensor } from '../../tensor/tensor.js';
import type { Store } from '../../storage/store.js';
import type { ColumnSet } from '../columns.js';
import type { FailedItem, PartitionStream, ReadStats, SourceBatch } from '../source.js';
import { mapSettled, reasonOf } from './map-limit.js';

/** One item made of one or more objects (several for one-file-per-band FITS). */
export interface ObjectItem {
  /** The stable id written into the predictions: the key, or the `{id}` of a band group. */
  readonly id: string;
  readonly keys: readonly string[];
}

/** One decoded item: a row of a column, without the items dimension. */
export interface ItemRow {
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly data: TypedArray;
}

/** How to read the items of one partition. */
export interface ObjectItemsOptions {
  /** Name of the one column the rows form (`image`). */
  readonly column: string;
  /** Decodes one item from its objects' bytes; anything it throws makes a failed item. */
  readonly decode: (bytes: readonly Uint8Array[], item: ObjectItem) => Promise<ItemRow>;
  /** Objects fetched at once (object stores reward many requests in flight). */
  readonly fetchConcurrency?: number;
  /** Items decoded at once (sharp decodes on libuv's pool of 4 threads). */
  readonly decodeConcurrency?: number;
  /** The row shape every item must have, when known before decoding; else the first item's. */
  readonly shape?: readonly number[];
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/**
 * Opens a partition of whole-object items. Nothing is read at open: each batch fetches its objects
 * (many at a time), then decodes them (a few at a time), so the worker's prefetch of batch i+1 overlaps
 * inference on batch i. An item that cannot be fetched or decoded, or whose row does not match the shape
 * of the others, becomes a failed item with its id and reason.
 *
 * @example
 * const stream = openObjectItems(store, items, { column: 'image', decode });
 * for await (const b of stream.batches(64)) ...
 */
export function openObjectItems(
  store: Store,
  items: readonly ObjectItem[],
  options: ObjectItemsOptions,
): PartitionStream {
  const stats = { read: 0, decode: 0, bytes: 0 };
  let shape = options.shape;
  let dtype: DType | undefined;
  const fetchLimit = options.fetchConcurrency ?? 16;
  const decodeLimit = options.decodeConcurrency ?? 4;

  const readBatch = async (start: number, end: number): Promise<SourceBatch> => {
    const slice = items.slice(start, end);
    const t0 = performance.now();
    const fetched = await mapSettled(slice, fetchLimit, (item) =>
      Promise.all(item.keys.map((k) => store.get(k))),
    );
    const t1 = performance.now();
    for (const f of fetched) if (f.ok) for (const b of f.value) stats.bytes += b.byteLength;
    const decoded = await mapSettled(slice, decodeLimit, (item, i) => {
      const f = fetched[i];
      if (!f.ok) throw f.error;
      return options.decode(f.value, item);
    });
    const failed: FailedItem[] = [];
    const good: { index: number; id: string; row: ItemRow }[] = [];
    if (!shape) {
      // The shape the most items of the first batch decode to, not the first item's: one odd image
      // must fail alone wherever it sorts, instead of failing every other item when it comes first.
      const counts = new Map<string, { n: number; row: ItemRow }>();
      for (const d of decoded) {
        if (!d.ok) continue;
        const key = `${d.value.dtype}[${d.value.shape.join(',')}]`;
        const c = counts.get(key);
        if (c) c.n++;
        else counts.set(key, { n: 1, row: d.value });
      }
      let best: { n: number; row: ItemRow } | undefined;
      for (const c of counts.values()) if (!best || c.n > best.n) best = c;
      if (best) {
        shape = best.row.shape;
        dtype = best.row.dtype;
      }
    }
    decoded.forEach((d, i) => {
      const item = slice[i];
      if (!d.ok) {
        failed.push({ index: start + i, id: item.id, reason: reasonOf(d.error) });
        return;
      }
      const row = d.value;
      shape ??= row.shape;
      dtype ??= row.dtype;
      if (!sameShape(row.shape, shape) || row.dtype !== dtype) {
        failed.push({
          index: start + i,
          id: item.id,
          reason: `${item.keys.join(', ')}: decodes to ${row.dtype} [${row.shape.join(', ')}] but the other items of this partition are ${dtype} [${shape.join(', ')}]; make every item the same size (e.g. set preprocess.resize and centerCrop)`,
        });
        return;
      }
      good.push({ index: start + i, id: item.id, row });
    });
    const rowSize = shape ? numel(shape) : 0;
    const data = allocate(dtype ?? 'float32', good.length * rowSize);
    good.forEach((g, k) => (data as Float32Array).set(g.row.data as Float32Array, k * rowSize));
    stats.read += (t1 - t0) / 1000;
    stats.decode += (performance.now() - t1) / 1000;
    const column: Tensor = { dtype: dtype ?? 'float32', shape: [good.length, ...(shape ?? [])], data };
    const rows: ColumnSet = { names: [options.column], columns: [column], items: good.length };
    return {
      rows,
      indices: Int32Array.from(good, (g) => g.index),
      ids: good.map((g) => g.id),
      failed,
    };
  };

  return {
    items: items.length,
    hasIds: true,
    stats: (): ReadStats => ({ ...stats }),
    async *batches(batchSize: number): AsyncIterable<SourceBatch> {
      for (let start = 0; start < items.length; start += batchSize) {
        yield await readBatch(start, Math.min(items.length, start + batchSize));
      }
    },
  };
}

/**
 * Checks that a decoded row's data has as many elements as its shape needs (a decoder bug or a lying
 * file would otherwise shift every later row of the batch).
 *
 * @example checkRow(row, 'cutouts/7.fits')
 */
export function checkRow(row: ItemRow, source: string): ItemRow {
  if (row.data.length !== numel(row.shape)) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `decoded ${row.data.length} values for shape [${row.shape.join(', ')}] (${numel(row.shape) * bytesPerElement(row.dtype)} bytes expected)`,
    );
  }
  return row;
}
