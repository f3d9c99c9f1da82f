// FITS data units: big-endian values, physical = BZERO + BSCALE x stored, BLANK integers -> NaN.
import type { DType, TypedArray } from '../../tensor/dtype.js';
import { byteswapInPlace } from '../../tensor/tensor.js';
import type { ImageHdu } from './hdu.js';

/** Values decoded from a FITS data unit. */
export interface FitsValues {
  readonly dtype: DType;
  readonly data: TypedArray;
}

/**
 * The dtype the physical values of an HDU get, following astropy: unscaled data keeps its type (BITPIX
 * 8 -> uint8, 16 -> int16, 32 -> int32, 64 -> int64, -32 -> float32, -64 -> float64); the unsigned
 * conventions (BZERO 32768 on 16-bit, 2^31 on 32-bit, -128 on 8-bit) become the next exact type; scaled
 * or BLANK-holding integers become float32 (8, 16-bit) or float64 (32, 64-bit).
 *
 * @example fitsDType({ bitpix: 16, bscale: 1, bzero: 0 } as ImageHdu) // 'int16'
 */
export function fitsDType(hdu: Pick<ImageHdu, 'bitpix' | 'bscale' | 'bzero' | 'blank'>): DType {
  const { bitpix, bscale, bzero, blank } = hdu;
  if (bitpix === -32) return 'float32';
  if (bitpix === -64) return 'float64';
  if (blank === undefined && bscale === 1) {
    if (bzero === 0) return ({ 8: 'uint8', 16: 'int16', 32: 'int32', 64: 'int64' } as const)[bitpix];
    if (bitpix === 8 && bzero === -128) return 'int8';
    if (bitpix === 16 && bzero === 32768) return 'int32';
    if (bitpix === 32 && bzero === 2147483648) return 'float64';
  }
  return bitpix === 8 || bitpix === 16 ? 'float32' : 'float64';
}

/**
 * Decodes `count` values from the raw big-endian bytes of a data unit (a slice starting at an element
 * boundary), applying BSCALE/BZERO and turning BLANK values into NaN.
 *
 * @example decodeFitsValues(bytes.subarray(hdu.dataStart, hdu.dataStart + hdu.dataBytes), hdu, 64 * 64)
 */
export function decodeFitsValues(raw: Uint8Array, hdu: ImageHdu, count: number): FitsValues {
  const size = Math.abs(hdu.bitpix) / 8;
  const bytes = new Uint8Array(count * size);
  bytes.set(raw.subarray(0, count * size));
  byteswapInPlace(bytes, size);
  const buf = bytes.buffer;
  const stored: TypedArray =
    hdu.bitpix === 8
      ? bytes
      : hdu.bitpix === 16
        ? new Int16Array(buf)
        : hdu.bitpix === 32
          ? new Int32Array(buf)
          : hdu.bitpix === 64
            ? new BigInt64Array(buf)
            : hdu.bitpix === -32
              ? new Float32Array(buf)
              : new Float64Array(buf);
  const dtype = fitsDType(hdu);
  const { bscale, bzero, blank } = hdu;
  if (bscale === 1 && bzero === 0 && blank === undefined) return { dtype, data: stored };
  // The unsigned conventions: exact integer shifts.
  if (dtype === 'int8') return { dtype, data: Int8Array.from(stored as Uint8Array, (v) => v - 128) };
  if (dtype === 'int32') return { dtype, data: Int32Array.from(stored as Int16Array, (v) => v + 32768) };
  const out = dtype === 'float32' ? new Float32Array(count) : new Float64Array(count);
  if (stored instanceof BigInt64Array) {
    for (let i = 0; i < count; i++) {
      const v = stored[i];
      out[i] = blank !== undefined && v === BigInt(blank) ? NaN : bzero + bscale * Number(v);
    }
  } else {
    const s = stored as Exclude<TypedArray, BigInt64Array>;
    for (let i = 0; i < count; i++) {
      const v = s[i];
      out[i] = blank !== undefined && v === blank ? NaN : bzero + bscale * v;
    }
  }
  return { dtype, data: out };
}
