// CAI's chunk decoders (src/formats/codecs) against chunks numcodecs wrote (scripts/fixtures/
// make_codec_fixtures.py): every case decodes to exactly the bytes NumPy had on every backend (the
// machine's c-blosc, liblz4 and libzstd; lz4-napi and Node's zlib; numcodecs' WebAssembly), returned or
// written into a slab of a larger buffer without touching its neighbours, on the calling thread and on
// the decoding threads; a damaged chunk is an error on each backend, not wrong values.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { test, type TestContext } from 'node:test';
import { gzipSync } from 'node:zlib';
import {
  codecBackends,
  decodeBytes,
  decodeChunk,
  decodeInto,
  decodesInPlace,
  decodeThreads,
  INLINE_BELOW,
  setDecodeThreads,
  unshuffle,
  useNativeLz4,
  useSystemLibraries,
  type CodecId,
} from '../../src/formats/codecs/index.js';
import { decodeBlosc } from '../../src/formats/codecs/blosc.js';
import { systemBlosc } from '../../src/formats/codecs/system-codecs.js';
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

/** The decoder chains a process can have, from the fastest to the last fallback. */
const BACKENDS = {
  'system libraries': { system: true, napi: true },
  'lz4-napi and node:zlib': { system: false, napi: true },
  'numcodecs WebAssembly': { system: false, napi: false },
} as const;
type Backend = keyof typeof BACKENDS;

function use(t: TestContext, backend: Backend): void {
  useSystemLibraries(BACKENDS[backend].system);
  useNativeLz4(BACKENDS[backend].napi);
  t.after(() => {
    useSystemLibraries(true);
    useNativeLz4(true);
  });
}

test('the machine libraries load here, and each fallback says what it is', (t) => {
  // (deflate, HDF5's filter, is deflate.ts' and its tests'.)
  const { deflate: _deflate, ...zarrCodecs } = codecBackends();
  assert.deepEqual(zarrCodecs, {
    blosc: 'native (c-blosc, libblosc.so.1)',
    lz4: 'native (liblz4.so.1)',
    zlib: "native (libdeflate.so.0, on koffi's threads), in place",
    zstd: 'native (libzstd.so.1)',
    blosclz: 'native (c-blosc, libblosc.so.1)',
  });
  assert.deepEqual(
    (['blosc', 'lz4', 'zstd', 'gzip', 'zlib'] as const).map((id) => decodesInPlace(id)),
    [true, true, true, true, true],
  );
  use(t, 'lz4-napi and node:zlib');
  assert.equal(codecBackends().zlib, 'native (node:zlib)');
  assert.equal(decodesInPlace('zlib'), false);
  assert.equal(codecBackends().lz4, 'native (lz4-napi)');
  assert.match(codecBackends().blosc, /frame reader over lz4 native \(lz4-napi\)/);
  assert.equal(codecBackends().zstd, 'WebAssembly (numcodecs)');
  assert.equal(decodesInPlace('blosc'), false);
  useNativeLz4(false);
  assert.equal(codecBackends().lz4, 'WebAssembly (numcodecs): lz4-napi turned off');
});

test('every numcodecs chunk decodes to the bytes NumPy had on every backend, returned or in place', async (t) => {
  assert.ok(CASES.length >= 16);
  for (const backend of Object.keys(BACKENDS) as Backend[]) {
    use(t, backend);
    for (const [name, c] of CASES) {
      const what = `${name} (${backend})`;
      const bytes = chunk(name);
      const copy = bytes.slice();
      const out = await decodeBytes(c.codec, bytes);
      assert.equal(out.byteLength, c.nbytes, what);
      assert.equal(sha(out), c.sha256, what);
      // Into a slab of a larger buffer, at an odd offset: its neighbours are left as they were.
      const big = new Uint8Array(c.nbytes + 64).fill(0xa5);
      await decodeInto(c.codec, bytes, big.subarray(33, 33 + c.nbytes));
      assert.equal(sha(big.subarray(33, 33 + c.nbytes)), c.sha256, what);
      assert.ok(
        big.subarray(0, 33).every((v) => v === 0xa5) && big.subarray(33 + c.nbytes).every((v) => v === 0xa5),
        what,
      );
      assert.deepEqual(bytes, copy, `${what}: the chunk is left as it was`);
    }
  }
});

test('Blosc: c-blosc decodes every compressor; without it lz4, lz4hc and zlib frames are read natively, the rest left to numcodecs', async (t) => {
  const covered = async () =>
    Object.fromEntries(
      await Promise.all(
        CASES.filter(([, c]) => c.codec === 'blosc').map(async ([name]) => [
          name,
          (await decodeBlosc(chunk(name))) !== undefined,
        ]),
      ),
    );
  const blosc = CASES.filter(([, c]) => c.codec === 'blosc').map(([name]) => name);
  assert.deepEqual(await covered(), Object.fromEntries(blosc.map((n) => [n, true])));
  use(t, 'lz4-napi and node:zlib');
  assert.deepEqual(await covered(), {
    'blosc-lz4-u1': true,
    'blosc-lz4-i2-blocks': true,
    'blosc-lz4-f4': true,
    'blosc-lz4-f4-blocks': true,
    'blosc-lz4-f8-noshuffle': true,
    'blosc-lz4hc-f8': true,
    'blosc-lz4-c16': true,
    'blosc-zlib-f4-blocks': true,
    'blosc-zstd-f4': false,
    'blosc-blosclz-i2': false,
    'blosc-lz4-f4-bitshuffle': false,
    'blosc-lz4-u2-stored': true,
  });
});

test('the decoding threads give the same bytes as the calling thread, take chunks of >= 64 KiB, and report errors', async (t) => {
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
  // Big enough for a thread: the thread's error comes back as the call's.
  await assert.rejects(
    decodeChunk('gzip', new Uint8Array(2 * INLINE_BELOW).fill(9)),
    /incorrect header check/,
  );
  setDecodeThreads(0);
  assert.equal(sha(await decodeChunk('gzip', new Uint8Array(gz))), sha(raw));
});

// Damage c-blosc (and zarr-python) rejects: the frame cut short, or its last bytes overwritten.
const cut = (b: Uint8Array) => b.slice(0, b.byteLength - 100);
const tail = (b: Uint8Array) => {
  const out = b.slice();
  out.fill(255, out.byteLength - 50);
  return out;
};
// Chunks whose structure shows a damaged tail on every backend (numcodecs' WebAssembly Blosc, used for
// blosclz and zstd frames without c-blosc, returns what it decoded; stored and bit-shuffled frames have
// no structure to check).
const TAIL_CHECKED = [
  'blosc-lz4-u1',
  'blosc-lz4-i2-blocks',
  'blosc-lz4-f4',
  'blosc-lz4-f4-blocks',
  'blosc-lz4-f8-noshuffle',
  'blosc-lz4-c16',
  'blosc-lz4hc-f8',
  'blosc-zlib-f4-blocks',
  'gzip-f4',
  'zlib-u1',
  'lz4-f8',
  'zstd-i2',
];

test('a damaged chunk is an error on every backend, and nothing is written past the slab it decodes into', async (t) => {
  for (const backend of Object.keys(BACKENDS) as Backend[]) {
    use(t, backend);
    for (const [name, c] of CASES) {
      const damaged = TAIL_CHECKED.includes(name)
        ? [cut(chunk(name)), tail(chunk(name))]
        : [cut(chunk(name))];
      for (const bad of damaged) {
        const big = new Uint8Array(c.nbytes + 64).fill(0xa5);
        await assert.rejects(
          decodeInto(c.codec, bad, big.subarray(0, c.nbytes)),
          Error,
          `${name} (${backend})`,
        );
        await assert.rejects(decodeBytes(c.codec, bad), Error, `${name} (${backend})`);
        assert.ok(
          big.subarray(c.nbytes).every((v) => v === 0xa5),
          `${name} (${backend}): past the slab`,
        );
      }
      // A slab of another size than the chunk decodes to.
      await assert.rejects(
        decodeInto(c.codec, chunk(name), new Uint8Array(c.nbytes - 1)),
        /bytes, not|decodes to|Invalid|Error/,
        `${name} (${backend}): wrong size`,
      );
    }
  }
  await assert.rejects(
    decodeBlosc(new Uint8Array(5)),
    /damaged Blosc chunk: 5 bytes, shorter than its header/,
  );
  await assert.rejects(
    decodeBlosc(cut(chunk('blosc-lz4-f4'))),
    /damaged Blosc chunk: header says \d+ bytes, \d+ present/,
  );
  await assert.rejects(
    decodeInto('blosc', chunk('blosc-lz4-f4'), new Uint8Array(10)),
    /damaged Blosc chunk: it decodes to \d+ bytes, not the 10 of a chunk/,
  );
  await assert.rejects(
    decodeBytes('lz4', new Uint8Array(3)),
    /damaged lz4 chunk: 3 bytes, shorter than its size/,
  );
});

test('c-blosc on 3,000 randomly damaged frames: an error or the full size, never a byte past the slab', () => {
  const c = systemBlosc();
  assert.ok(c);
  let x = 12345;
  const rnd = (n: number) => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 8) % n;
  let failed = 0;
  for (const [name, info] of CASES.filter(([, k]) => k.codec === 'blosc')) {
    const good = chunk(name);
    for (let k = 0; k < 250; k++) {
      const bad = good.slice();
      for (let f = 1 + rnd(6); f > 0; f--) bad[16 + rnd(bad.byteLength - 16)] = rnd(256);
      const big = new Uint8Array(info.nbytes + 256).fill(0xa5);
      const n = c.decode(bad, big.subarray(0, info.nbytes));
      assert.ok(n < 0 || n === info.nbytes, `${name}: ${n}`);
      if (n < 0) failed++;
      assert.ok(
        big.subarray(info.nbytes).every((v) => v === 0xa5),
        `${name}: written past the slab`,
      );
    }
  }
  assert.ok(failed > 1000, `${failed} of 3000 rejected`);
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
