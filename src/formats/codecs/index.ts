// Chunk decoders (Blosc, gzip, zlib, LZ4, zstd) with native code where it loads, and a small pool of
// threads that runs them off the calling thread.
export { codecBackends } from './native.js';
export { CODEC_IDS, decodeBytes, type CodecId } from './decode.js';
export { decodeChunk, decodeThreads, setDecodeThreads, INLINE_BELOW } from './pool.js';
export { unshuffle } from './shuffle.js';
