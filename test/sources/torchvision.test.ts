// CAI's image pipeline against torchvision's own, on one image of each kind a user has: the references
// are torchvision's tensors on `Image.open(f).convert('RGB')` (scripts/fixtures/make_torchvision_fixtures.py).
// Every comparison is before normalization, in 8-bit levels: within 1 level of torchvision's ToTensor.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { summaryText } from '../../src/cli/summary-text.js';
import { parseJobSpec } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { runJob } from '../../src/run/run.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { allPredictions } from '../helpers/demo-fixture.js';
import { decodeImage, resolvePreprocess, toRow, type DecodeNotes } from '../../src/formats/image/index.js';
import type { PreprocessOptions } from '../../src/formats/image/index.js';
import { differences, expectedNpy, fixture, FIXTURES } from './helpers.js';

const DIR = 'images/torchvision/';
const manifest = JSON.parse(readFileSync(`${FIXTURES}${DIR}manifest.json`, 'utf8')) as {
  images: Record<string, { mode: string; size: [number, number]; refs: Record<string, string> }>;
};
const names = Object.keys(manifest.images);

/** CAI's uint8 CHW row for an image: the same bytes torchvision's PILToTensor gives. */
async function cai(name: string, preprocess: PreprocessOptions, notes?: DecodeNotes): Promise<Uint8Array> {
  const p = resolvePreprocess({ preprocess: { dtype: 'uint8', layout: 'nchw', ...preprocess } });
  return toRow(await decodeImage(fixture(`${DIR}images/${name}`), p, name, notes), p).data as Uint8Array;
}

function within(got: Uint8Array, ref: string, levels: number, what: string): { max: number; mean: number } {
  const want = expectedNpy(`${DIR}ref/${ref}`);
  const d = differences(got, want.data as Uint8Array);
  assert.ok(d.max <= levels, `${what}: ${d.max} levels off torchvision (mean ${d.mean.toFixed(3)})`);
  return d;
}

test('the fixture set has every kind of image the issue lists', () => {
  const modes = new Set(names.map((n) => manifest.images[n].mode));
  for (const m of ['RGB', 'P', '1', 'L', 'LA', 'RGBA', 'CMYK', 'I', 'I;16']) assert.ok(modes.has(m), m);
  assert.equal(names.length, 19);
});

test('Resize(64) + CenterCrop(56) matches torchvision for every image and filter: exact bytes for lossless files, 1 level for JPEG/WebP', async () => {
  const worst: Record<string, number> = {};
  for (const name of names) {
    for (const interp of Object.keys(manifest.images[name].refs)) {
      if (interp === 'rgb') continue;
      const got = await cai(name, {
        resize: 64,
        centerCrop: 56,
        interpolation: interp as PreprocessOptions['interpolation'],
      });
      // Lossless formats give Pillow's exact bytes; JPEG and WebP decoders may differ by a level.
      const lossy = /\.(jpg|webp)$/.test(name);
      const d = within(got, `${name}.${interp}.npy`, lossy ? 1 : 0, `${name} ${interp}`);
      worst[interp] = Math.max(worst[interp] ?? 0, d.max);
    }
  }
  assert.deepEqual(Object.keys(worst).sort(), ['bicubic', 'bilinear', 'lanczos', 'nearest']);
});

test('a 1024 x 768 JPEG at the real Resize(256) + CenterCrop(224): no shrink-on-load, within 1 level', async () => {
  within(await cai('photo.jpg', { resize: 256, centerCrop: 224 }), 'photo.jpg.imagenet.npy', 1, 'photo 224');
});

test('a sharp-edged checkerboard shrunk 8x (256 to 32) is within 1 level', async () => {
  within(await cai('edges.png', { resize: 32, centerCrop: 28 }), 'edges.png.x8.npy', 1, 'edges x8');
});

test('the imagenet preset normalizes to torchvision ToTensor + Normalize within 1 level / std', async () => {
  const p = resolvePreprocess({ preset: 'imagenet', preprocess: { resize: 64, centerCrop: 56 } });
  const row = toRow(await decodeImage(fixture(`${DIR}images/photo.jpg`), p, 'photo.jpg'), p);
  const want = expectedNpy(`${DIR}ref/photo.jpg.normalized.npy`);
  assert.equal(row.dtype, 'float32');
  const d = differences(row.data as Float32Array, want.data as Float32Array);
  assert.ok(d.max <= 1 / 255 / 0.225 + 1e-6, `max ${d.max}`);
});

test("CMYK, 16-bit and transparent GIF decode to PIL's convert('RGB') at full size", async () => {
  for (const name of names.filter((n) => manifest.images[n].refs.rgb)) {
    const notes: DecodeNotes = { sixteenBit: 0 };
    const p = resolvePreprocess({ preprocess: { dtype: 'uint8', layout: 'nhwc' } });
    const got = toRow(await decodeImage(fixture(`${DIR}images/${name}`), p, name, notes), p)
      .data as Uint8Array;
    // A JPEG's IDCT may differ by one level between libjpeg-turbo builds; PNG, TIFF and GIF are exact.
    within(got, `${name}.rgb.npy`, name.endsWith('.jpg') ? 1 : 0, `${name} rgb`);
    assert.equal(notes.sixteenBit, name.includes('16') ? 1 : 0, `${name}: 16-bit counted`);
  }
});

test('16-bit rule "scale" maps 0-65535 to 0-255 instead of clipping', async () => {
  const p = resolvePreprocess({ preprocess: { dtype: 'uint8', layout: 'nhwc', sixteenBit: 'scale' } });
  const row = toRow(await decodeImage(fixture(`${DIR}images/gray16.png`), p, 'gray16.png'), p);
  const px = row.data as Uint8Array;
  // The ramp goes from 0 on the left to 65535 on the right: scaled, the right edge is 255, the middle ~128.
  assert.equal(px[0], 0);
  assert.equal(px[(128 - 1) * 3], 255);
  assert.ok(Math.abs(px[64 * 3] - 129) <= 1, `middle ${px[64 * 3]}`);
});

test('iccProfile "apply" converts an Adobe RGB JPEG to sRGB: far from torchvision, as it should be', async () => {
  const ignored = await cai('adobergb.jpg', { resize: 64, centerCrop: 56 });
  const applied = await cai('adobergb.jpg', { resize: 64, centerCrop: 56, iccProfile: 'apply' });
  within(ignored, 'adobergb.jpg.bilinear.npy', 1, 'adobergb ignored');
  const want = expectedNpy(`${DIR}ref/adobergb.jpg.bilinear.npy`);
  assert.ok(differences(applied, want.data as Uint8Array).max > 10, 'the profile changed the pixels');
});

test('exifOrientation "apply" turns a 160 x 100 JPEG with orientation 6 upright (100 x 160)', async () => {
  const p = resolvePreprocess({ preprocess: { dtype: 'uint8', layout: 'nhwc', exifOrientation: 'apply' } });
  const img = await decodeImage(fixture(`${DIR}images/exif_rotated.jpg`), p, 'exif_rotated.jpg');
  assert.deepEqual([img.width, img.height], [100, 160]);
  const kept = await decodeImage(fixture(`${DIR}images/exif_rotated.jpg`), resolvePreprocess({}), 'x');
  assert.deepEqual([kept.width, kept.height], [160, 100]);
});

test('resizeMethod "fast" is libvips: measurably off torchvision on the photo and the 8x checkerboard', async () => {
  const photo = await cai('photo.jpg', { resize: 256, centerCrop: 224, resizeMethod: 'fast' });
  const want = expectedNpy(`${DIR}ref/photo.jpg.imagenet.npy`);
  const d = differences(photo, want.data as Uint8Array);
  const edges = await cai('edges.png', { resize: 32, centerCrop: 28, resizeMethod: 'fast' });
  const e = differences(edges, expectedNpy(`${DIR}ref/edges.png.x8.npy`).data as Uint8Array);
  assert.ok(d.max > 1 || e.max > 1, `fast path: photo ${d.max}, edges ${e.max}`);
  console.log(
    `fast path gap: photo max ${d.max} mean ${d.mean.toFixed(2)}; edges x8 max ${e.max} mean ${e.mean.toFixed(2)}`,
  );
});

test('cai run over every kind: 16-bit images are counted in the records and the summary, with a warning line', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-tv-run-'));
  const model = path.join(dir, 'trivial.onnx');
  await writeFile(model, buildTrivial({ inputName: 'image', shape: ['N', 3, 56, 56] }));
  const output = path.join(dir, 'out');
  const summary = await runJob(
    parseJobSpec({
      input: `${FIXTURES}${DIR}images`,
      model,
      output,
      preset: 'imagenet',
      preprocess: { resize: 64, centerCrop: 56 },
      graphOptimization: 'disabled',
      partitionItems: 6,
      concurrency: 1,
      threads: 1,
      batchSize: 4,
    }),
    { retryBaseMs: 10 },
  );
  assert.equal(summary.status, 'succeeded');
  assert.equal(summary.items, names.length);
  assert.equal(summary.failed_items, 0);
  assert.equal(summary.sixteen_bit_images, 3);
  assert.equal(summary.sixteen_bit_rule, 'pil');
  assert.match(
    summaryText(summary),
    /warning: +3 16-bit images were reduced to 8 bits as PIL's convert\('RGB'\) does/,
  );
  const records = await Promise.all(
    (await readdir(path.join(output, 'results'))).map(
      async (f) => JSON.parse(await readFile(path.join(output, 'results', f), 'utf8')) as PartitionRecord,
    ),
  );
  assert.equal(
    records.reduce((a, r) => a + (r.sixteen_bit_images ?? 0), 0),
    3,
  );
  const rows = await allPredictions(output);
  const p = resolvePreprocess({ preset: 'imagenet', preprocess: { resize: 64, centerCrop: 56 } });
  for (const r of rows) {
    const name = String(r.id);
    const row = toRow(await decodeImage(fixture(`${DIR}images/${name}`), p, name), p);
    const want = (row.data as Float32Array).reduce((a, v) => a + v, 0) / row.data.length;
    assert.ok(Math.abs(Number(r.mean) - want) < 1e-4, `${name}: ${String(r.mean)} vs ${want}`);
  }
  await rm(dir, { recursive: true, force: true });
});

test('an image too big to decode at full size for the exact resize names --resize-method fast', async () => {
  const sharp = (await import('sharp')).default;
  // 8000 x 6000 = 48 million pixels: over the 40 million the exact path decodes; a flat PNG is tiny.
  const png = await sharp({ create: { width: 8000, height: 6000, channels: 3, background: '#808080' } })
    .png({ compressionLevel: 9 })
    .toBuffer();
  const p = resolvePreprocess({ preset: 'imagenet' });
  await assert.rejects(decodeImage(new Uint8Array(png), p, 'big.png'), (err: Error) => {
    assert.match(err.message, /big\.png.*more than 40000000 pixels.*--resize-method fast/s);
    return true;
  });
  const fast = resolvePreprocess({ preset: 'imagenet', preprocess: { resizeMethod: 'fast' } });
  const img = await decodeImage(new Uint8Array(png), fast, 'big.png');
  assert.deepEqual([img.width, img.height], [224, 224]);
});
