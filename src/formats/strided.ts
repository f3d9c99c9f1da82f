// Strided views over raw element storage: torch tensors keep (offset, sizes, strides) into a shared
// storage, and Fortran-order .npy files are a strided view of their own data. CAI's tensors are dense and
// row-major, so a view is used in place when it already is, and gathered into a new array otherwise.
import { CaiError, ErrorCodes } from '../errors.js';
import { byteswapInPlace } from '../tensor/tensor.js';

/**
 * A strided view in elements: element `[i0, i1, ...]` is at `offset + i0 * strides[0] + i1 * strides[1] ...`.
 *
 * @example
 * const transposed: StridedLayout = { offset: 0, shape: [3, 2], strides: [1, 3] };
 */
export interface StridedLayout {
  readonly offset: number;
  readonly shape: readonly number[];
  readonly strides: readonly number[];
}

/**
 * Whether a layout is row-major and dense, so its elements are one run starting at `offset`.
 * @example isRowMajor({ offset: 4, shape: [2, 3], strides: [3, 1] }) // true
 */
export function isRowMajor(layout: StridedLayout): boolean {
  if (layout.shape.includes(0)) return true;
  let expected = 1;
  for (let d = layout.shape.length - 1; d >= 0; d--) {
    const size = layout.shape[d];
    if (size !== 1 && layout.strides[d] !== expected) return false;
    expected *= size;
  }
  return true;
}

/**
 * The number of storage elements a layout needs (highest index touched plus one; 0 when it is empty),
 * after checking that offset, sizes and strides are non-negative safe integers.
 *
 * @example extentOf({ offset: 2, shape: [2, 2], strides: [1, 2] }) // 6
 */
export function extentOf(layout: StridedLayout, source: string, what: string): number {
  const { offset, shape, strides } = layout;
  const bad = (v: number) => !Number.isSafeInteger(v) || v < 0;
  if (shape.length !== strides.length || bad(offset) || shape.some(bad) || strides.some(bad)) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `${what} has an invalid layout (offset ${offset}, sizes [${shape.join(', ')}], strides [${strides.join(', ')}]); the file is damaged`,
    );
  }
  let last = offset;
  for (let d = 0; d < shape.length; d++) {
    if (shape[d] === 0) return 0;
    last += (shape[d] - 1) * strides[d];
  }
  if (!Number.isSafeInteger(last + 1)) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `${what} has sizes too large to address; the file is damaged`,
    );
  }
  return last + 1;
}

type Words = Uint8Array | Uint16Array | Uint32Array;

function words(bytes: Uint8Array, wordSize: number): Words {
  if (wordSize === 1) return bytes;
  const aligned = bytes.byteOffset % wordSize === 0 ? bytes : bytes.slice();
  const n = Math.floor(aligned.byteLength / wordSize);
  return wordSize === 2
    ? new Uint16Array(aligned.buffer, aligned.byteOffset, n)
    : new Uint32Array(aligned.buffer, aligned.byteOffset, n);
}

/**
 * Copies a strided view of `storage` (elements of `elementSize` bytes) into a new row-major byte array.
 * Rows whose innermost stride is 1 are copied as whole runs; other elements one at a time with the
 * widest word that fits, so bit patterns (NaN payloads, -0) are kept exactly. The caller has checked the
 * extent with {@link extentOf}.
 *
 * @example gatherStrided(storageBytes, 4, { offset: 0, shape: [3, 2], strides: [1, 3] }) // a transpose
 */
export function gatherStrided(storage: Uint8Array, elementSize: number, layout: StridedLayout): Uint8Array {
  const shape = layout.shape.length === 0 ? [1] : layout.shape;
  const strides = layout.strides.length === 0 ? [1] : layout.strides;
  let total = 1;
  for (const s of shape) total *= s;
  const out = new Uint8Array(total * elementSize);
  if (total === 0) return out;
  const wordSize = elementSize >= 4 ? 4 : elementSize;
  const per = elementSize / wordSize;
  const src = words(storage.subarray(layout.offset * elementSize), wordSize);
  const dst = words(out, wordSize);
  const ndim = shape.length;
  const inner = shape[ndim - 1];
  const innerStride = strides[ndim - 1];
  const counters = new Array<number>(ndim - 1).fill(0);
  let base = 0;
  for (let at = 0; at < total; at += inner) {
    if (innerStride === 1) {
      dst.set(src.subarray(base * per, (base + inner) * per), at * per);
    } else if (per === 1) {
      for (let i = 0, s = base; i < inner; i++, s += innerStride) dst[at + i] = src[s];
    } else {
      for (let i = 0, s = base * per, step = innerStride * per; i < inner; i++, s += step) {
        const d = (at + i) * per;
        for (let w = 0; w < per; w++) dst[d + w] = src[s + w];
      }
    }
    for (let d = ndim - 2; d >= 0; d--) {
      base += strides[d];
      if (++counters[d] < shape[d]) break;
      base -= strides[d] * shape[d];
      counters[d] = 0;
    }
  }
  return out;
}

/**
 * The row-major bytes of a view: a zero-copy subarray when the view is already dense and no byte swap is
 * needed, a new array otherwise (gathered, then swapped to little-endian when `bigEndian`).
 *
 * @example denseBytes(storage, 8, layout, false) // Uint8Array ready for viewBytes('float64', ...)
 */
export function denseBytes(
  storage: Uint8Array,
  elementSize: number,
  layout: StridedLayout,
  bigEndian: boolean,
): Uint8Array {
  let out: Uint8Array;
  if (isRowMajor(layout)) {
    let n = 1;
    for (const s of layout.shape) n *= s;
    const start = layout.offset * elementSize;
    out = storage.subarray(start, start + n * elementSize);
    if (!bigEndian) return out;
    out = out.slice();
  } else {
    out = gatherStrided(storage, elementSize, layout);
  }
  if (bigEndian) byteswapInPlace(out, elementSize);
  return out;
}
