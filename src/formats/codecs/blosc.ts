// Blosc 1 chunks (numcodecs' Blosc, the default compressor of zarr-python 2). The machine's c-blosc
// (system-codecs.ts; the library zarr-python itself runs) decodes a whole chunk into the caller's memory
// at ~10 GB/s here on LZ4 image chunks. Without it, this reads the same frame (a 16-byte header, a table
// of block starts, each block split into up to `typesize` streams, then unshuffled) and hands each stream
// to a native decoder (liblz4, else lz4-napi; Node's zlib): ~1.2-1.6 GB/s. The layout follows c-blosc
// 1.x's `blosc_d`; chunks neither covers (blosclz, snappy, zstd or bit shuffle without c-blosc, Blosc 2
// frames) are left to numcodecs' WebAssembly by the caller.
import { inflateSync } from 'node:zlib';
import { nativeLz4 } from './native.js';
import { unshuffle } from './shuffle.js';
import { systemBlosc, systemLz4 } from './system-codecs.js';

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

/** A Blosc chunk that cannot be decoded: its header or a block does not add up. */
export class BloscError extends Error {
  constructor(why: string) {
    super(`damaged Blosc chunk: ${why}`);
    this.name = 'BloscError';
  }
}

/** A Blosc 1 chunk's 16-byte header. */
export interface BloscHeader {
  readonly version: number;
  readonly flags: number;
  readonly typesize: number;
  /** Decoded bytes. */
  readonly nbytes: number;
  readonly blocksize: number;
  /** The frame's own bytes, header included (<= the bytes given). */
  readonly cbytes: number;
}

/**
 * The header of a Blosc chunk, checked against the bytes present. Throws a {@link BloscError} when the
 * chunk is shorter than its header or than the size its header records.
 *
 * @example const { nbytes } = bloscHeader(chunk); const out = new Uint8Array(nbytes);
 */
export function bloscHeader(src: Uint8Array): BloscHeader {
  if (src.byteLength < HEADER) throw new BloscError(`${src.byteLength} bytes, shorter than its header`);
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  const cbytes = view.getUint32(12, true);
  if (cbytes > src.byteLength) throw new BloscError(`header says ${cbytes} bytes, ${src.byteLength} present`);
  return {
    version: src[0],
    flags: src[2],
    typesize: src[3],
    nbytes: view.getUint32(4, true),
    blocksize: view.getUint32(8, true),
    cbytes,
  };
}

/** Decodes one LZ4 block (`prefixed`: its decoded size in 4 bytes, then the block) into `target`. */
export type Lz4BlockDecoder = (prefixed: Uint8Array, target: Uint8Array) => void | Promise<void>;

/**
 * Decodes a Blosc 1 chunk into `dest` (allocated when not given; when given, it must be exactly the
 * chunk's decoded size): with c-blosc when the machine has it and it was built with the chunk's
 * compressor, else with CAI's frame reader, its LZ4 streams decoded by liblz4, lz4-napi or, given
 * `wasmLz4`, numcodecs' WebAssembly LZ4 (which, unlike numcodecs' WebAssembly Blosc, rejects damaged
 * streams), its zlib streams by Node. Returns the decoded bytes (`dest` when given), or `undefined`
 * when none of these covers the chunk (the caller then uses numcodecs' Blosc). Throws a
 * {@link BloscError} on a damaged chunk. `src` is left as it was.
 *
 * @example const bytes = (await decodeBlosc(chunk)) ?? (await numcodecsBlosc.decode(chunk));
 */
export async function decodeBlosc(
  src: Uint8Array,
  dest?: Uint8Array,
  wasmLz4?: () => Promise<Lz4BlockDecoder>,
): Promise<Uint8Array | undefined> {
  const h = bloscHeader(src);
  if (dest && dest.byteLength !== h.nbytes)
    throw new BloscError(`it decodes to ${h.nbytes} bytes, not the ${dest.byteLength} of a chunk`);
  if (h.nbytes === 0) return dest ?? new Uint8Array(0);
  const format = h.flags >> 5;
  const c = systemBlosc();
  if (c && (h.flags & FLAG_MEMCPYED || c.formats.has(format))) {
    // c-blosc trusts the header's sizes: checked above (cbytes <= the bytes present, nbytes = dest).
    const out = dest ?? new Uint8Array(h.nbytes);
    const n = c.decode(src, out);
    if (n !== h.nbytes) {
      throw new BloscError(
        n < 0 ? `c-blosc could not decode it (error ${n})` : `it decodes to ${n} bytes, not ${h.nbytes}`,
      );
    }
    return out;
  }
  let lz4: Lz4BlockDecoder | undefined;
  if (format === FORMAT_LZ4 && !(h.flags & FLAG_MEMCPYED)) {
    lz4 = lz4Native() ?? (wasmLz4 ? await wasmLz4() : undefined);
    if (!lz4) return undefined;
  }
  return readFrame(src, h, dest, lz4);
}

// liblz4 straight into the target, else lz4-napi (its own buffer, copied), else undefined.
function lz4Native(): Lz4BlockDecoder | undefined {
  const sys = systemLz4();
  if (sys) {
    return (prefixed, target) => {
      const got = sys.decode(prefixed.subarray(4), target);
      if (got !== target.byteLength)
        throw new Error(got < 0 ? 'not valid LZ4' : `decodes to ${got} bytes, not ${target.byteLength}`);
    };
  }
  const napi = nativeLz4();
  if (!napi) return undefined;
  return (prefixed, target) => {
    const got = napi.uncompressSync(prefixed);
    if (got.byteLength !== target.byteLength)
      throw new Error(`decodes to ${got.byteLength} bytes, not ${target.byteLength}`);
    target.set(got);
  };
}

/** CAI's own reader of a Blosc 1 frame (see the top of this file). */
async function readFrame(
  src: Uint8Array,
  h: BloscHeader,
  given: Uint8Array | undefined,
  lz4: Lz4BlockDecoder | undefined,
): Promise<Uint8Array | undefined> {
  const { version, flags, typesize, nbytes, blocksize, cbytes } = h;
  const view = new DataView(src.buffer, src.byteOffset, src.byteLength);
  if (version > 2) return undefined; // Blosc 2's extended header
  if (flags & FLAG_MEMCPYED) {
    if (HEADER + nbytes > cbytes) throw new BloscError('a stored (memcpyed) chunk is truncated');
    if (!given) return src.slice(HEADER, HEADER + nbytes);
    given.set(src.subarray(HEADER, HEADER + nbytes));
    return given;
  }
  const format = flags >> 5;
  if (flags & FLAG_BITSHUFFLE || !((format === FORMAT_LZ4 && lz4) || format === FORMAT_ZLIB))
    return undefined;
  if (blocksize === 0 || typesize === 0) throw new BloscError('block size or type size is 0');
  const shuffled = (flags & FLAG_SHUFFLE) !== 0 && typesize > 1;
  const nblocks = Math.ceil(nbytes / blocksize);
  if (HEADER + 4 * nblocks > cbytes) throw new BloscError('its table of blocks is truncated');
  const tmp = shuffled ? new Uint8Array(blocksize) : undefined;
  const out = given ?? new Uint8Array(nbytes);
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
      const target = (tmp ?? out).subarray(at, at + neblock);
      if (n === neblock) {
        target.set(src.subarray(off, off + n));
      } else if (lz4) {
        // The LZ4 decoders take the decoded size in the 4 bytes before the stream: Blosc's compressed
        // size is there, swapped for the call and put back.
        view.setUint32(off - 4, neblock, true);
        try {
          await lz4(src.subarray(off - 4, off + n), target);
        } catch (err) {
          throw new BloscError(`block ${b}: ${err instanceof Error ? err.message : String(err)}`);
        } finally {
          view.setInt32(off - 4, n, true);
        }
      } else {
        const got = inflateSync(src.subarray(off, off + n));
        if (got.byteLength !== neblock)
          throw new BloscError(`block ${b} decodes to ${got.byteLength} bytes, not ${neblock}`);
        target.set(got);
      }
      off += n;
      at += neblock;
    }
    if (tmp) unshuffle(typesize, tmp, out, b * blocksize, bsize);
  }
  return out;
}
