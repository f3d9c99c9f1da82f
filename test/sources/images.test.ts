// Images decoded with sharp against PIL: the decode itself, grayscale, and torchvision's Resize /
// CenterCrop / Normalize done by PIL and numpy (scripts/fixtures/make_image_fixtures.py).
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import {
  decodeImage,
  imageFiles,
  resolvePreprocess,
  rowShape,
  toRow,
} from '../../src/formats/image/index.js';
import { jpegSize } from '../../src/formats/image/jpeg-size.js';
import { groupItems } from '../../src/formats/partition/group-objects.js';
import { planPartitions } from '../../src/plan/plan.js';
import { FileStore } from '../../src/storage/file-store.js';
import type { JobSpec } from '../../src/job/spec.js';
import { differences, expectedNpy, fixture, FIXTURES, readAll, rejectsWith } from './helpers.js';

const facts = JSON.parse(readFileSync(`${FIXTURES}images/expected/images.json`, 'utf8')) as {
  images: Record<string, { format: string; mode: string; size: [number, number] }>;
  broken: string[];
};
const names = Object.keys(facts.images);
const lossy = (name: string) => facts.images[name].format === 'JPEG';

const raw = resolvePreprocess({ preprocess: { dtype: 'uint8', layout: 'nhwc' } });
const gray = resolvePreprocess({ preprocess: { dtype: 'uint8', layout: 'nhwc', channels: 'gray' } });
// torchvision's evaluation transform at a size the small fixtures allow: Resize(32), CenterCrop(28).
const small = resolvePreprocess({ preset: 'imagenet', preprocess: { resize: 32, centerCrop: 28 } });

test('every format decodes to the RGB pixels PIL decodes (JPEG within 2 levels)', async () => {
  assert.deepEqual([...new Set(names.map((n) => facts.images[n].format))].sort(), [
    'GIF',
    'JPEG',
    'PNG',
    'TIFF',
    'WEBP',
  ]);
  for (const name of names) {
    const row = toRow(await decodeImage(fixture(`images/photos/${name}`), raw, name), raw);
    const want = expectedNpy(`images/expected/${name}.rgb.npy`);
    assert.deepEqual(row.shape, want.shape, name);
    const d = differences(row.data as Uint8Array, want.data as Uint8Array);
    assert.ok(
      d.max <= (lossy(name) ? 2 : 0),
      `${name} (${facts.images[name].mode}): max difference ${d.max}`,
    );
  }
});

test('grayscale is PIL convert("L") (ITU-R 601-2 luma) for every mode, alpha and palette included', async () => {
  for (const name of names) {
    const row = toRow(await decodeImage(fixture(`images/photos/${name}`), gray, name), gray);
    const want = expectedNpy(`images/expected/${name}.gray.npy`);
    assert.deepEqual(row.shape, [...want.shape, 1], name);
    const d = differences(row.data as Uint8Array, want.data as Uint8Array);
    assert.ok(d.max <= (lossy(name) ? 2 : 0), `${name}: max difference ${d.max}`);
  }
});

test('resize / center crop / normalize matches torchvision done with PIL, within a level or two', async () => {
  for (const name of names) {
    const row = toRow(await decodeImage(fixture(`images/photos/${name}`), small, name), small);
    const want = expectedNpy(`images/expected/${name}.small.npy`);
    assert.deepEqual(row.shape, [3, 28, 28], name);
    assert.equal(row.dtype, 'float32');
    const d = differences(row.data as Float32Array, want.data as Float32Array);
    // One 8-bit level is 1 / (255 * 0.225) = 0.017 after normalization.
    assert.ok(d.max < 0.05 && d.mean < 0.01, `${name}: max ${d.max.toFixed(4)}, mean ${d.mean.toFixed(5)}`);
  }
});

test('layouts, BGR, uint8 and unscaled rows are rearrangements of the same pixels', async () => {
  const bytes = fixture('images/photos/a_landscape.jpg');
  const base = resolvePreprocess({ preprocess: { resize: 32, centerCrop: 28 } });
  const nchw = toRow(await decodeImage(bytes, base, 'a'), base).data as Float32Array;
  const nhwcP = resolvePreprocess({ preprocess: { resize: 32, centerCrop: 28, layout: 'nhwc' } });
  const nhwc = toRow(await decodeImage(bytes, nhwcP, 'a'), nhwcP);
  const bgrP = resolvePreprocess({ preprocess: { resize: 32, centerCrop: 28, channels: 'bgr' } });
  const bgr = toRow(await decodeImage(bytes, bgrP, 'a'), bgrP).data as Float32Array;
  const u8P = resolvePreprocess({ preprocess: { resize: 32, centerCrop: 28, dtype: 'uint8' } });
  const u8 = toRow(await decodeImage(bytes, u8P, 'a'), u8P);
  const keepP = resolvePreprocess({ preprocess: { resize: 32, centerCrop: 28, scale: false } });
  const keep = toRow(await decodeImage(bytes, keepP, 'a'), keepP).data as Float32Array;
  assert.deepEqual(nhwc.shape, [28, 28, 3]);
  assert.equal(u8.dtype, 'uint8');
  const plane = 28 * 28;
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < plane; i += 37) {
      const v = nchw[c * plane + i];
      assert.equal((nhwc.data as Float32Array)[i * 3 + c], v);
      assert.equal(bgr[(2 - c) * plane + i], v);
      assert.equal((u8.data as Uint8Array)[c * plane + i], Math.round(v * 255));
      assert.equal(keep[c * plane + i], (u8.data as Uint8Array)[c * plane + i]);
    }
  }
});

test('the imagenet preset is Resize(256), CenterCrop(224), ImageNet mean/std, RGB NCHW float32', () => {
  const p = resolvePreprocess({ preset: 'imagenet' });
  assert.deepEqual(rowShape(p), [3, 224, 224]);
  assert.equal(p.resize, 256);
  assert.deepEqual(p.mean, [0.485, 0.456, 0.406]);
  assert.deepEqual(p.std, [0.229, 0.224, 0.225]);
  assert.equal(rowShape(resolvePreprocess({})), undefined, 'no resize: the row size is the image size');
});

test('bad preprocessing options are refused with the field and what to do', () => {
  assert.throws(
    () => resolvePreprocess({ preprocess: { channels: 'gray', mean: [0.1, 0.2, 0.3] } }),
    /preprocess\.mean.*3 values for 1 channel/,
  );
  assert.throws(
    () => resolvePreprocess({ preprocess: { dtype: 'uint8', mean: [0.5] } }),
    /uint8 rows hold raw/,
  );
  assert.throws(() => resolvePreprocess({ preset: 'nope' }), /valid presets are imagenet, none/);
});

test('a folder is planned into partitions of keys by count or bytes, with no copy', async () => {
  const store = new FileStore(`${FIXTURES}images/photos`);
  const plan = await planPartitions(store, { job: { partitionItems: 4 } });
  assert.deepEqual(
    plan.map((p) => [p.id, p.source, p.items]),
    [
      ['1', 'image', 4],
      ['2', 'image', 4],
      ['3', 'image', 3],
    ],
  );
  assert.deepEqual(
    plan.flatMap((p) => p.keys),
    [...names, ...facts.broken].sort(),
  );
  const items = [10, 10, 10, 30, 5].map((bytes, i) => ({ keys: [`${i}.jpg`], bytes }));
  assert.deepEqual(
    groupItems(items, { partitionBytes: 25 }).map((p) => p.keys),
    [['0.jpg', '1.jpg'], ['2.jpg'], ['3.jpg'], ['4.jpg']],
  );
});

test('undecodable files are failed items with their key and reason; the rest of the partition is read', async () => {
  const store = new FileStore(`${FIXTURES}images/photos`);
  const keys = ['a_landscape.jpg', 'x_truncated.jpg', 'c_square.png', 'y_not_an_image.png'];
  const job = { preset: 'imagenet' } as JobSpec;
  const stream = await imageFiles.open(store, { id: '1', key: keys[0], bytes: 0, keys }, job);
  assert.equal(stream.items, 4);
  assert.equal(stream.hasIds, true);
  const batches = await readAll(stream, 3);
  assert.deepEqual(
    batches.map((b) => Array.from(b.indices)),
    [[0, 2], []],
  );
  assert.deepEqual(batches[0].ids, ['a_landscape.jpg', 'c_square.png']);
  assert.deepEqual(batches[0].rows.columns[0].shape, [2, 3, 224, 224]);
  const failed = batches.flatMap((b) => b.failed ?? []);
  assert.deepEqual(
    failed.map((f) => [f.index, f.id]),
    [
      [1, 'x_truncated.jpg'],
      [3, 'y_not_an_image.png'],
    ],
  );
  for (const f of failed) {
    assert.match(f.reason, /cannot be decoded as an image.*remove or replace it/);
    assert.doesNotMatch(f.reason, /[\r\n]/, 'one line');
  }
  assert.ok(failed[0].reason.includes('x_truncated.jpg'));
  assert.ok(stream.stats().bytes > 0);
});

test('images of different sizes without a resize fail individually, naming the fix', async () => {
  const store = new FileStore(`${FIXTURES}images/photos`);
  const keys = ['a_landscape.jpg', 'b_portrait.jpg'];
  const stream = await imageFiles.open(store, { id: '1', key: keys[0], bytes: 0, keys }, {} as JobSpec);
  const [batch] = await readAll(stream);
  assert.deepEqual(Array.from(batch.indices), [0]);
  assert.match(
    batch.failed?.[0].reason ?? '',
    /b_portrait\.jpg: decodes to float32 \[3, 56, 40\].*\[3, 48, 64\].*preprocess\.resize/,
  );
});

test('an image of another size fails alone even when it sorts first: the batch majority sets the shape', async () => {
  const store = new FileStore(`${FIXTURES}images/photos`);
  const keys = ['b_portrait.jpg', 'a_landscape.jpg', 'a_landscape.jpg'];
  const stream = await imageFiles.open(store, { id: '1', key: keys[0], bytes: 0, keys }, {} as JobSpec);
  const batches = await readAll(stream);
  assert.deepEqual(
    batches.flatMap((b) => Array.from(b.indices)),
    [1, 2],
  );
  const failed = batches.flatMap((b) => b.failed ?? []);
  assert.deepEqual(
    failed.map((f) => f.index),
    [0],
  );
  assert.match(
    failed[0].reason,
    /^b_portrait\.jpg: decodes to float32 \[3, 56, 40\] but the other items .* \[3, 48, 64\]/,
  );
  assert.doesNotMatch(failed[0].reason, /\n/);
});

test('a crop larger than the image is a failed item that says to resize', async () => {
  const p = resolvePreprocess({ preprocess: { centerCrop: 100 } });
  await rejectsWith(
    () => decodeImage(fixture('images/photos/c_square.png'), p, 'c_square.png'),
    ErrorCodes.unsupported,
    ['c_square.png', '36x36', '100x100', 'resize'],
  );
});

test('a JPEG size read from its frame header is the size PIL saw; other formats are left to sharp', () => {
  for (const name of names.filter(lossy)) {
    const [width, height] = facts.images[name].size;
    // 8-bit samples, 3 components (YCbCr): what the exact decode reads instead of asking libvips.
    const components = facts.images[name].mode === 'L' ? 1 : 3;
    assert.deepEqual(
      jpegSize(fixture(`images/photos/${name}`)),
      { width, height, precision: 8, components },
      name,
    );
  }
  const cmyk = jpegSize(fixture('images/torchvision/images/cmyk.jpg'));
  assert.equal(cmyk?.components, 4, 'a CMYK JPEG has 4 components');
  assert.equal(jpegSize(fixture('images/photos/c_square.png')), undefined);
  assert.equal(jpegSize(fixture('images/photos/y_not_an_image.png')), undefined);
  assert.equal(jpegSize(Uint8Array.from([0xff, 0xd8, 0xff, 0xda, 0, 2])), undefined, 'scan before a frame');
});
