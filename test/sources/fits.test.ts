// The FITS reader against astropy: every BITPIX, BSCALE/BZERO, BLANK, extensions, cubes, one file per
// band, cutout files read in ranges, and headers that lie (scripts/fixtures/make_fits_fixtures.py).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import {
  decodeFitsValues,
  findImageHdu,
  fitsFiles,
  openCutouts,
  readFitsItem,
  type FitsJobFields,
} from '../../src/formats/fits/index.js';
import type { JobSpec } from '../../src/job/spec.js';
import { planPartitions } from '../../src/plan/plan.js';
import { FileStore } from '../../src/storage/file-store.js';
import {
  assertSameValues,
  CountingStore,
  expectedNpy,
  fixture,
  FIXTURES,
  readAll,
  rejectsWith,
} from './helpers.js';

const facts = JSON.parse(readFileSync(`${FIXTURES}fits/expected/fits.json`, 'utf8')) as Record<
  string,
  { hdu: number; dtype: string; shape: number[]; nan: number }
>;
const expected = (key: string) => expectedNpy(`fits/expected/${key.replace(/\//g, '__')}.npy`);

async function decodeWhole(rel: string, hdu?: number | string) {
  const bytes = fixture(`fits/${rel}`);
  const found = await findImageHdu(async (s, e) => bytes.subarray(s, e), bytes.length, hdu, rel);
  const count = found.axes.reduce((a, b) => a * b, 1);
  return { hdu: found, values: decodeFitsValues(bytes.subarray(found.dataStart), found, count) };
}

test('every BITPIX decodes to astropy values and dtypes, big-endian to native', async () => {
  for (const bitpix of [8, 16, 32, 64, -32, -64]) {
    const rel = `bitpix${bitpix}.fits`;
    const { hdu, values } = await decodeWhole(rel);
    assert.equal(hdu.bitpix, bitpix);
    assert.deepEqual([...hdu.axes].reverse(), facts[rel].shape);
    assert.equal(values.dtype, facts[rel].dtype, rel);
    assertSameValues(values.data, expected(rel).data, rel);
  }
});

test('BSCALE/BZERO, the unsigned convention and BLANK give astropy physical values, BLANK as NaN', async () => {
  for (const rel of ['scaled16.fits', 'blank16.fits', 'blank_unscaled.fits']) {
    const { values } = await decodeWhole(rel);
    assert.equal(values.dtype, facts[rel].dtype, rel);
    assertSameValues(values.data, expected(rel).data, rel);
    assert.equal(Array.from(values.data as Float32Array).filter(Number.isNaN).length, facts[rel].nan, rel);
  }
  assert.ok(facts['blank16.fits'].nan > 0);
  // astropy reads BZERO 32768 int16 as uint16; CAI has no uint16 and widens exactly to int32.
  const { values } = await decodeWhole('uint16.fits');
  assert.equal(facts['uint16.fits'].dtype, 'uint16');
  assert.equal(values.dtype, 'int32');
  assertSameValues(values.data, expected('uint16.fits').data, 'uint16');
});

test('image extensions are found by default, by EXTNAME and by index', async () => {
  const first = await decodeWhole('mef.fits');
  assert.equal(first.hdu.index, facts['mef.fits'].hdu);
  assert.equal(first.hdu.extname, 'SCI');
  assertSameValues(first.values.data, expected('mef.fits').data, 'SCI');
  const byName = await decodeWhole('mef.fits', 'err');
  assert.equal(byName.hdu.index, facts['mef.fits#ERR'].hdu);
  assertSameValues(byName.values.data, expected('mef.fits#ERR').data, 'ERR');
  assert.equal((await decodeWhole('mef.fits', 2)).hdu.extname, 'ERR');
  await rejectsWith(() => decodeWhole('mef.fits', 'VAR'), ErrorCodes.notFound, [
    'mef.fits',
    'no HDU named "VAR"',
    'SCI',
    'ERR',
  ]);
  await rejectsWith(() => decodeWhole('mef.fits', 0), ErrorCodes.unsupported, ['HDU 0', 'not an image']);
});

test('a header that promises more data than the file holds is an error naming the file and the sizes', async () => {
  const err = await rejectsWith(() => decodeWhole('lying.fits'), ErrorCodes.corrupt, [
    'lying.fits',
    'promises 16384 data bytes',
    'NAXIS 64 x 64',
    'BITPIX -32',
    'bytes short',
    'write it again',
  ]);
  assert.equal(err.object, 'lying.fits');
  const text = new TextEncoder().encode(
    'SIMPLE? no, this is a text file that is long enough to fill a card. '.repeat(50),
  );
  await rejectsWith(
    () => findImageHdu(async (s, e) => text.subarray(s, e), text.length, undefined, 'notes.fits'),
    ErrorCodes.corrupt,
    ['notes.fits', 'no SIMPLE or XTENSION card'],
  );
});

test('a folder of cubes: each cube is one [bands, H, W] item; a NaN fails only its item', async () => {
  const store = new FileStore(`${FIXTURES}fits/cubes`);
  const [partition] = await planPartitions(store, { job: {} });
  assert.equal(partition.source, 'fits');
  assert.deepEqual(partition.keys, ['c0.fits', 'c1.fits', 'c2.fits', 'c3.fits']);
  const batches = await readAll(await fitsFiles.open(store, partition, {} as JobSpec), 3);
  const rows = batches.filter((b) => b.rows.items > 0);
  assert.deepEqual(rows[0].rows.columns[0].shape, [3, 5, 8, 8]);
  const c1 = (rows[0].rows.columns[0].data as Float32Array).subarray(320, 640);
  assertSameValues(c1, expected('cubes/c1.fits').data, 'c1');
  const failed = batches.flatMap((b) => b.failed ?? []);
  assert.deepEqual(
    failed.map((f) => [f.index, f.id]),
    [[3, 'c3.fits']],
  );
  assert.match(failed[0].reason, /c3\.fits: holds 1 NaN value of 320.*--nan 0/);
});

test('the NaN policy keeps NaN or replaces it when asked', async () => {
  const bytes = fixture('fits/cubes/c3.fits');
  const kept = await readFitsItem(bytes, 'c3.fits', { nan: 'keep' });
  assert.equal(Array.from(kept.data as Float32Array).filter(Number.isNaN).length, 1);
  const zeroed = await readFitsItem(bytes, 'c3.fits', { nan: -1 });
  const want = expected('cubes/c3.fits').data as Float32Array;
  const i = want.findIndex(Number.isNaN);
  assert.equal((zeroed.data as Float32Array)[i], -1);
  assert.equal((zeroed.data as Float32Array)[i + 1], want[i + 1]);
});

test('a cube with the wrong band count among others is a failed item naming both shapes', async () => {
  const store = new FileStore(`${FIXTURES}fits`);
  const keys = ['cube.fits', 'wrong_bands.fits'];
  const [batch] = await readAll(
    await fitsFiles.open(store, { id: '1', key: keys[0], bytes: 0, keys }, {} as JobSpec),
  );
  assert.deepEqual(batch.ids, ['cube.fits']);
  assert.match(
    batch.failed?.[0].reason ?? '',
    /wrong_bands\.fits: decodes to float32 \[3, 8, 8\] but .* \[5, 16, 16\]/,
  );
});

test('one file per band: bands stacked in the given order; a missing band fails its item by name', async () => {
  const store = new FileStore(`${FIXTURES}fits/bands`);
  const job = { fitsBands: ['r', 'g', 'i'], fitsPattern: '{id}_{band}.fits' };
  const plan = await planPartitions(store, { job });
  assert.equal(plan.length, 1);
  assert.equal(plan[0].items, 3);
  const batches = await readAll(await fitsFiles.open(store, plan[0], job as JobSpec));
  const [batch] = batches;
  assert.deepEqual(batch.ids, ['obj1', 'obj2']);
  assert.deepEqual(batch.rows.columns[0].shape, [2, 3, 8, 8]);
  const data = batch.rows.columns[0].data as Float32Array;
  ['r', 'g', 'i'].forEach((band, b) =>
    assertSameValues(
      data.subarray(192 + b * 64, 192 + (b + 1) * 64),
      expected(`bands/obj2_${band}.fits`).data,
      band,
    ),
  );
  assert.deepEqual(
    batch.failed?.map((f) => [f.index, f.id]),
    [[2, 'obj3']],
  );
  assert.match(batch.failed?.[0].reason ?? '', /obj3: lacks band i \(no obj3_i\.fits\)/);
});

test('files that do not follow the band pattern are refused at planning, naming some', async () => {
  const store = new FileStore(`${FIXTURES}fits`);
  await rejectsWith(
    () => planPartitions(store, { job: { format: 'fits', fitsBands: ['g', 'r'] } }),
    ErrorCodes.option,
    ['do not match "{id}_{band}.fits"', 'bitpix'],
  );
});

test('cutout files: NAXIS4 items of [bands, H, W] read by ranges, row slices included', async () => {
  const store = new CountingStore(new FileStore(`${FIXTURES}fits`));
  const size = fixture('fits/cutouts4.fits').length;
  const job: FitsJobFields = { fitsCutouts: true, fitsHdu: 'CUTOUTS' };
  const whole = await readAll(await openCutouts(store, 'cutouts4.fits', size, job), 4);
  const want = expected('cutouts4.fits').data as Float32Array;
  assert.deepEqual(
    whole.map((b) => b.rows.columns[0].shape),
    [
      [4, 2, 8, 8],
      [2, 2, 8, 8],
    ],
  );
  assertSameValues(
    Float32Array.from([...whole.flatMap((b) => Array.from(b.rows.columns[0].data as Float32Array))]),
    want,
    'cutouts4',
  );
  assert.deepEqual(whole[1].ids, ['cutouts4.fits#4', 'cutouts4.fits#5']);
  assert.equal(store.whole.length, 0, 'never read whole');
  store.ranges.length = 0;
  const slice = await readAll(await openCutouts(store, 'cutouts4.fits', size, job, [2, 5]), 2);
  assert.deepEqual(
    slice.map((b) => Array.from(b.indices)),
    [[0, 1], [2]],
  );
  assertSameValues(
    slice[0].rows.columns[0].data as Float32Array,
    want.subarray(2 * 128, 4 * 128),
    'rows 2-3',
  );
  const dataRanges = store.ranges.filter(
    (r) => r.end - r.start === 2 * 128 * 4 || r.end - r.start === 128 * 4,
  );
  assert.equal(dataRanges.length, 2, 'one ranged read per batch');

  const three = await readAll(
    await openCutouts(store, 'cutouts3.fits', fixture('fits/cutouts3.fits').length, { fitsCutouts: true }),
    16,
  );
  assert.deepEqual(three[0].rows.columns[0].shape, [10, 1, 8, 8]);
  assertSameValues(three[0].rows.columns[0].data as Float32Array, expected('cutouts3.fits').data, 'cutouts3');
});

test('a NAXIS4 file read as one item says to set fitsCutouts', async () => {
  await rejectsWith(
    () => readFitsItem(fixture('fits/cutouts4.fits'), 'cutouts4.fits', {}),
    ErrorCodes.unsupported,
    ['cutouts4.fits', '6 cutouts of 2x8x8', '--fits-cutouts'],
  );
});

test('with the store, cutout files are planned as row ranges of partitionItems', async () => {
  const store = new FileStore(`${FIXTURES}fits`);
  const objects = [{ key: 'cutouts3.fits', size: fixture('fits/cutouts3.fits').length }];
  const plan = await fitsFiles.planWithStore(store, objects, { fitsCutouts: true, partitionItems: 4 });
  assert.deepEqual(
    plan.map((p) => [p.id, p.rows]),
    [
      ['cutouts3__0-4', [0, 4]],
      ['cutouts3__4-8', [4, 8]],
      ['cutouts3__8-10', [8, 10]],
    ],
  );
  const last = await readAll(await fitsFiles.open(store, plan[2], { fitsCutouts: true } as JobSpec));
  assert.deepEqual(last[0].ids, ['cutouts3.fits#8', 'cutouts3.fits#9']);
  assertSameValues(
    last[0].rows.columns[0].data as Float32Array,
    (expected('cutouts3.fits').data as Float32Array).subarray(8 * 64),
    'rows 8-9',
  );
});
