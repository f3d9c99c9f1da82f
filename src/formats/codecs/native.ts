// The native decoders CAI uses when they load: LZ4 from lz4-napi (Rust's lz4_flex behind N-API, prebuilt
// binaries from npm for each platform) and zlib from Node itself; the machine's c-blosc, liblz4 and
// libzstd come first where they load (system-codecs.ts). A platform without lz4-napi's binary (or a
// package built without it) falls back to numcodecs' WebAssembly: same bytes, about 10x slower.
import { createRequire } from 'node:module';
import { deflateBackend, inflatesInPlace } from './deflate.js';
import { systemBlosc, systemLz4, systemZstd } from './system-codecs.js';

interface Lz4Napi {
  /** Decodes an LZ4 block preceded by its decoded size (4 bytes, little-endian). */
  uncompressSync(data: Uint8Array): Buffer;
}

let lz4: Lz4Napi | null | undefined;
let lz4Error = '';
let lz4Enabled = true;

/**
 * Turns lz4-napi off (or on again) for this process, so tests and benchmarks can compare the fallbacks.
 *
 * @example useNativeLz4(false) // LZ4 and Blosc/LZ4 without liblz4 decode with numcodecs' WebAssembly
 */
export function useNativeLz4(on: boolean): void {
  lz4Enabled = on;
}

/**
 * lz4-napi when its binary loads here, else `undefined` (see {@link codecBackends} for why).
 *
 * @example const lz4 = nativeLz4(); if (lz4) lz4.uncompressSync(sizePrefixed);
 */
export function nativeLz4(): Lz4Napi | undefined {
  if (!lz4Enabled) return undefined;
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
export function codecBackends(): Readonly<
  Record<'blosc' | 'lz4' | 'zlib' | 'zstd' | 'blosclz' | 'deflate', string>
> {
  const [blosc, sysLz4, zstd] = [systemBlosc(), systemLz4(), systemZstd()];
  const lz4 = sysLz4
    ? `native (${sysLz4.file})`
    : nativeLz4()
      ? 'native (lz4-napi)'
      : `WebAssembly (numcodecs): lz4-napi ${lz4Enabled ? `did not load: ${lz4Error}` : 'turned off'}`;
  return {
    blosc: blosc ? `native (c-blosc, ${blosc.file})` : `CAI's frame reader over lz4 ${lz4} and zlib`,
    lz4,
    // Zarr's gzip and zlib chunks: decoded in place by libdeflate when it loads (deflate.ts).
    zlib: inflatesInPlace() ? `${deflateBackend()}, in place` : 'native (node:zlib)',
    zstd: zstd ? `native (${zstd.file})` : 'WebAssembly (numcodecs)',
    blosclz: blosc?.formats.has(0) ? `native (c-blosc, ${blosc.file})` : 'WebAssembly (numcodecs)',
    deflate: deflateBackend(), // HDF5's deflate filter (deflate.ts)
  };
}
