// One function per stored codec id turning a chunk's bytes into its decoded bytes, with the fastest
// decoder this process has: native where one loads (see native.ts), numcodecs' WebAssembly otherwise.
// Used directly (small chunks) and on the decoding threads (codec-thread.ts).
import { gunzipSync, inflateSync } from 'node:zlib';
import { decodeBloscNative } from './blosc.js';
import { nativeLz4 } from './native.js';

/** The byte codecs CAI decodes itself (Zarr's `blosc`, `gzip`, `zlib`, `lz4`, `zstd`, v2 and v3). */
export const CODEC_IDS = ['blosc', 'gzip', 'zlib', 'lz4', 'zstd'] as const;
export type CodecId = (typeof CODEC_IDS)[number];

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

const own = (b: Uint8Array) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/**
 * The decoded bytes of one chunk stored with codec `id`. Throws on damaged bytes.
 *
 * @example const raw = await decodeBytes('blosc', await store.get('a.zarr/images/0.0.0.0'));
 */
export async function decodeBytes(id: CodecId, bytes: Uint8Array): Promise<Uint8Array> {
  switch (id) {
    case 'blosc':
      return decodeBloscNative(bytes) ?? (await (await numcodecs('blosc')).decode(bytes));
    case 'gzip':
      return own(gunzipSync(bytes));
    case 'zlib':
      return own(inflateSync(bytes));
    case 'lz4': {
      const lz4 = nativeLz4();
      if (lz4) {
        if (bytes.byteLength < 4) throw new Error(`damaged LZ4 chunk: ${bytes.byteLength} bytes`);
        return own(lz4.uncompressSync(bytes));
      }
      return (await numcodecs('lz4')).decode(bytes);
    }
    case 'zstd':
      return (await numcodecs('zstd')).decode(bytes);
  }
}
