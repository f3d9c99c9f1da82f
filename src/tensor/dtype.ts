/** The element types CAI reads, casts and feeds to models. */
export const DTYPES = [
  'float16',
  'float32',
  'float64',
  'int8',
  'int16',
  'int32',
  'int64',
  'uint8',
  'bool',
] as const;

/** One of {@link DTYPES}. */
export type DType = (typeof DTYPES)[number];

/**
 * The typed array that holds each dtype. float16 is kept as raw `Uint16Array` bits; bool as `Uint8Array`
 * (0 or 1); int64 as `BigInt64Array`.
 */
export interface DTypeArrays {
  float16: Uint16Array;
  float32: Float32Array;
  float64: Float64Array;
  int8: Int8Array;
  int16: Int16Array;
  int32: Int32Array;
  int64: BigInt64Array;
  uint8: Uint8Array;
  bool: Uint8Array;
}

/** Any of the typed arrays in {@link DTypeArrays}. */
export type TypedArray = DTypeArrays[DType];

type ArrayCtor = {
  new (length: number): TypedArray;
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): TypedArray;
  readonly BYTES_PER_ELEMENT: number;
};

const CTORS: Readonly<Record<DType, ArrayCtor>> = Object.freeze({
  float16: Uint16Array,
  float32: Float32Array,
  float64: Float64Array,
  int8: Int8Array,
  int16: Int16Array,
  int32: Int32Array,
  int64: BigInt64Array,
  uint8: Uint8Array,
  bool: Uint8Array,
});

/** Bytes per element of a dtype. @example bytesPerElement('float64') // 8 */
export function bytesPerElement(dtype: DType): number {
  return CTORS[dtype].BYTES_PER_ELEMENT;
}

/** A new zeroed typed array for `length` elements of `dtype`. @example allocate('float32', 4) */
export function allocate<D extends DType>(dtype: D, length: number): DTypeArrays[D] {
  return new CTORS[dtype](length) as DTypeArrays[D];
}

/**
 * A typed array over `bytes` (little-endian) without copying when the offset is aligned, with one copy
 * otherwise. @example viewBytes('float32', u8) // Float32Array over u8's memory
 */
export function viewBytes<D extends DType>(dtype: D, bytes: Uint8Array): DTypeArrays[D] {
  const size = bytesPerElement(dtype);
  if (bytes.byteLength % size !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${dtype} elements`);
  }
  const ctor = CTORS[dtype];
  if (bytes.byteOffset % size === 0) {
    return new ctor(bytes.buffer, bytes.byteOffset, bytes.byteLength / size) as DTypeArrays[D];
  }
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return new ctor(copy.buffer, 0, bytes.byteLength / size) as DTypeArrays[D];
}

/** Whether a dtype holds floating-point values. */
export function isFloat(dtype: DType): boolean {
  return dtype === 'float16' || dtype === 'float32' || dtype === 'float64';
}
