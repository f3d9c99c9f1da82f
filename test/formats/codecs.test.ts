// CAI's chunk decoders (src/formats/codecs) against chunks numcodecs wrote (scripts/fixtures/
// make_codec_fixtures.py): every case decodes to exactly the bytes NumPy had, natively where CAI has a
// native decoder and through numcodecs.js where it has not, on the calling thread and on the decoding
// threads; a damaged chunk is an error, not wrong values.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  codecBackends,
  decodeBytes,
  decodeChunk,
  decodeThreads,
  INLINE_BELOW,
  setDecodeThreads,
  unshuffle,
  type CodecId,
} from '../../src/formats/codecs/index.js';
import { decodeBloscNative } from '../../src/formats/codecs/blosc.js';
import { FIXTURES } from '../sources/helpers.js';

const DIR = `${FIXTURES}codecs/`;
interface Case {
  codec: CodecId;
  dtype: string;
  nbytes: number;
  sha256: string;
}
const CASES = Object.entries(JSON.parse(readFileSync(`${DIR}expected.json`, 'utf8')) as Record<string, Case>);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const chunk = (name: string) => new Uint8Array(readFileSync(`${DIR}${name}.bin`));

test('the native LZ4 decoder loads on this machine (else Blosc/LZ4 fall back to WebAssembly, ~10x slower)', () => {
  assert.equal(codecBackends().lz4, 'native (lz4-napi)');
});

test('every numcodecs chunk decodes to the bytes NumPy had', async () => {
  assert.ok(CASES.length >= 16);
  for (const [name, c] of CASES) {
    const bytes = chunk(name);
    const copy = bytes.slice();
    const out = await decodeBytes(c.codec, bytes);
    assert.equal(out.byteLength, c.nbytes, name);
    assert.equal(sha(out), c.sha256, name);
    assert.deepEqual(bytes, copy, `${name}: the chunk is left as it was`);
  }
});

test('Blosc: lz4, lz4hc and zlib frames decode natively; blosclz, zstd and bit shuffle are left to numcodecs', () => {
  const native = CASES.filter(([, c]) => c.codec === 'blosc').map(([name]) => [
    name,
    decodeBloscNative(chunk(name)) !== undefined,
  ]);
  assert.deepEqual(Object.fromEntries(native), {
    'blosc-lz4-u1': true,
    'blosc-lz4-i2-blocks': true,
    'blosc-lz4-f4': true,
    'blosc-lz4-f4-blocks': true,
    'blosc-lz4-f8-noshuffle': true,
    'blosc-lz4-c16': true,
    'blosc-lz4hc-f8': true,
    'blosc-zlib-f4-blocks': true,
    'blosc-zstd-f4': false,
    'blosc-blosclz-i2': false,
    'blosc-lz4-f4-bitshuffle': false,
    'blosc-lz4-u2-stored': true,
  });
});

test('the decoding threads give the same bytes as the calling thread, and take chunks of >= 64 KiB', async (t) => {
  const before = decodeThreads();
  t.after(() => setDecodeThreads(before));
  // Incompressible enough to stay over the inline threshold once gzipped.
  const raw = new Uint8Array(3 * INLINE_BELOW);
  for (let i = 0, x = 1; i < raw.length; i++) raw[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  const gz = gzipSync(raw);
  assert.ok(gz.byteLength >= INLINE_BELOW);
  setDecodeThreads(2);
  const onThreads = await Promise.all([0, 1, 2, 3].map(() => decodeChunk('gzip', new Uint8Array(gz))));
  for (const out of onThreads) assert.equal(sha(out), sha(raw));
  const big = CASES.filter(([name]) => name.endsWith('-blocks'));
  for (const [name, c] of big) assert.equal(sha(await decodeChunk(c.codec, chunk(name))), c.sha256, name);
  setDecodeThreads(0);
  assert.equal(sha(await decodeChunk('gzip', new Uint8Array(gz))), sha(raw));
});

test('a damaged chunk is an error naming what is wrong, on the calling thread and on a decoding thread', async (t) => {
  const before = decodeThreads();
  t.after(() => setDecodeThreads(before));
  const good = chunk('blosc-lz4-f4-blocks');
  const truncated = good.slice(0, good.byteLength - 100);
  assert.throws(() => decodeBloscNative(truncated), /damaged Blosc chunk: header says \d+ bytes/);
  const garbled = good.slice();
  garbled.fill(7, 200, 400);
  assert.throws(() => decodeBloscNative(garbled), /damaged Blosc chunk|decompress|offset/i);
  assert.throws(() => decodeBloscNative(new Uint8Array(5)), /shorter than its header/);
  setDecodeThreads(2);
  // Big enough for a thread: the thread's error comes back as the call's.
  await assert.rejects(
    decodeChunk('gzip', new Uint8Array(2 * INLINE_BELOW).fill(9)),
    /incorrect header check/,
  );
});

test('unshuffle puts elements of 1-16 bytes back together, aligned or not, with a tail of odd bytes', () => {
  for (const size of [1, 2, 3, 4, 8, 16]) {
    for (const at of [0, 1, 4]) {
      const n = size * 37 + (size > 1 ? size - 1 : 0);
      const plain = Uint8Array.from({ length: n }, (_, i) => (i * 31 + size) & 255);
      const count = Math.floor(n / size);
      const shuffled = new Uint8Array(n);
      for (let j = 0; j < count; j++)
        for (let b = 0; b < size; b++) shuffled[b * count + j] = plain[j * size + b];
      shuffled.set(plain.subarray(count * size), count * size);
      const out = new Uint8Array(n + at);
      unshuffle(size, shuffled, out, at, n);
      assert.deepEqual(out.subarray(at), plain, `type size ${size} at ${at}`);
    }
  }
});
