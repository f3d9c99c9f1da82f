import { CaiError, ErrorCodes } from '../errors.js';
import { allocate, bytesPerElement, type DType, type DTypeArrays, type TypedArray } from './dtype.js';
import { halfToNumber, numberToHalf } from './float16.js';

/**
 * A dense, row-major (C-contiguous) tensor. The first dimension is items.
 *
 * @example
 * const t: Tensor = { dtype: 'float32', shape: [2, 3], data: new Float32Array(6) };
 */
export interface Tensor<D extends DType = DType> {
  readonly dtype: D;
  readonly shape: readonly number[];
  readonly data: DTypeArrays[D];
}

/** Number of elements for a shape. @example numel([2, 3]) // 6 */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** A tensor over `data`, checking that its length fits the shape. @example tensor('float32', [2], new Float32Array(2)) */
export function tensor<D extends DType>(dtype: D, shape: readonly number[], data: DTypeArrays[D]): Tensor<D> {
  if (data.length !== numel(shape)) {
    throw new RangeError(
      `${dtype} tensor of shape [${shape.join(', ')}] needs ${numel(shape)} elements, got ${data.length}`,
    );
  }
  return { dtype, shape: [...shape], data };
}

/**
 * Rows `[start, end)` of a tensor along its first dimension, sharing memory with it (no copy).
 * @example sliceRows(t, 0, 32) // the first batch of 32 items
 */
export function sliceRows<D extends DType>(t: Tensor<D>, start: number, end: number): Tensor<D> {
  const rowSize = numel(t.shape.slice(1));
  const data = t.data.subarray(start * rowSize, end * rowSize) as DTypeArrays[D];
  return { dtype: t.dtype, shape: [end - start, ...t.shape.slice(1)], data };
}

/** Reads element `i` of any tensor as a number (int64 through `Number`, float16 decoded). */
export function elementAsNumber(t: Tensor, i: number): number {
  const v = t.data[i];
  if (t.dtype === 'float16') return halfToNumber(v as number);
  return typeof v === 'bigint' ? Number(v) : (v as number);
}

const INT_RANGE: Partial<Record<DType, [number, number]>> = {
  int8: [-128, 127],
  int16: [-32768, 32767],
  int32: [-2147483648, 2147483647],
  uint8: [0, 255],
};

/**
 * The tensor converted to `dtype`: the same object when it already has that dtype, otherwise a new
 * array. Floats to ints truncate toward zero as NumPy's `astype` does; out-of-range integers are an
 * error rather than a silent wrap.
 *
 * @example cast(magnitudes, 'float32') // CAI's float64 magnitudes for a float32 model input
 */
export function cast<D extends DType>(t: Tensor, dtype: D, name = 'tensor'): Tensor<D> {
  if (t.dtype === dtype) return t as Tensor<D>;
  const n = t.data.length;
  const out = allocate(dtype, n);
  const src = t.data;
  if (dtype === 'float32' || dtype === 'float64') {
    const dst = out as Float32Array | Float64Array;
    if (t.dtype === 'float16') for (let i = 0; i < n; i++) dst[i] = halfToNumber(src[i] as number);
    else if (t.dtype === 'int64') for (let i = 0; i < n; i++) dst[i] = Number(src[i]);
    else (dst as Float64Array).set(src as Float64Array);
  } else if (dtype === 'float16') {
    const dst = out as Uint16Array;
    for (let i = 0; i < n; i++) dst[i] = numberToHalf(elementAsNumber(t, i));
  } else if (dtype === 'int64') {
    const dst = out as BigInt64Array;
    for (let i = 0; i < n; i++) {
      const v = elementAsNumber(t, i);
      if (!Number.isFinite(v)) throw castError(name, t.dtype, dtype, v);
      dst[i] = typeof src[i] === 'bigint' ? (src[i] as bigint) : BigInt(Math.trunc(v));
    }
  } else if (dtype === 'bool') {
    const dst = out as Uint8Array;
    for (let i = 0; i < n; i++) dst[i] = elementAsNumber(t, i) !== 0 ? 1 : 0;
  } else {
    const [lo, hi] = INT_RANGE[dtype] as [number, number];
    const dst = out as Int32Array;
    for (let i = 0; i < n; i++) {
      const v = Math.trunc(elementAsNumber(t, i));
      if (!(v >= lo && v <= hi)) throw castError(name, t.dtype, dtype, elementAsNumber(t, i));
      dst[i] = v;
    }
  }
  return { dtype, shape: t.shape, data: out as DTypeArrays[D] };
}

function castError(name: string, from: DType, to: DType, value: number): CaiError {
  return new CaiError(
    ErrorCodes.binding,
    name,
    `cannot cast ${from} value ${value} to ${to} without losing it; feed the model a ${from} input or clean the data`,
  );
}

/** Reverses the byte order of every element in place (for big-endian sources). */
export function byteswapInPlace(bytes: Uint8Array, elementSize: number): void {
  if (elementSize === 1) return;
  for (let i = 0; i < bytes.length; i += elementSize) {
    for (let a = i, b = i + elementSize - 1; a < b; a++, b--) {
      const tmp = bytes[a];
      bytes[a] = bytes[b];
      bytes[b] = tmp;
    }
  }
}

/** Byte length of a tensor's data. */
export function byteLength(t: Tensor): number {
  return t.data.length * bytesPerElement(t.dtype);
}

/** The raw bytes of a typed array, without copying. */
export function bytesOf(data: TypedArray): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}
