// What CAI's HDF5 metadata readers share (chunk-index.ts, chunk-index-v4.ts, dense-links.ts): a cursor
// over little-endian fields sized by the superblock, the "not covered" signal, and the Jenkins lookup3
// checksum that HDF5 puts at the end of every metadata block of the newer formats (version 2 object
// headers, fixed and extensible arrays, version 2 B-trees, fractal heaps). A block whose checksum does not
// match is damaged: that is an error naming the file and the block, never a reason to guess.
import { CaiError, ErrorCodes } from '../../errors.js';

/** Why a dataset is not covered (it is then read through libhdf5). */
export class NotCovered extends Error {}

/** An undefined address (all bits set). */
export const UNDEFINED = -1;

/** A cursor over a metadata block; `o` and `l` are the superblock's sizes of offsets and lengths. */
export class Cursor {
  private readonly view: DataView;
  constructor(
    readonly bytes: Uint8Array,
    public at: number,
    private readonly o: number,
    private readonly l: number,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }
  u8(): number {
    return this.view.getUint8(this.at++);
  }
  u16(): number {
    const v = this.view.getUint16(this.at, true);
    this.at += 2;
    return v;
  }
  u32(): number {
    const v = this.view.getUint32(this.at, true);
    this.at += 4;
    return v;
  }
  /** An unsigned integer of `n` bytes; all bits set reads as {@link UNDEFINED}. */
  uint(n: number): number {
    if (n === 8) {
      const lo = this.view.getUint32(this.at, true);
      const hi = this.view.getUint32(this.at + 4, true);
      this.at += 8;
      if (hi === 0xffffffff && lo === 0xffffffff) return UNDEFINED;
      if (hi >= 0x200000) throw new NotCovered('an address beyond 2^53');
      return hi * 0x100000000 + lo;
    }
    let v = 0;
    let all = true;
    for (let i = 0; i < n; i++) {
      const b = this.view.getUint8(this.at + i);
      if (b !== 0xff) all = false;
      v += b * 2 ** (8 * i);
    }
    this.at += n;
    return all && n > 0 ? UNDEFINED : v;
  }
  addr(): number {
    return this.uint(this.o);
  }
  len(): number {
    return this.uint(this.l);
  }
  skip(n: number): this {
    this.at += n;
    return this;
  }
  ascii(n: number): string {
    return String.fromCharCode(...this.bytes.subarray(this.at, this.at + n));
  }
}

/** The file's metadata as the index structures read it. */
export interface Meta {
  /** Sizes of offsets and lengths (superblock). */
  readonly o: number;
  readonly l: number;
  /** Base address: added to every address read from the file. */
  readonly base: number;
  /** Bytes `[start, start + length)` of the file (absolute positions). */
  bytes(start: number, length: number): Promise<Uint8Array>;
  /**
   * A block of `length` bytes at `start` (absolute) that begins with the 4-byte signature `sig` (none if
   * empty) and ends
   * with its lookup3 checksum. Throws {@link NotCovered} when the signature is not there (this reader
   * misread the structure) and `E_CORRUPT` when the checksum does not match (the file is damaged).
   */
  checked(start: number, length: number, sig: string, what: string): Promise<Cursor>;
  /** Throws `E_CORRUPT` unless the 4 bytes at `at` hold the lookup3 checksum of `b[0, at)`. */
  verify(b: Uint8Array, at: number, what: string, start: number): void;
}

/** Signature and lookup3 checksum checks of a block read as a whole; see {@link Meta.checked}. */
export function checkBlock(
  b: Uint8Array,
  start: number,
  sig: string,
  what: string,
  file: string,
  o: number,
  l: number,
): Cursor {
  if (b.length < 4 + sig.length || (sig && String.fromCharCode(b[0], b[1], b[2], b[3]) !== sig))
    throw new NotCovered(`${what} at byte ${start} has no "${sig}" signature`);
  verifyChecksum(b, b.length - 4, what, start, file);
  return new Cursor(b, sig.length, o, l);
}

/** Throws `E_CORRUPT` unless the 4 bytes at `at` hold the lookup3 checksum of `b[0, at)`. */
export function verifyChecksum(b: Uint8Array, at: number, what: string, start: number, file: string): void {
  const stored = new DataView(b.buffer, b.byteOffset + at, 4).getUint32(0, true);
  const computed = lookup3(b.subarray(0, at));
  if (stored !== computed) {
    throw new CaiError(
      ErrorCodes.corrupt,
      file,
      `the HDF5 ${what} at byte ${start} fails its checksum (stored ${hex(stored)}, computed ${hex(computed)}): the file is damaged; write or download it again`,
    );
  }
}

const hex = (n: number) => `0x${n.toString(16).padStart(8, '0')}`;

const rot = (x: number, k: number) => (x << k) | (x >>> (32 - k));

/**
 * Bob Jenkins' lookup3 `hashlittle` of `k` with initial value `init` (HDF5's metadata checksum uses 0),
 * as published at http://www.burtleburtle.net/bob/c/lookup3.c (public domain).
 */
export function lookup3(k: Uint8Array, init = 0): number {
  let length = k.length;
  let a = (0xdeadbeef + length + init) | 0;
  let b = a;
  let c = a;
  let p = 0;
  const word = (i: number) => k[i] | (k[i + 1] << 8) | (k[i + 2] << 16) | (k[i + 3] << 24);
  while (length > 12) {
    a = (a + word(p)) | 0;
    b = (b + word(p + 4)) | 0;
    c = (c + word(p + 8)) | 0;
    a = (a - c) | 0;
    a ^= rot(c, 4);
    c = (c + b) | 0; // prettier-ignore
    b = (b - a) | 0;
    b ^= rot(a, 6);
    a = (a + c) | 0; // prettier-ignore
    c = (c - b) | 0;
    c ^= rot(b, 8);
    b = (b + a) | 0; // prettier-ignore
    a = (a - c) | 0;
    a ^= rot(c, 16);
    c = (c + b) | 0; // prettier-ignore
    b = (b - a) | 0;
    b ^= rot(a, 19);
    a = (a + c) | 0; // prettier-ignore
    c = (c - b) | 0;
    c ^= rot(b, 4);
    b = (b + a) | 0; // prettier-ignore
    length -= 12;
    p += 12;
  }
  if (length === 0) return c >>> 0;
  // The last 1-12 bytes, zero-padded, into a, b, c.
  const tail = [0, 0, 0];
  for (let i = 0; i < length; i++) tail[i >> 2] |= k[p + i] << (8 * (i & 3));
  a = (a + tail[0]) | 0;
  b = (b + tail[1]) | 0;
  c = (c + tail[2]) | 0;
  c ^= b;
  c = (c - rot(b, 14)) | 0; // prettier-ignore
  a ^= c;
  a = (a - rot(c, 11)) | 0; // prettier-ignore
  b ^= a;
  b = (b - rot(a, 25)) | 0; // prettier-ignore
  c ^= b;
  c = (c - rot(b, 16)) | 0; // prettier-ignore
  a ^= c;
  a = (a - rot(c, 4)) | 0; // prettier-ignore
  b ^= a;
  b = (b - rot(a, 14)) | 0; // prettier-ignore
  c ^= b;
  c = (c - rot(b, 24)) | 0; // prettier-ignore
  return c >>> 0;
}

/** Bytes needed to encode values up to `n` (libhdf5's "limit encoding size"). */
export const limitEncSize = (n: number) => Math.floor(Math.floor(Math.log2(n)) / 8) + 1;

/** Caches a promise per key. */
export function once<K, V>(map: Map<K, Promise<V>>, key: K, make: () => Promise<V>): Promise<V> {
  let p = map.get(key);
  if (!p) {
    p = make();
    map.set(key, p);
    // A failed read is not kept: the next call reads again (and fails again, or not).
    p.catch(() => map.delete(key));
  }
  return p;
}
