// Files of many cutouts (NAXIS4 = cutouts of bands x height x width, or NAXIS3 when fitsCutouts says the
// last axis counts cutouts): each cutout is an item, read in row ranges so the file is never read whole.
import { performance } from 'node:perf_hooks';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { Store } from '../../storage/store.js';
import { allocate, bytesPerElement, type DType } from '../../tensor/dtype.js';
import type { FailedItem, PartitionStream, SourceBatch } from '../source.js';
import { applyNanPolicy } from '../partition/nan.js';
import { reasonOf } from '../partition/map-limit.js';
import { decodeFitsValues, fitsDType } from './data.js';
import { findImageHdu, type ImageHdu } from './hdu.js';
import type { FitsJobFields } from './items.js';

/** The layout of a cutout file: how many items, and each item's shape. */
export interface CutoutLayout {
  readonly hdu: ImageHdu;
  readonly items: number;
  /** [bands, height, width]. */
  readonly shape: readonly [number, number, number];
  readonly dtype: DType;
}

/**
 * Reads the header of a cutout file (only its header blocks) and decides its layout: NAXIS4 files
 * hold NAXIS4 items of [NAXIS3, NAXIS2, NAXIS1], 3-D files NAXIS3 items of [1, NAXIS2, NAXIS1].
 *
 * @example const layout = await cutoutLayout(store, 'cutouts.fits', size, job);
 */
export async function cutoutLayout(
  store: Store,
  key: string,
  size: number,
  job: FitsJobFields,
): Promise<CutoutLayout> {
  const source = store.describe(key);
  if (/\.gz$/i.test(key)) {
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      'is gzipped, so its cutouts cannot be read in ranges; gunzip it first (or read it as one item without fitsCutouts)',
    );
  }
  const hdu = await findImageHdu((s, e) => store.getRange(key, s, e), size, job.fitsHdu, source);
  const [w, h, a3 = 1, a4] = hdu.axes;
  if (hdu.axes.length < 3 || hdu.axes.length > 4) {
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      `HDU ${hdu.index} has ${hdu.axes.length} axes; a cutout file has 3 (cutouts x height x width) or 4 (cutouts x bands x height x width)`,
    );
  }
  const shape: [number, number, number] = a4 === undefined ? [1, h, w] : [a3, h, w];
  return { hdu, items: a4 ?? a3, shape, dtype: fitsDType(hdu) };
}

/**
 * Opens cutouts `[start, end)` of a file as a partition: each batch is one ranged read of its cutouts'
 * bytes; a cutout with NaN (under the default policy) is a failed item, id `key#n`.
 *
 * @example const stream = await openCutouts(store, 'cutouts.fits', size, job, [0, 1000]);
 */
export async function openCutouts(
  store: Store,
  key: string,
  size: number,
  job: FitsJobFields,
  rows?: readonly [number, number],
): Promise<PartitionStream> {
  const t0 = performance.now();
  const layout = await cutoutLayout(store, key, size, job);
  const stats = { read: (performance.now() - t0) / 1000, decode: 0, bytes: 0 };
  const [first, last] = rows ?? [0, layout.items];
  if (first < 0 || last > layout.items || first > last) {
    throw new CaiError(
      ErrorCodes.option,
      store.describe(key),
      `rows [${first}, ${last}) are outside its ${layout.items} cutouts; plan the job again`,
    );
  }
  const perItem = layout.shape[0] * layout.shape[1] * layout.shape[2];
  const itemBytes = perItem * bytesPerElement(fitsElement(layout.hdu));
  return {
    items: last - first,
    hasIds: true,
    stats: () => ({ ...stats }),
    async *batches(batchSize: number): AsyncIterable<SourceBatch> {
      for (let start = first; start < last; start += batchSize) {
        const end = Math.min(last, start + batchSize);
        const tr = performance.now();
        const from = layout.hdu.dataStart + start * itemBytes;
        const raw = await store.getRange(key, from, from + (end - start) * itemBytes);
        const td = performance.now();
        stats.read += (td - tr) / 1000;
        stats.bytes += raw.length;
        const values = decodeFitsValues(raw, layout.hdu, (end - start) * perItem);
        const failed: FailedItem[] = [];
        const good: number[] = [];
        for (let i = 0; i < end - start; i++) {
          const id = `${key}#${start + i}`;
          try {
            applyNanPolicy(values.data.subarray(i * perItem, (i + 1) * perItem), job.nan, id);
            good.push(i);
          } catch (err) {
            failed.push({ index: start + i - first, id, reason: reasonOf(err) });
          }
        }
        let data = values.data;
        if (failed.length) {
          data = allocate(values.dtype, good.length * perItem);
          good.forEach((g, k) =>
            (data as Float64Array).set(
              (values.data as Float64Array).subarray(g * perItem, (g + 1) * perItem),
              k * perItem,
            ),
          );
        }
        stats.decode += (performance.now() - td) / 1000;
        yield {
          rows: {
            names: ['image'],
            columns: [{ dtype: values.dtype, shape: [good.length, ...layout.shape], data }],
            items: good.length,
          },
          indices: Int32Array.from(good, (g) => start + g - first),
          ids: good.map((g) => `${key}#${start + g}`),
          failed,
        };
      }
    },
  };
}

/** Bytes per stored element of an HDU. */
function fitsElement(hdu: ImageHdu): DType {
  return ({ 8: 'uint8', 16: 'int16', 32: 'int32', 64: 'int64', [-32]: 'float32', [-64]: 'float64' } as const)[
    hdu.bitpix
  ];
}
