// Mutation fuzzing of valid fixtures (.pt, .npz, .npy, safetensors, FITS, Parquet): truncations, bit flips
// and rewritten length fields, from a seeded PRNG so any failure replays. Every mutant must read as
// consistent items (the reader's count matches the rows and failed items it yields) or fail with a
// CaiError naming the file; the reading process must finish (no hang) within its peak-RSS bound.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { decodeInChild, type DecodeItem } from './forge.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));
const MiB = 1024 * 1024;
const PEAK_RSS_LIMIT = 512 * MiB;
const PER_FIXTURE = 40;
/** Another seed explores other mutants: CAI_FUZZ_SEED=7 node --test dist/test/hostile/fuzz.test.js */
const SEED = Number(process.env.CAI_FUZZ_SEED ?? 0x15c0ffee);

/** mulberry32: small, fast, seeded. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Fixture {
  readonly file: string;
  readonly ext: string;
  readonly job?: object;
  /** Byte offsets of little-endian u32 length fields worth lying in. */
  readonly lengths: (bytes: Uint8Array) => number[];
  /** FITS keeps lengths as text cards. */
  readonly textCards?: boolean;
}

function zipFields(bytes: Uint8Array): number[] {
  const out: number[] = [];
  for (let i = 0; i + 46 <= bytes.length; i++) {
    if (bytes[i] === 0x50 && bytes[i + 1] === 0x4b && bytes[i + 2] === 1 && bytes[i + 3] === 2) {
      out.push(i + 20, i + 24, i + 42);
    }
    if (bytes[i] === 0x50 && bytes[i + 1] === 0x4b && bytes[i + 2] === 5 && bytes[i + 3] === 6) {
      out.push(i + 12, i + 16);
    }
  }
  return out;
}

const FIXTURE_SET: Fixture[] = [
  { file: 'tensors/partition.pt', ext: '.pt', lengths: zipFields },
  { file: 'tensors/views.pt', ext: '.pt', lengths: zipFields },
  { file: 'tensors/compressed.npz', ext: '.npz', lengths: zipFields },
  { file: 'tensors/float32.npy', ext: '.npy', lengths: () => [8] },
  { file: 'tensors/tensors.safetensors', ext: '.safetensors', lengths: () => [0, 4] },
  {
    file: 'fits/cutouts3.fits',
    ext: '.fits',
    job: { fitsCutouts: true },
    lengths: () => [],
    textCards: true,
  },
  { file: 'fits/bitpix-32.fits', ext: '.fits', lengths: () => [], textCards: true },
  {
    file: 'parquet/ray.parquet',
    ext: '.parquet',
    job: { imageShape: [16, 20, 3] },
    lengths: (b) => [b.length - 8],
  },
];

function mutate(original: Uint8Array, f: Fixture, rand: () => number): { bytes: Uint8Array; how: string } {
  const bytes = original.slice();
  const pick = Math.floor(rand() * 3);
  if (pick === 0) {
    const n = Math.floor(rand() * bytes.length);
    return { bytes: bytes.subarray(0, n), how: `truncated to ${n}` };
  }
  if (pick === 1) {
    const flips = 1 + Math.floor(rand() * 8);
    const at: number[] = [];
    for (let i = 0; i < flips; i++) {
      const bit = Math.floor(rand() * bytes.length * 8);
      bytes[bit >>> 3] ^= 1 << (bit & 7);
      at.push(bit);
    }
    return { bytes, how: `bits ${at.join(',')} flipped` };
  }
  const values = [0, 1, 0x7fffffff, 0xffffffff, Math.floor(rand() * 2 ** 32), Math.floor(rand() * 4096)];
  const value = values[Math.floor(rand() * values.length)];
  if (f.textCards) {
    const text = new TextDecoder('latin1').decode(bytes);
    const cards = [...text.matchAll(/(NAXIS\d?|BITPIX|GCOUNT|PCOUNT) *= */g)];
    if (cards.length > 0) {
      const card = cards[Math.floor(rand() * cards.length)];
      const at = (card.index ?? 0) + 10;
      const shown = String(rand() < 0.5 ? value : -Math.floor(rand() * 100)).padStart(20, ' ');
      for (let i = 0; i < 20; i++) bytes[at + i] = shown.charCodeAt(i);
      return { bytes, how: `${card[1]} set to ${shown.trim()}` };
    }
  }
  const fields = f.lengths(bytes).filter((p) => p + 4 <= bytes.length);
  const at = fields.length
    ? fields[Math.floor(rand() * fields.length)]
    : Math.floor(rand() * (bytes.length - 4));
  new DataView(bytes.buffer, bytes.byteOffset).setUint32(at, value, true);
  return { bytes, how: `u32 at ${at} set to ${value}` };
}

test(`${PER_FIXTURE * FIXTURE_SET.length} mutants of valid fixtures: consistent items or a clear CaiError, bounded`, async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-fuzz-'));
  try {
    const rand = prng(SEED);
    const items: (DecodeItem & { how: string })[] = [];
    for (const f of FIXTURE_SET) {
      const original = new Uint8Array(await readFile(`${FIXTURES}${f.file}`));
      items.push({ key: `original-${path.basename(f.file)}`, job: f.job, how: 'unchanged' });
      await writeFile(path.join(dir, `original-${path.basename(f.file)}`), original);
      for (let i = 0; i < PER_FIXTURE; i++) {
        const { bytes, how } = mutate(original, f, rand);
        const key = `m${items.length}${f.ext}`;
        await writeFile(path.join(dir, key), bytes);
        items.push({ key, job: f.job, how: `${f.file} ${how}` });
      }
    }
    const report = await decodeInChild(dir, items, 300_000);
    const bad: string[] = [];
    const counts = { ok: 0, error: 0 };
    for (const [i, o] of report.outcomes.entries()) {
      counts[o.result]++;
      const what = `${items[i].key} (${items[i].how})`;
      if (items[i].how === 'unchanged') {
        if (o.result !== 'ok') bad.push(`${what}: the original must read: ${o.message}`);
      } else if (o.result === 'error' && (!o.caiError || !o.message?.includes(items[i].key))) {
        bad.push(`${what}: ${o.code} ${o.message}`);
      }
    }
    assert.deepEqual(bad, [], `mutants without a clear error:\n${bad.join('\n')}`);
    // The mutations must bite: most mutants of these fixtures are damaged files.
    assert.ok(counts.error > items.length / 3, JSON.stringify(counts));
    assert.ok(
      report.peakRss < PEAK_RSS_LIMIT,
      `peak RSS ${Math.round(report.peakRss / MiB)} MiB, limit ${PEAK_RSS_LIMIT / MiB}`,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
