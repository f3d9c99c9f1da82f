// Chunk decoders (Blosc, gzip, zlib, LZ4, zstd) with native code where it loads (the machine's c-blosc,
// liblz4 and libzstd; lz4-napi; Node's zlib), and a small pool of threads that runs them off the
// calling thread.
export { codecBackends, useNativeLz4 } from './native.js';
export {
  CODEC_IDS,
  ChunkDecodeError,
  decodeBytes,
  decodeInto,
  decodesInPlace,
  type CodecId,
} from './decode.js';
export { decodeChunk, decodeThreads, setDecodeThreads, INLINE_BELOW } from './pool.js';
export { unshuffle } from './shuffle.js';
export { useSystemLibraries } from './system-library.js';
