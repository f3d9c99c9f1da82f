// Inflating a deflate stream (zlib, gzip or raw) into a buffer the caller gives: a slice of the batch
// being filled, or a scratch buffer reused chunk after chunk. The machine's libdeflate (~1.4-1.6x Node's
// zlib on one core, measured on noisy image chunks) runs through koffi's asynchronous calls on libuv's
// thread pool, so chunks inflate in parallel off the main thread; Node's zlib (on the same pool) is the
// fallback, with the same bytes out and the same errors. A stream that is damaged, decodes
// to fewer bytes than the destination holds, or would overflow it is an error: never silent zeros.
import { promisify } from 'node:util';
import zlib from 'node:zlib';
import { systemLibrary } from './system-library.js';

/** Which framing the stream has: zlib (HDF5's deflate filter, Zarr's zlib), gzip, or raw deflate. */
export type DeflateFormat = 'zlib' | 'gzip' | 'raw';

/** A stream that does not inflate to exactly the destination's size: why, in a sentence. */
export class InflateError extends Error {
  constructor(
    message: string,
    /** What the stream is (a chunk's name), as the caller gave it. */
    readonly what: string,
  ) {
    super(`${what}: ${message}`);
    this.name = 'InflateError';
  }
}

/** A C function bound by koffi: called in place, or `.async(...args, callback)` on koffi's threads. */
type AsyncFn = { (...args: unknown[]): unknown; async(...args: unknown[]): void };

interface Libdeflate {
  readonly file: string;
  readonly alloc: () => unknown;
  readonly decompress: Record<DeflateFormat, AsyncFn>;
  /** Decompressors not in use (one per call in flight: a decompressor is not thread-safe). */
  readonly free: unknown[];
  /** Calls waiting for a decompressor (more than MAX_DECOMPRESSORS in flight). */
  readonly waiting: (() => void)[];
  made: number;
}

/**
 * Decompressors made at most, so calls in flight (each ~32 KiB); more wait for one here. libuv's pool runs
 * 4 at a time; koffi keeps 8 calls' memory resident and allocates more for each call past 8.
 */
const MAX_DECOMPRESSORS = 8;
const RESULTS = ['', 'bad data', 'short output', 'insufficient space'];

let bound: Libdeflate | string | undefined;

function libdeflate(): Libdeflate | string {
  const lib = systemLibrary('libdeflate', ['libdeflate.so.0', 'libdeflate.so', 'libdeflate.0.dylib']);
  if (!lib.ok) return lib.why;
  if (bound === undefined) {
    try {
      const fn = (name: string) =>
        lib.lib.func(
          `int ${name}(void *d, const uint8_t *in, size_t inlen, uint8_t *out, size_t avail, size_t *actual)`,
        ) as AsyncFn;
      bound = {
        file: lib.file,
        alloc: lib.lib.func('void *libdeflate_alloc_decompressor()') as () => unknown,
        decompress: {
          zlib: fn('libdeflate_zlib_decompress'),
          gzip: fn('libdeflate_gzip_decompress'),
          raw: fn('libdeflate_deflate_decompress'),
        },
        free: [],
        waiting: [],
        made: 0,
      };
    } catch (err) {
      bound = `${lib.file} lacks a function CAI calls (${err instanceof Error ? err.message : String(err)})`;
    }
  }
  return bound;
}

/**
 * Which inflater {@link inflateInto} uses in this process, and why not libdeflate when it is not.
 *
 * @example deflateBackend() // 'native (libdeflate.so.0, on koffi's threads)'
 */
export function deflateBackend(): string {
  const l = libdeflate();
  return typeof l === 'string' ? `native (node:zlib): ${l}` : `native (${l.file}, on koffi's threads)`;
}

/**
 * Whether {@link inflateInto} inflates with the machine's libdeflate (in place, on koffi's threads)
 * rather than Node's zlib (which allocates its output and is copied).
 *
 * @example if (inflatesInPlace()) await inflateInto(chunk, slab, 'zlib', 'chunk 0.0');
 */
export function inflatesInPlace(): boolean {
  return typeof libdeflate() !== 'string';
}

async function takeDecompressor(l: Libdeflate): Promise<unknown> {
  const d = l.free.pop();
  if (d !== undefined) return d;
  if (l.made < MAX_DECOMPRESSORS) {
    const made = l.alloc();
    if (!made) throw new Error('libdeflate could not allocate a decompressor (out of memory)');
    l.made++;
    return made;
  }
  await new Promise<void>((resolve) => l.waiting.push(resolve));
  return takeDecompressor(l);
}

function giveBack(l: Libdeflate, d: unknown): void {
  l.free.push(d);
  l.waiting.shift()?.();
}

const NODE: Record<DeflateFormat, (b: Uint8Array, o: zlib.ZlibOptions) => Promise<Buffer>> = {
  zlib: promisify(zlib.inflate),
  gzip: promisify(zlib.gunzip),
  raw: promisify(zlib.inflateRaw),
};

/**
 * Inflates `src` into `dst`, which it must fill exactly (the decoded size is known: an HDF5 or Zarr
 * chunk's). `what` names the stream in errors. Throws {@link InflateError} when the stream is damaged or
 * decodes to another size. `dst` must not be touched until the promise settles (a thread writes it).
 *
 * @example await inflateInto(chunkBytes, batch.subarray(at, at + chunkSize), 'zlib', 'images chunk 3');
 */
export async function inflateInto(
  src: Uint8Array,
  dst: Uint8Array,
  format: DeflateFormat,
  what: string,
): Promise<void> {
  const l = libdeflate();
  if (typeof l === 'string') return nodeInflateInto(src, dst, format, what);
  const d = await takeDecompressor(l);
  let rc: number;
  try {
    // No `actual` size out: libdeflate then requires the stream to fill `dst` exactly (SHORT_OUTPUT
    // otherwise). An out-parameter in koffi async calls corrupted the heap here with more than 4 calls
    // in flight (koffi 3.3.4), which is another reason to pass none.
    // koffi holds no reference to an async call's arguments: the callback holds the buffers until the
    // thread is done with them, so the garbage collector cannot free them under it.
    const held: Uint8Array[] = [src, dst];
    rc = await new Promise<number>((resolve, reject) =>
      l.decompress[format].async(
        d,
        src,
        src.byteLength,
        dst,
        dst.byteLength,
        null,
        (err: unknown, r: number) => {
          held.length = 0;
          if (err) reject(err as Error);
          else resolve(r);
        },
      ),
    );
  } finally {
    giveBack(l, d);
  }
  if (rc === 0) return;
  const why = RESULTS[rc] ?? `libdeflate result ${rc}`;
  if (rc === 2)
    throw new InflateError(`it inflates to fewer than the ${dst.byteLength} bytes expected`, what);
  if (rc === 3)
    throw new InflateError(
      `it inflates to more than the ${dst.byteLength} bytes expected (libdeflate: ${why})`,
      what,
    );
  throw new InflateError(`it does not inflate (libdeflate: ${why}): the ${format} stream is damaged`, what);
}

async function nodeInflateInto(
  src: Uint8Array,
  dst: Uint8Array,
  format: DeflateFormat,
  what: string,
): Promise<void> {
  let out: Buffer;
  try {
    // One output piece of the expected size (+1, so a longer stream shows as longer), not 16 KiB pieces.
    out = await NODE[format](src, { chunkSize: Math.max(64, dst.byteLength + 1) });
  } catch (err) {
    const code = (err as { code?: string }).code;
    throw new InflateError(
      `it does not inflate (zlib: ${(err as Error).message}${code ? `, ${code}` : ''}): the ${format} stream is damaged`,
      what,
    );
  }
  if (out.byteLength > dst.byteLength)
    throw new InflateError(`it inflates to more than the ${dst.byteLength} bytes expected`, what);
  if (out.byteLength !== dst.byteLength)
    throw new InflateError(
      `it inflates to fewer than the ${dst.byteLength} bytes expected (${out.byteLength})`,
      what,
    );
  dst.set(out);
}
