// HDF5 element types as CAI's dtypes, and raw element bytes as CAI's typed arrays. Pure functions of
// h5wasm's type metadata and bytes: any reader that has a dataset's (or a chunk's) decoded bytes can call
// them, whichever library read the bytes. float16 becomes float32 exactly as NumPy's astype(float32) does;
// a compound (an h5py structured array) is a set of fields, each of which can be a column.
import type { DType, TypedArray } from '../../tensor/dtype.js';

/** HDF5 type classes (H5T_class_t) as h5wasm's metadata numbers them. */
export const H5T_CLASS = Object.freeze({
  integer: 0,
  float: 1,
  string: 3,
  compound: 6,
  enum: 8,
  vlen: 9,
  array: 10,
} as const);

/** h5wasm's description of a datatype (a dataset's `metadata`, or a compound member). */
export interface H5TypeMetadata {
  readonly type: number;
  readonly size: number;
  readonly signed?: boolean;
  readonly vlen?: boolean;
  readonly littleEndian?: boolean;
  readonly enum_type?: { readonly type?: number; readonly members?: Readonly<Record<string, number>> };
  readonly array_type?: H5TypeMetadata & { readonly shape?: readonly number[] };
  readonly compound_type?: { readonly members: readonly H5MemberMetadata[] };
  readonly vlen_type?: H5TypeMetadata;
}

/** A compound member: its type, name and byte offset in a row. */
export interface H5MemberMetadata extends H5TypeMetadata {
  readonly name: string;
  readonly offset: number;
}

/** A numeric element as stored: what {@link decodeElements} needs to turn its bytes into CAI's values. */
export interface ElementType {
  readonly kind: 'int' | 'uint' | 'float' | 'bool';
  /** Bytes per element: 1, 2, 4 or 8. */
  readonly size: number;
  readonly littleEndian: boolean;
}

/** A stored type as CAI reads it: a numeric element and its CAI dtype, fixed-length strings, or neither. */
export interface TypeInfo {
  /** The numeric element, when CAI reads the type as numbers. */
  readonly element?: ElementType;
  /** CAI's dtype of the values read (float16 read as float32, uint16 as int32, uint32 as int64). */
  readonly dtype?: DType;
  /** Fixed-length strings of this many bytes (usable as ids). */
  readonly stringBytes?: number;
  /** Variable-length strings (h5wasm reads those itself). */
  readonly vlenStrings?: boolean;
  /** A short description of the stored type, for messages (`float16`, `uint16`, `S6`, `compound`). */
  readonly stored: string;
}

const DTYPE_OF: Readonly<Record<string, DType>> = Object.freeze({
  int8: 'int8',
  uint8: 'uint8',
  int16: 'int16',
  uint16: 'int32',
  int32: 'int32',
  uint32: 'int64',
  int64: 'int64',
  float16: 'float32',
  float32: 'float32',
  float64: 'float64',
  bool: 'bool',
});

const CLASS_NAMES: Readonly<Record<number, string>> = Object.freeze({
  2: 'time',
  4: 'bitfield',
  5: 'opaque',
  6: 'compound',
  7: 'reference',
  8: 'enum',
  9: 'vlen',
  10: 'array',
});

/**
 * How CAI reads an HDF5 element type: integers and IEEE floats of 2, 4 or 8 bytes as numbers (unsigned
 * 16- and 32-bit widened, as the FITS reader does; float16 as float32), h5py's booleans (an enum
 * {FALSE: 0, TRUE: 1} of one byte) as bool, strings as strings; anything else only described.
 *
 * @example typeInfo({ type: 1, size: 2, littleEndian: true }) // { element: float 2 LE, dtype: 'float32', stored: 'float16' }
 */
export function typeInfo(m: H5TypeMetadata): TypeInfo {
  const littleEndian = m.littleEndian !== false;
  const bits = m.size * 8;
  if (m.type === H5T_CLASS.integer) {
    const stored = `${m.signed ? 'int' : 'uint'}${bits}`;
    const dtype = DTYPE_OF[stored];
    const kind = m.signed ? 'int' : 'uint';
    return dtype ? { element: { kind, size: m.size, littleEndian }, dtype, stored } : { stored };
  }
  if (m.type === H5T_CLASS.float) {
    const stored = `float${bits}`;
    const dtype = DTYPE_OF[stored];
    return dtype ? { element: { kind: 'float', size: m.size, littleEndian }, dtype, stored } : { stored };
  }
  if (m.type === H5T_CLASS.string) {
    return m.vlen ? { vlenStrings: true, stored: 'string' } : { stringBytes: m.size, stored: `S${m.size}` };
  }
  const members = m.enum_type?.members;
  if (m.type === H5T_CLASS.enum && m.size === 1 && members?.FALSE === 0 && members?.TRUE === 1) {
    return { element: { kind: 'bool', size: 1, littleEndian }, dtype: 'bool', stored: 'bool' };
  }
  return { stored: CLASS_NAMES[m.type] ?? `class ${m.type}` };
}

// Each float16 bit pattern's float32 bit pattern, built on first use (256 KiB).
let halfTable: Uint32Array | undefined;

/**
 * NumPy's float16 -> float32 (npy_halfbits_to_floatbits) on bits: exact for every value, subnormals
 * normalized, infinities kept, NaNs keeping their sign and payload (shifted into the float32 mantissa,
 * signalling NaNs not quieted).
 */
function halfBitsToFloatBits(h: number): number {
  const sign = (h & 0x8000) << 16;
  const exp = h & 0x7c00;
  let sig = h & 0x03ff;
  if (exp === 0x7c00) return (sign | 0x7f800000 | (sig << 13)) >>> 0;
  if (exp !== 0) return (sign + (((h & 0x7fff) + 0x1c000) << 13)) >>> 0;
  if (sig === 0) return sign >>> 0;
  // A subnormal: shift the significand up to the implicit bit, lowering the exponent as it goes.
  let shift = 0;
  sig <<= 1;
  while ((sig & 0x0400) === 0) {
    sig <<= 1;
    shift++;
  }
  return (sign + ((127 - 15 - shift) << 23) + ((sig & 0x03ff) << 13)) >>> 0;
}

/**
 * float16 bits (as stored, little-endian `Uint16Array` order) as float32 values, bit for bit what NumPy's
 * `astype(np.float32)` gives, NaN payloads included.
 *
 * @example halfBitsToFloat32(Uint16Array.of(0x3c00, 0x0001)) // Float32Array [1, 5.960464477539063e-8]
 */
export function halfBitsToFloat32(bits: Uint16Array): Float32Array {
  if (!halfTable) {
    halfTable = new Uint32Array(1 << 16);
    for (let h = 0; h < 1 << 16; h++) halfTable[h] = halfBitsToFloatBits(h);
  }
  const out = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfTable[bits[i]];
  return new Float32Array(out.buffer);
}

/** `bytes` with each `size`-byte element reversed (a big-endian array made little-endian), copied. */
function swapped(bytes: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(bytes.byteLength);
  for (let i = 0; i < bytes.byteLength; i += size) {
    for (let k = 0; k < size; k++) out[i + k] = bytes[i + size - 1 - k];
  }
  return out;
}

/** `bytes` in an aligned buffer of its own (typed arrays need offsets that are multiples of the size). */
function aligned(bytes: Uint8Array, size: number): Uint8Array {
  return bytes.byteOffset % size === 0 ? bytes : bytes.slice();
}

/**
 * Elements' raw bytes (in the element's byte order) as CAI's typed array for `typeInfo(...).dtype`:
 * float16 converted to float32 as NumPy does, uint16 widened to int32, uint32 to int64, booleans as 0/1
 * bytes; other types are views of the bytes when aligned and little-endian.
 *
 * @example decodeElements(bytes, { kind: 'float', size: 2, littleEndian: true }) // Float32Array
 */
export function decodeElements(bytes: Uint8Array, e: ElementType): TypedArray {
  if (bytes.byteLength % e.size !== 0) {
    throw new RangeError(`${bytes.byteLength} bytes is not a whole number of ${e.size}-byte elements`);
  }
  const le = e.littleEndian || e.size === 1 ? aligned(bytes, e.size) : swapped(bytes, e.size);
  const n = le.byteLength / e.size;
  const { buffer, byteOffset } = le;
  if (e.kind === 'bool') return le.map((v) => (v ? 1 : 0));
  if (e.kind === 'float') {
    if (e.size === 2) return halfBitsToFloat32(new Uint16Array(buffer, byteOffset, n));
    if (e.size === 4) return new Float32Array(buffer, byteOffset, n);
    if (e.size === 8) return new Float64Array(buffer, byteOffset, n);
  } else if (e.kind === 'int') {
    if (e.size === 1) return new Int8Array(buffer, byteOffset, n);
    if (e.size === 2) return new Int16Array(buffer, byteOffset, n);
    if (e.size === 4) return new Int32Array(buffer, byteOffset, n);
    if (e.size === 8) return new BigInt64Array(buffer, byteOffset, n);
  } else {
    if (e.size === 1) return new Uint8Array(buffer, byteOffset, n);
    if (e.size === 2) return Int32Array.from(new Uint16Array(buffer, byteOffset, n));
    if (e.size === 4) return BigInt64Array.from(new Uint32Array(buffer, byteOffset, n), (v) => BigInt(v));
  }
  throw new RangeError(`${e.kind} of ${e.size} bytes has no CAI dtype`);
}

/** One field of a compound type, as CAI reads it. */
export interface CompoundField {
  readonly name: string;
  /** Byte offset of the field in a row. */
  readonly offset: number;
  /** Bytes of the field in a row. */
  readonly size: number;
  /** Shape of the field's value in one row: `[]` for a scalar, `[4, 4, 3]` for an array field. */
  readonly shape: readonly number[];
  /** How its elements read (numbers or fixed-length strings), or why it cannot be read. */
  readonly type: TypeInfo;
  /** Why the field is not read, when it is not (a nested compound, a variable-length field...). */
  readonly refused?: string;
}

/**
 * The fields of a compound type: numeric scalars and arrays of numbers read as numbers, fixed-length
 * strings as strings; nested compounds, variable-length fields and other types are listed with the reason
 * they are not read.
 *
 * @example compoundFields(dataset.metadata).map((f) => f.name) // ['ra', 'dec', 'z', 'image']
 */
export function compoundFields(m: H5TypeMetadata): CompoundField[] {
  return (m.compound_type?.members ?? []).map((member) => {
    let base: H5TypeMetadata = member;
    let shape: number[] = [];
    if (member.type === H5T_CLASS.array && member.array_type) {
      base = member.array_type;
      shape = [...(member.array_type.shape ?? [])];
    }
    const type = typeInfo(base);
    const field = { name: member.name, offset: member.offset, size: member.size, shape };
    if (base.type === H5T_CLASS.compound)
      return { ...field, type, refused: 'a nested compound (a structure inside a row)' };
    if (base.type === H5T_CLASS.vlen || base.vlen)
      return {
        ...field,
        type,
        refused: `variable-length (${type.stored === 'string' ? 'strings' : 'a sequence per row'})`,
      };
    if (!type.element && type.stringBytes === undefined)
      return { ...field, type, refused: `of HDF5 type ${type.stored}` };
    if (type.stringBytes !== undefined && shape.length > 0)
      return { ...field, type, refused: 'an array of strings' };
    return { ...field, type };
  });
}

/** Whether a compound type holds variable-length data anywhere (its read buffers must be reclaimed). */
export function holdsVlen(m: H5TypeMetadata): boolean {
  if (m.vlen || m.type === H5T_CLASS.vlen) return true;
  if (m.array_type && holdsVlen(m.array_type)) return true;
  return (m.compound_type?.members ?? []).some(holdsVlen);
}

/**
 * One field's values from consecutive compound rows (`rowSize` bytes each, fields in the element's byte
 * order): numbers as CAI's typed array (row-major, the field's shape after the rows), fixed-length
 * strings cut at their first NUL.
 *
 * @example fieldValues(rows, 107, fields.find((f) => f.name === 'z')) // Float32Array of one z per row
 */
export function fieldValues(rows: Uint8Array, rowSize: number, field: CompoundField): TypedArray | string[] {
  const n = Math.floor(rows.byteLength / rowSize);
  if (field.refused) throw new RangeError(`field "${field.name}" is ${field.refused}`);
  if (field.type.stringBytes !== undefined) {
    const decoder = new TextDecoder();
    return Array.from({ length: n }, (_, i) => {
      const s = rows.subarray(i * rowSize + field.offset, i * rowSize + field.offset + field.size);
      const end = s.indexOf(0);
      return decoder.decode(end < 0 ? s : s.subarray(0, end));
    });
  }
  const gathered = new Uint8Array(n * field.size);
  for (let i = 0; i < n; i++) {
    const at = i * rowSize + field.offset;
    gathered.set(rows.subarray(at, at + field.size), i * field.size);
  }
  return decodeElements(gathered, field.type.element as ElementType);
}
