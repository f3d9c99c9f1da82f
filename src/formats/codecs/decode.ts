// One function per stored codec id turning a chunk's bytes into its decoded bytes, with the fastest
// decoder this process has: the machine's libraries where they load (c-blosc, liblz4, libzstd: see
// system-codecs.ts), then lz4-napi and Node's zlib (native.ts), then numcodecs' WebAssembly. All give the
// same bytes. `decodeInto` writes a chunk straight into the caller's memory (a slab of a batch) when the
// decoder can; used directly (Zarr's row-chunked reads, small chunks) and on the decoding threads
// (codec-thread.ts).
import { gunzipSync, inflateSync } from 'node:zlib';
import { decodeBlosc, type Lz4BlockDecoder } from './blosc.js';
import { InflateError, inflateInto, inflatesInPlace } from './deflate.js';
import { nativeLz4 } from './native.js';
import { systemBlosc, systemLz4, systemZstd } from './system-codecs.js';

/** The byte codecs CAI decodes itself (Zarr's `blosc`, `gzip`, `zlib`, `lz4`, `zstd`, v2 and v3). */
export const CODEC_IDS = ['blosc', 'gzip', 'zlib', 'lz4', 'zstd'] as const;
export type CodecId = (typeof CODEC_IDS)[number];

/** A chunk that does not decode, or decodes to another size than its array's chunks. */
export class ChunkDecodeError extends Error {
  constructor(codec: CodecId, why: string, options?: ErrorOptions) {
    super(`damaged ${codec} chunk: ${why}`, options);
    this.name = 'ChunkDecodeError';
  }
}

interface WasmCodec {
  decode(bytes: Uint8Array): Promise<Uint8Array>;
}

// numcodecs' codecs need no configuration to decode: every frame describes itself.
const wasm = new Map<CodecId, Promise<WasmCodec>>();
function numcodecs(id: 'blosc' | 'lz4' | 'zstd'): Promise<WasmCodec> {
  let codec = wasm.get(id);
  if (!codec) {
    const load =
      id === 'blosc'
        ? import('numcodecs/blosc')
        : id === 'lz4'
          ? import('numcodecs/lz4')
          : import('numcodecs/zstd');
    codec = load.then((m) => m.default.fromConfig({ id }) as WasmCodec);
    wasm.set(id, codec);
  }
  return codec;
}

// numcodecs' WebAssembly LZ4 for the LZ4 streams of Blosc chunks when no native LZ4 loads: it rejects a
// damaged stream, where numcodecs' WebAssembly Blosc returns whatever it decoded.
const wasmLz4 = async (): Promise<Lz4BlockDecoder> => {
  const codec = await numcodecs('lz4');
  return async (prefixed, target) => {
    const got = await codec.decode(prefixed);
    if (got.byteLength !== target.byteLength)
      throw new Error(`decodes to ${got.byteLength} bytes, not ${target.byteLength}`);
    target.set(got);
  };
};

const own = (b: Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/**
 * The decoded bytes of one chunk stored with codec `id`. Throws on damaged bytes.
 *
 * @example const raw = await decodeBytes('blosc', await store.get('a.zarr/images/0.0.0.0'));
 */
export function decodeBytes(id: CodecId, bytes: Uint8Array): Promise<Uint8Array> {
  return decode(id, bytes, undefined);
}

/**
 * Decodes one chunk stored with codec `id` into `dest`, which must be exactly its decoded size: written
 * in place by the native decoders, copied from the others' output. Throws a {@link ChunkDecodeError}
 * (or the decoder's own error) on damaged bytes or a chunk of another size; `dest` then holds no
 * meaningful bytes.
 *
 * @example await decodeInto('blosc', chunk, batch.subarray(at, at + chunkBytes));
 */
export async function decodeInto(id: CodecId, bytes: Uint8Array, dest: Uint8Array): Promise<void> {
  if ((id === 'gzip' || id === 'zlib') && inflatesInPlace()) {
    try {
      await inflateInto(bytes, dest, id, `${id} chunk`);
    } catch (err) {
      if (err instanceof InflateError)
        throw new ChunkDecodeError(id, err.message.slice(err.what.length + 2), { cause: err });
      throw err;
    }
    return;
  }
  const out = await decode(id, bytes, dest);
  if (out === dest) return;
  if (out.byteLength !== dest.byteLength)
    throw new ChunkDecodeError(
      id,
      `it decodes to ${out.byteLength} bytes, not the ${dest.byteLength} of a chunk`,
    );
  dest.set(out);
}

/**
 * Whether {@link decodeInto} decodes chunks of codec `id` in place with one of the machine's libraries
 * (no allocation, no copy, ~10 GB/s for Blosc/LZ4 here; gzip/zlib by libdeflate on koffi's threads):
 * then a caller gains nothing from a decoding thread. The others (Node's zlib, lz4-napi, WebAssembly) allocate and are slower: worth a thread.
 *
 * @example if (decodesInPlace('blosc')) await decodeInto('blosc', raw, slab);
 */
export function decodesInPlace(id: CodecId): boolean {
  if (id === 'blosc') return systemBlosc() !== undefined;
  if (id === 'lz4') return systemLz4() !== undefined;
  if (id === 'zstd') return systemZstd() !== undefined;
  return inflatesInPlace(); // gzip, zlib: the machine's libdeflate
}

// `dest`, when given, is exactly the decoded size the caller expects; the result is `dest` when the
// decoder wrote into it, else its own bytes (of any size: decodeInto checks).
async function decode(id: CodecId, bytes: Uint8Array, dest: Uint8Array | undefined): Promise<Uint8Array> {
  switch (id) {
    case 'blosc':
      return (await decodeBlosc(bytes, dest, wasmLz4)) ?? (await (await numcodecs('blosc')).decode(bytes));
    case 'gzip':
      return own(gunzipSync(bytes));
    case 'zlib':
      return own(inflateSync(bytes));
    case 'lz4':
      return decodeLz4(bytes, dest);
    case 'zstd': {
      const z = systemZstd();
      const size = dest?.byteLength ?? z?.contentSize(bytes);
      if (!z || size === undefined) return (await numcodecs('zstd')).decode(bytes);
      const out = dest ?? new Uint8Array(size);
      const n = z.decode(bytes, out);
      if (n !== size)
        throw new ChunkDecodeError(
          id,
          n < 0 ? `libzstd could not decode it` : `it decodes to ${n} bytes, not ${size}`,
        );
      return out;
    }
  }
}

// numcodecs' LZ4: the decoded size (4 bytes, little-endian), then one LZ4 block.
async function decodeLz4(bytes: Uint8Array, dest: Uint8Array | undefined): Promise<Uint8Array> {
  if (bytes.byteLength < 4)
    throw new ChunkDecodeError('lz4', `${bytes.byteLength} bytes, shorter than its size`);
  const size = new DataView(bytes.buffer, bytes.byteOffset, 4).getUint32(0, true);
  if (dest && size !== dest.byteLength)
    throw new ChunkDecodeError('lz4', `it decodes to ${size} bytes, not the ${dest.byteLength} of a chunk`);
  const sys = systemLz4();
  if (sys) {
    const out = dest ?? new Uint8Array(size);
    const n = sys.decode(bytes.subarray(4), out);
    if (n !== size)
      throw new ChunkDecodeError(
        'lz4',
        n < 0 ? 'liblz4 found an invalid block' : `it decodes to ${n} bytes, not ${size}`,
      );
    return out;
  }
  const lz4 = nativeLz4();
  if (lz4) return own(lz4.uncompressSync(bytes));
  return (await numcodecs('lz4')).decode(bytes);
}
