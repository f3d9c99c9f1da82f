// The decoders of the machine's compression libraries (system-library.ts loads them): c-blosc 1.x (the
// library numcodecs and zarr-python run), liblz4 and libzstd, each writing straight into memory the caller
// gives (a slab of the batch being filled), so a chunk's bytes are written once. Each is `undefined` when
// its library is missing or system libraries are off; callers fall back (see decode.ts). Every call
// checks what the library returns: a damaged chunk is an error, never short or stale bytes.
import type { LibraryHandle } from 'koffi';
import { systemLibrary, type SystemLibrary } from './system-library.js';

/** A system decoder: writes the decoded bytes of `src` into `dest` and returns how many it wrote, or a
 * negative number (the library's error code) when `src` is damaged or decodes to more than `dest` holds. */
export interface SystemDecoder {
  /** The shared library it calls, e.g. `libblosc.so.1`. */
  readonly file: string;
  decode(src: Uint8Array, dest: Uint8Array): number;
}

/** c-blosc, with the compressors it was built with (blosc frames name theirs in their flags). */
export interface SystemBlosc extends SystemDecoder {
  /** Blosc's compressor formats this build decodes (0 blosclz, 1 lz4/lz4hc, 2 snappy, 3 zlib, 4 zstd). */
  readonly formats: ReadonlySet<number>;
}

type Fn = (...args: unknown[]) => unknown;
const bound = new WeakMap<LibraryHandle, unknown>();

function bind<T>(found: SystemLibrary, make: (lib: LibraryHandle, file: string) => T): T | undefined {
  if (!found.ok) return undefined;
  let out = bound.get(found.lib) as T | undefined;
  if (out === undefined) {
    out = make(found.lib, found.file);
    bound.set(found.lib, out);
  }
  return out;
}

const BLOSC_FORMATS: Readonly<Record<string, number>> = {
  blosclz: 0,
  lz4: 1,
  lz4hc: 1,
  snappy: 2,
  zlib: 3,
  zstd: 4,
};

/**
 * c-blosc (`libblosc.so.1`), or `undefined`. Its `decode` is `blosc_decompress_ctx` on the calling
 * thread: it decodes every block, unshuffles (byte or bit) and returns the decoded size or a negative
 * code. c-blosc reads the frame's compressed size from its header, not from `src`: the caller checks
 * the header against `src.byteLength` first (see decode.ts).
 *
 * @example const b = systemBlosc(); if (b) b.decode(chunk, batch.subarray(at, at + n));
 */
export function systemBlosc(): SystemBlosc | undefined {
  return bind(
    systemLibrary('c-blosc', ['libblosc.so.1', 'libblosc.1.dylib', 'libblosc.dylib']),
    (lib, file) => {
      const decompress = lib.func(
        'int blosc_decompress_ctx(const void *src, _Out_ void *dest, size_t destsize, int numinternalthreads)',
      ) as Fn;
      const list = lib.func('const char *blosc_list_compressors(void)') as Fn;
      const formats = new Set(
        String(list())
          .split(',')
          .map((name) => BLOSC_FORMATS[name.trim()])
          .filter((f) => f !== undefined),
      );
      return {
        file,
        formats,
        decode: (src: Uint8Array, dest: Uint8Array) => decompress(src, dest, dest.byteLength, 1) as number,
      };
    },
  );
}

/**
 * liblz4 (`liblz4.so.1`), or `undefined`: `LZ4_decompress_safe` of one raw LZ4 block (no size prefix,
 * no frame), which never writes past `dest` and returns a negative number on a damaged block.
 *
 * @example const n = systemLz4()?.decode(block, out); // n === out.byteLength when whole
 */
export function systemLz4(): SystemDecoder | undefined {
  return bind(systemLibrary('liblz4', ['liblz4.so.1', 'liblz4.1.dylib', 'liblz4.dylib']), (lib, file) => {
    const safe = lib.func(
      'int LZ4_decompress_safe(const char *src, _Out_ char *dst, int compressedSize, int dstCapacity)',
    ) as Fn;
    return {
      file,
      decode: (src: Uint8Array, dest: Uint8Array) =>
        safe(src, dest, src.byteLength, dest.byteLength) as number,
    };
  });
}

/**
 * libzstd (`libzstd.so.1`), or `undefined`: `ZSTD_decompress` of whole frames; an error (a damaged
 * frame, or one decoding to more than `dest` holds) is -1. `contentSize` is a frame's decoded size
 * when its header records it, else `undefined`.
 *
 * @example const z = systemZstd(); const n = z?.contentSize(frame);
 */
export function systemZstd():
  (SystemDecoder & { contentSize(src: Uint8Array): number | undefined }) | undefined {
  return bind(systemLibrary('libzstd', ['libzstd.so.1', 'libzstd.1.dylib', 'libzstd.dylib']), (lib, file) => {
    const decompress = lib.func(
      'size_t ZSTD_decompress(_Out_ void *dst, size_t cap, const void *src, size_t n)',
    ) as Fn;
    const isError = lib.func('unsigned int ZSTD_isError(size_t code)') as Fn;
    const frameSize = lib.func(
      'unsigned long long ZSTD_getFrameContentSize(const void *src, size_t n)',
    ) as Fn;
    return {
      file,
      decode(src: Uint8Array, dest: Uint8Array) {
        const n = decompress(dest, dest.byteLength, src, src.byteLength) as number | bigint;
        return isError(n) || typeof n !== 'number' ? -1 : n;
      },
      contentSize(src: Uint8Array) {
        // ZSTD_CONTENTSIZE_UNKNOWN and _ERROR are the two largest 64-bit values: BigInts here.
        const n = frameSize(src, src.byteLength) as number | bigint;
        return typeof n === 'number' ? n : undefined;
      },
    };
  });
}
