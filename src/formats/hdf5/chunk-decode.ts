// Decoding HDF5 chunks outside libhdf5: the filters h5py writes by default (deflate through the
// machine's libdeflate or Node's zlib, both off the main thread so chunks inflate in parallel; byte
// shuffle; LZF), written straight into the buffer the caller gives (a slice of the batch when the chunk
// is whole rows of it), and copying a decoded chunk's elements into the rows asked for. Bytes stay bytes
// until the end, where they become the stored type's TypedArray, so every element type is one path.
import { inflateInto, InflateError } from '../codecs/deflate.js';
import { unshuffle } from '../codecs/shuffle.js';
import { NotCovered, type FilterInfo } from './chunk-index.js';

/** A chunk that does not decode (damaged, or not what its filters say), with why. */
export class ChunkDecodeError extends Error {}

/** HDF5 filter ids decoded here. */
export const DECODED_FILTERS: Readonly<Record<number, string>> = Object.freeze({
  1: 'deflate',
  2: 'shuffle',
  32000: 'lzf',
});

const COMPRESSORS = new Set([1, 32000]);

/**
 * Throws {@link NotCovered} when a pipeline has a filter not decoded here, or filters in an order other
 * than h5py's (shuffle, then one compressor).
 */
export function checkPipeline(filters: readonly FilterInfo[]): void {
  for (const f of filters)
    if (!(f.id in DECODED_FILTERS)) throw new NotCovered(`filter ${f.id} is decoded by libhdf5`);
  const ids = filters.map((f) => f.id);
  const compressors = ids.filter((id) => COMPRESSORS.has(id));
  const shuffles = ids.filter((id) => id === 2);
  if (compressors.length > 1 || shuffles.length > 1 || (shuffles.length && ids.indexOf(2) > 0))
    throw new NotCovered(`filter pipeline ${ids.join(', ')} is decoded by libhdf5`);
}

/**
 * A chunk's stored bytes undone through its filters (a filter whose bit is set in `mask` was skipped for
 * this chunk) into `dst`, which it fills exactly. `scratch` (as large as `dst`) holds the shuffled bytes
 * between inflating and unshuffling. Throws {@link ChunkDecodeError}, naming the chunk (`what`), when the
 * chunk is damaged or decodes to another size. The pipeline is one {@link checkPipeline} accepted.
 */
export async function decodeChunkInto(
  stored: Uint8Array,
  filters: readonly FilterInfo[],
  mask: number,
  dst: Uint8Array,
  elementSize: number,
  what: string,
  scratch: () => Uint8Array,
): Promise<void> {
  let shuffle = 1;
  let codec = 0;
  filters.forEach((f, i) => {
    if (mask & (1 << i)) return;
    if (f.id === 2) shuffle = f.clientData[0] ?? elementSize;
    else codec = f.id;
  });
  try {
    const target = shuffle > 1 && codec ? scratch() : dst;
    if (codec === 1) await inflateInto(stored, target, 'zlib', what);
    else if (codec === 32000) lzf(stored, target);
    else if (stored.byteLength !== dst.byteLength)
      throw new Error(`${stored.byteLength} stored bytes instead of the ${dst.byteLength} expected`);
    if (shuffle > 1) unshuffle(shuffle, codec ? target : stored, dst, 0, dst.byteLength);
    else if (!codec) dst.set(stored);
  } catch (err) {
    if (err instanceof InflateError) throw new ChunkDecodeError(err.message, { cause: err });
    throw new ChunkDecodeError(`${what}: ${(err as Error).message}`, { cause: err });
  }
}

/** LZF (h5py's filter 32000) decompressed into `out`, which it must fill. */
export function lzf(src: Uint8Array, out: Uint8Array): void {
  const expected = out.byteLength;
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
