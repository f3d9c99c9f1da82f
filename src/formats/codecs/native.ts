// The native decoders CAI uses when they load: LZ4 from lz4-napi (Rust's lz4_flex behind N-API, prebuilt
// binaries from npm for each platform) and zlib from Node itself. A platform without lz4-napi's binary
// (or a package built without it) falls back to numcodecs' WebAssembly: same bytes, about 10x slower.
import { createRequire } from 'node:module';
import { deflateBackend } from './deflate.js';

interface Lz4Napi {
  /** Decodes an LZ4 block preceded by its decoded size (4 bytes, little-endian). */
  uncompressSync(data: Uint8Array): Buffer;
}

let lz4: Lz4Napi | null | undefined;
let lz4Error = '';

/**
 * lz4-napi when its binary loads here, else `undefined` (see {@link codecBackends} for why).
 *
 * @example const lz4 = nativeLz4(); if (lz4) lz4.uncompressSync(sizePrefixed);
 */
export function nativeLz4(): Lz4Napi | undefined {
  if (lz4 === undefined) {
    try {
      lz4 = createRequire(import.meta.url)('lz4-napi') as Lz4Napi;
    } catch (err) {
      lz4 = null;
      lz4Error = err instanceof Error ? err.message.split('\n')[0] : String(err);
    }
  }
  return lz4 ?? undefined;
}

/**
 * Which decoder each codec uses in this process, for benchmarks and diagnostics.
 *
 * @example codecBackends() // { lz4: 'native (lz4-napi)', zlib: 'native (node:zlib)', ... }
 */
export function codecBackends(): Readonly<Record<'lz4' | 'zlib' | 'zstd' | 'blosclz' | 'deflate', string>> {
  return {
    lz4: nativeLz4() ? 'native (lz4-napi)' : `WebAssembly (numcodecs): lz4-napi did not load: ${lz4Error}`,
    zlib: 'native (node:zlib)',
    zstd: 'WebAssembly (numcodecs)',
    blosclz: 'WebAssembly (numcodecs)',
    deflate: deflateBackend(), // HDF5's deflate filter (deflate.ts)
  };
}
