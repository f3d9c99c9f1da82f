// FITS files as items: one image or cube per file, or one file per band stacked into a cube.
import { gunzipSync } from 'fflate';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { DType, TypedArray } from '../../tensor/dtype.js';
import { allocate } from '../../tensor/dtype.js';
import { cast } from '../../tensor/tensor.js';
import { applyNanPolicy, type NanPolicy } from '../partition/nan.js';
import type { ItemRow } from '../partition/object-items.js';
import { decodeFitsValues } from './data.js';
import { findImageHdu, type HduSelector, type ImageHdu } from './hdu.js';

/** The job fields FITS reading uses. */
export interface FitsJobFields {
  readonly fitsHdu?: number | string;
  readonly fitsBands?: readonly string[];
  readonly fitsPattern?: string;
  readonly fitsCutouts?: boolean;
  readonly nan?: NanPolicy;
  readonly partitionItems?: number;
  readonly partitionBytes?: number;
}

const GZIP = /\.gz$/i;

/**
 * The bytes of a whole FITS file, gunzipped when the key ends in `.gz` (`.fits.gz` is how archives such
 * as SDSS serve cutouts).
 *
 * @example const bytes = fitsBytes(await store.get('a.fits.gz'), 'a.fits.gz');
 */
export function fitsBytes(bytes: Uint8Array, key: string): Uint8Array {
  if (!GZIP.test(key)) return bytes;
  try {
    return gunzipSync(bytes);
  } catch (err) {
    throw new CaiError(
      ErrorCodes.corrupt,
      key,
      `does not gunzip (${(err as Error).message}); it is truncated or not gzip: download it again`,
      { cause: err },
    );
  }
}

/** Finds the image HDU of a file already in memory. */
export function imageHduOf(bytes: Uint8Array, select: HduSelector, source: string): Promise<ImageHdu> {
  return findImageHdu(async (s, e) => bytes.subarray(s, e), bytes.length, select, source);
}

/** The item shape [bands, height, width] of an HDU read as one item, or a clear error. */
function cubeShape(hdu: ImageHdu, source: string): number[] {
  const [w, h, b = 1] = hdu.axes;
  if (hdu.axes.length < 2 || hdu.axes.length > 3) {
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      hdu.axes.length === 4
        ? `HDU ${hdu.index} holds ${hdu.axes[3]} cutouts of ${b}x${h}x${w} (NAXIS4); set fitsCutouts (--fits-cutouts) to read each cutout as an item`
        : `HDU ${hdu.index} has ${hdu.axes.length} axes; CAI reads 2-D images and 3-D cubes (bands x height x width) as items`,
    );
  }
  return [b, h, w];
}

/**
 * Decodes one FITS file as one item: a 2-D image becomes [1, height, width], a cube [NAXIS3, height,
 * width]; BSCALE/BZERO applied, BLANK turned into NaN, then the NaN policy.
 *
 * @example const row = await readFitsItem(await store.get('cube.fits'), 'cube.fits', job);
 */
export async function readFitsItem(raw: Uint8Array, key: string, job: FitsJobFields): Promise<ItemRow> {
  const bytes = fitsBytes(raw, key);
  const hdu = await imageHduOf(bytes, job.fitsHdu, key);
  const shape = cubeShape(hdu, key);
  const count = shape[0] * shape[1] * shape[2];
  const values = decodeFitsValues(bytes.subarray(hdu.dataStart), hdu, count);
  return { dtype: values.dtype, shape, data: applyNanPolicy(values.data, job.nan, key) };
}

/**
 * Decodes one file per band and stacks them into one [bands, height, width] item. Every band must be
 * a 2-D image of the same size; bands of different types are widened to float64 so none loses values.
 *
 * @example await readBandGroup([g, r], ['1_g.fits', '1_r.fits'], job)
 */
export async function readBandGroup(
  raws: readonly Uint8Array[],
  keys: readonly string[],
  job: FitsJobFields,
): Promise<ItemRow> {
  const planes: { dtype: DType; data: TypedArray; h: number; w: number }[] = [];
  for (let i = 0; i < raws.length; i++) {
    const bytes = fitsBytes(raws[i], keys[i]);
    const hdu = await imageHduOf(bytes, job.fitsHdu, keys[i]);
    const [b, h, w] = cubeShape(hdu, keys[i]);
    if (b !== 1) {
      throw new CaiError(
        ErrorCodes.unsupported,
        keys[i],
        `holds ${b} bands where one band per file was expected (fitsBands); read cubes without fitsBands`,
      );
    }
    const first = planes[0];
    if (first && (first.h !== h || first.w !== w)) {
      throw new CaiError(
        ErrorCodes.corrupt,
        keys[i],
        `is ${w}x${h} but ${keys[0]} is ${first.w}x${first.h}; every band of an item must have the same size`,
      );
    }
    const values = decodeFitsValues(bytes.subarray(hdu.dataStart), hdu, h * w);
    planes.push({ ...values, h, w });
  }
  const dtype = planes.every((p) => p.dtype === planes[0].dtype) ? planes[0].dtype : 'float64';
  const plane = planes[0].h * planes[0].w;
  const data = allocate(dtype, plane * planes.length);
  planes.forEach((p, i) => {
    const t = cast({ dtype: p.dtype, shape: [plane], data: p.data }, dtype, keys[i]);
    (data as Float64Array).set(t.data as Float64Array, i * plane);
  });
  return {
    dtype,
    shape: [planes.length, planes[0].h, planes[0].w],
    data: applyNanPolicy(data, job.nan, keys.join(', ')),
  };
}
