// Decoding HDF5 chunks outside libhdf5: the filters h5py writes by default (deflate through Node's native
// zlib, which runs on libuv's thread pool so chunks inflate in parallel; byte shuffle; LZF), and copying
// a chunk's elements into the rows asked for. Bytes stay bytes until the end, where they become the
// stored type's TypedArray, so every element type is handled by one path.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { NotCovered, type FilterInfo } from './chunk-index.js';

const inflate = promisify(zlib.inflate);

/** A chunk that does not decode (damaged, or not what its filters say): libhdf5 then reports it. */
export class ChunkDecodeError extends Error {}

/** HDF5 filter ids decoded here. */
export const DECODED_FILTERS: Readonly<Record<number, string>> = Object.freeze({
  1: 'deflate',
  2: 'shuffle',
  32000: 'lzf',
});

/** Throws {@link NotCovered} when a pipeline has a filter not decoded here. */
export function checkPipeline(filters: readonly FilterInfo[]): void {
  for (const f of filters)
    if (!(f.id in DECODED_FILTERS)) throw new NotCovered(`filter ${f.id} is decoded by libhdf5`);
}

/**
 * A chunk's stored bytes undone through its filters (last applied, first undone; a filter whose bit is
 * set in `mask` was skipped for this chunk). Throws when the result is not `expected` bytes.
 */
export async function decodeChunk(
  stored: Uint8Array,
  filters: readonly FilterInfo[],
  mask: number,
  expected: number,
  elementSize: number,
): Promise<Uint8Array> {
  let b = stored;
  try {
    for (let i = filters.length - 1; i >= 0; i--) {
      if (mask & (1 << i)) continue;
      const f = filters[i];
      // One output buffer of the chunk's size, instead of 16 KiB pieces concatenated at the end.
      if (f.id === 1) b = await inflate(b, { chunkSize: Math.max(64, expected) });
      else if (f.id === 2) b = unshuffle(b, f.clientData[0] ?? elementSize);
      else if (f.id === 32000) b = lzf(b, expected);
      else throw new NotCovered(`filter ${f.id}`);
    }
  } catch (err) {
    if (err instanceof NotCovered) throw err;
    throw new ChunkDecodeError((err as Error).message, { cause: err });
  }
  if (b.byteLength !== expected)
    throw new ChunkDecodeError(`a chunk decoded to ${b.byteLength} bytes instead of ${expected}`);
  return b;
}

/** HDF5's shuffle undone: byte j of every element was stored in plane j. */
export function unshuffle(b: Uint8Array, size: number): Uint8Array {
  if (size <= 1) return b;
  const n = Math.floor(b.byteLength / size);
  const out = new Uint8Array(b.byteLength);
  for (let j = 0; j < size; j++) {
    const plane = b.subarray(j * n, j * n + n);
    for (let i = 0, o = j; i < n; i++, o += size) out[o] = plane[i];
  }
  // Bytes past the last whole element are stored as they were.
  out.set(b.subarray(n * size), n * size);
  return out;
}

/** LZF (h5py's filter 32000) decompressed into `expected` bytes. */
export function lzf(src: Uint8Array, expected: number): Uint8Array {
  const out = new Uint8Array(expected);
  let i = 0;
  let o = 0;
  while (i < src.length) {
    const ctrl = src[i++];
    if (ctrl < 32) {
      const n = ctrl + 1;
      if (o + n > expected || i + n > src.length) throw new Error('LZF literal run out of bounds');
      out.set(src.subarray(i, i + n), o);
      i += n;
      o += n;
    } else {
      let n = ctrl >> 5;
      if (n === 7) n += src[i++];
      n += 2;
      const ref = o - ((ctrl & 0x1f) << 8) - src[i++] - 1;
      if (ref < 0 || o + n > expected) throw new Error('LZF back reference out of bounds');
      for (let k = 0; k < n; k++) out[o++] = out[ref + k];
    }
  }
  if (o !== expected) throw new Error(`LZF gave ${o} bytes instead of ${expected}`);
  return out;
}

/**
 * Copies the part of a decoded chunk (at element `offset`, of `chunk` elements per dimension) that lies
 * in rows `[r0, r1)` of a dataset of `shape` into `out`, which holds rows `[r0, r1)` in C order.
 */
export function copyChunk(
  data: Uint8Array,
  offset: readonly number[],
  chunk: readonly number[],
  shape: readonly number[],
  size: number,
  out: Uint8Array,
  r0: number,
  r1: number,
): void {
  const n = shape.length;
  const lo: number[] = [];
  const hi: number[] = [];
  for (let d = 0; d < n; d++) {
    lo.push(d === 0 ? Math.max(r0, offset[0]) : offset[d]);
    hi.push(Math.min(offset[d] + chunk[d], shape[d], d === 0 ? r1 : Infinity));
    if (hi[d] <= lo[d]) return;
  }
  // Byte strides of the chunk and of the output.
  const cs: number[] = new Array<number>(n);
  const os: number[] = new Array<number>(n);
  cs[n - 1] = size;
  os[n - 1] = size;
  for (let d = n - 2; d >= 0; d--) {
    cs[d] = cs[d + 1] * chunk[d + 1];
    os[d] = os[d + 1] * shape[d + 1];
  }
  // Chunks as wide as the dataset in every dimension but the first: one block of rows.
  let whole = true;
  for (let d = 1; d < n; d++) if (chunk[d] !== shape[d]) whole = false;
  if (whole) {
    const from = (lo[0] - offset[0]) * cs[0];
    out.set(data.subarray(from, from + (hi[0] - lo[0]) * cs[0]), (lo[0] - r0) * os[0]);
    return;
  }
  // Otherwise runs along the last dimension, over every index of the others.
  const run = (hi[n - 1] - lo[n - 1]) * size;
  const idx = lo.slice();
  for (;;) {
    let src = 0;
    let dst = 0;
    for (let d = 0; d < n; d++) {
      src += (idx[d] - offset[d]) * cs[d];
      dst += (idx[d] - (d === 0 ? r0 : 0)) * os[d];
    }
    out.set(data.subarray(src, src + run), dst);
    let d = n - 2;
    while (d >= 0 && ++idx[d] >= hi[d]) idx[d] = lo[d--];
    if (d < 0) return;
  }
}

const VIEWS: Readonly<Record<string, new (b: ArrayBuffer) => ArrayBufferView>> = Object.freeze({
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  uint64: BigUint64Array,
  float32: Float32Array,
  float64: Float64Array,
});

/** Whether bytes of stored type `name` (little-endian) become a TypedArray here. */
export const viewable = (name: string): boolean => name in VIEWS;

/** Little-endian bytes of stored type `name` as its TypedArray (no copy), before CAI widens it. */
export function viewAs(name: string, bytes: ArrayBuffer): ArrayBufferView {
  const View = VIEWS[name];
  if (!View) throw new NotCovered(`stored type ${name}`);
  return new View(bytes);
}
