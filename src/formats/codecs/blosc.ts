// Blosc 1 chunks (numcodecs' Blosc, the default compressor of zarr-python 2) decoded with native LZ4 and
// zlib. numcodecs.js decodes Blosc in single-threaded WebAssembly at ~100-250 MB/s here; this reads the
// same frame (a 16-byte header, a table of block starts, each block split into up to `typesize` streams,
// then unshuffled) and hands each stream to a native decoder: ~1.2-1.6 GB/s on the same chunks. The
// layout follows c-blosc 1.x's `blosc_d`; chunks this does not cover natively (blosclz, snappy, zstd,
// bitshuffle, Blosc 2 frames) return `undefined` and are decoded by numcodecs.
import { inflateSync } from 'node:zlib';
import { nativeLz4 } from './native.js';
import { unshuffle } from './shuffle.js';

const HEADER = 16;
const FLAG_SHUFFLE = 0x1;
const FLAG_MEMCPYED = 0x2;
const FLAG_BITSHUFFLE = 0x4;
const FLAG_DONT_SPLIT = 0x10;
const FORMAT_LZ4 = 1;
const FORMAT_ZLIB = 3;
// c-blosc splits a block into typesize streams only for small types and blocks of >= 128 elements.
const MAX_SPLITS = 16;
const MIN_BUFFERSIZE = 128;

class BloscError extends Error {
  constructor(why: string) {
    super(`damaged Blosc chunk: ${why}`);
    this.name = 'BloscError';
  }
}

/**
 * The decoded bytes of a Blosc 1 chunk, or `undefined` when its compressor or filter has no native
 * decoder here (the caller then uses numcodecs). Throws on a damaged chunk. `src` is left as it was.
 *
 * @example const bytes = decodeBloscNative(chunk) ?? (await numcodecsBlosc.decode(chunk));
 */
export function decodeBloscNative(src: Uint8Array): Uint8Array | undefined {
  if (src.byteLength < HEADER) throw new BloscError(`${src.byteLength} bytes, shorter than its header`);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const [version, , flags, typesize] = src;
  const nbytes = view.getUint32(4, true);
  const blocksize = view.getUint32(8, true);
  const cbytes = view.getUint32(12, true);
  if (version > 2) return undefined; // Blosc 2's extended header
  if (cbytes > src.byteLength) throw new BloscError(`header says ${cbytes} bytes, ${src.byteLength} present`);
  if (nbytes === 0) return new Uint8Array(0);
  if (flags & FLAG_MEMCPYED) {
    if (HEADER + nbytes > cbytes) throw new BloscError('a stored (memcpyed) chunk is truncated');
    return src.slice(HEADER, HEADER + nbytes);
  }
  const format = flags >> 5;
  const lz4 = nativeLz4();
  if (flags & FLAG_BITSHUFFLE || !((format === FORMAT_LZ4 && lz4) || format === FORMAT_ZLIB))
    return undefined;
  if (blocksize === 0 || typesize === 0) throw new BloscError('block size or type size is 0');
  const shuffled = (flags & FLAG_SHUFFLE) !== 0 && typesize > 1;
  const nblocks = Math.ceil(nbytes / blocksize);
  if (HEADER + 4 * nblocks > cbytes) throw new BloscError('its table of blocks is truncated');
  const tmp = shuffled ? new Uint8Array(blocksize) : undefined;
  // Allocated on first use: a chunk of one plain stream returns the decoder's own buffer instead.
  let out: Uint8Array | undefined;
  const dest = () => (out ??= new Uint8Array(nbytes));
  for (let b = 0; b < nblocks; b++) {
    const leftover = b === nblocks - 1 && nbytes % blocksize !== 0;
    const bsize = leftover ? nbytes % blocksize : blocksize;
    const split =
      !(flags & FLAG_DONT_SPLIT) && typesize <= MAX_SPLITS && bsize / typesize >= MIN_BUFFERSIZE && !leftover;
    const nsplits = split ? typesize : 1;
    const neblock = Math.floor(bsize / nsplits);
    let at = tmp ? 0 : b * blocksize;
    let off = view.getUint32(HEADER + 4 * b, true);
    for (let s = 0; s < nsplits; s++) {
      if (off + 4 > cbytes) throw new BloscError(`block ${b} starts past the end`);
      const n = view.getInt32(off, true);
      off += 4;
      if (n < 0 || off + n > cbytes) throw new BloscError(`block ${b} runs past the end`);
      if (n === neblock) {
        (tmp ?? dest()).set(src.subarray(off, off + n), at);
      } else if (format === FORMAT_LZ4 && lz4) {
        // lz4-napi takes the decoded size in the 4 bytes before the stream: Blosc's compressed size is
        // there, swapped for the call and put back.
        view.setUint32(off - 4, neblock, true);
        let got: Buffer;
        try {
          got = lz4.uncompressSync(src.subarray(off - 4, off + n));
        } finally {
          view.setInt32(off - 4, n, true);
        }
        if (got.byteLength !== neblock)
          throw new BloscError(`block ${b} decodes to ${got.byteLength} bytes, not ${neblock}`);
        // A chunk of one block in one stream, not shuffled (8-bit images): the decoded stream is the chunk.
        if (nblocks === 1 && nsplits === 1 && !tmp)
          return new Uint8Array(got.buffer, got.byteOffset, got.byteLength);
        (tmp ?? dest()).set(got, at);
      } else {
        const got = inflateSync(src.subarray(off, off + n));
        if (got.byteLength !== neblock)
          throw new BloscError(`block ${b} decodes to ${got.byteLength} bytes, not ${neblock}`);
        (tmp ?? dest()).set(got, at);
      }
      off += n;
      at += neblock;
    }
    if (tmp) unshuffle(typesize, tmp, dest(), b * blocksize, bsize);
  }
  return dest();
}
