// zarrita decodes bytes with codecs looked up by name in its registry; CAI puts its own decoders there
// (src/formats/codecs: native LZ4 and zlib, decoded on a small pool of threads) in place of numcodecs.js'
// single-threaded WebAssembly and zarrita's DecompressionStream. Reading only: CAI writes no Zarr.
import * as zarr from 'zarrita';
import { decodeChunk, type CodecId } from '../codecs/index.js';

function codecFor(id: CodecId) {
  return class CaiCodec {
    readonly kind = 'bytes_to_bytes' as const;
    static fromConfig(): CaiCodec {
      return new CaiCodec();
    }
    encode(): Promise<Uint8Array> {
      return Promise.reject(new Error(`CAI reads Zarr only: it has no ${id} encoder`));
    }
    decode(bytes: Uint8Array): Promise<Uint8Array> {
      return decodeChunk(id, bytes);
    }
  };
}

// The names zarrita knows these codecs by: v3's, and v2's compressors as zarrita maps them.
const NAMES: readonly (readonly [string, CodecId])[] = [
  ['blosc', 'blosc'],
  ['numcodecs.blosc', 'blosc'],
  ['gzip', 'gzip'],
  ['numcodecs.gzip', 'gzip'],
  ['zlib', 'zlib'],
  ['numcodecs.zlib', 'zlib'],
  ['lz4', 'lz4'],
  ['numcodecs.lz4', 'lz4'],
  ['zstd', 'zstd'],
  ['numcodecs.zstd', 'zstd'],
];

type Entry = typeof zarr.registry extends Map<string, infer E> ? E : never;
const zarritas = new Map<string, Entry | undefined>(NAMES.map(([name]) => [name, zarr.registry.get(name)]));
const ours = new Map<string, Entry>(
  NAMES.map(([name, id]) => {
    const Codec = codecFor(id);
    return [name, () => Promise.resolve(Codec)];
  }),
);
let choice: boolean | undefined;

/**
 * Makes zarrita decode Blosc, gzip, zlib, LZ4 and zstd with CAI's decoders, or (`false`, for benchmarks
 * comparing the two) with its own again. Arrays opened before the call keep the decoders they have.
 *
 * @example useCaiCodecs(); const arr = await zarr.open(location, { kind: 'array' });
 */
export function useCaiCodecs(enabled = true): void {
  if (choice === enabled) return;
  choice = enabled;
  for (const [name, entry] of enabled ? ours : zarritas) {
    if (entry) zarr.registry.set(name, entry);
    else zarr.registry.delete(name);
  }
}

/**
 * Installs CAI's decoders unless {@link useCaiCodecs} chose already (every open calls this), and says
 * whether CAI decodes (so zarr-dataset.ts may read chunks itself) or zarrita does.
 */
export function defaultCodecs(): boolean {
  if (choice === undefined) useCaiCodecs(true);
  return choice === true;
}
