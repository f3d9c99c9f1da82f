// The cost of decoding like torchvision: items/s of decode + imagenet preprocessing (Resize(256),
// CenterCrop(224), Normalize) with the exact path (full-size decode, Pillow's resampling in JS, the
// default) against the libvips path (`--resize-method fast`: shrink-on-load and libvips' resize), on
// 500 x 375 JPEGs (ImageNet's typical size) and 4000 x 3000 photos, in one process, 4 images in flight
// (a worker's decode concurrency). Interleaved repetitions; ratios are medians of pairwise ratios.
// Also prints each path's distance from the exact one (the exact path is torchvision's within 1 level:
// test/sources/torchvision.test.ts).
//
//   node dist/bench/resize.js [--small 48] [--large 6] [--reps 5]
import { readFile, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { decodeImage, resolvePreprocess, toRow } from '../src/formats/image/index.js';
import { mapSettled } from '../src/formats/partition/map-limit.js';
import { makeJpegs } from './datasets.js';
import { heading, interleave, line, median, ratios } from './print.js';

const { values } = parseArgs({
  options: {
    small: { type: 'string', default: '48' },
    large: { type: 'string', default: '6' },
    reps: { type: 'string', default: '5' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'cai-bench-resize') },
  },
});
const reps = Number(values.reps);
const dir = values.dir as string;

const exact = resolvePreprocess({ preset: 'imagenet' });
const fast = resolvePreprocess({ preset: 'imagenet', preprocess: { resizeMethod: 'fast' } });

async function load(sub: string, count: number, width: number, height: number): Promise<Uint8Array[]> {
  const d = path.join(dir, sub);
  await makeJpegs(d, count, width, height);
  const names = (await readdir(d))
    .filter((n) => n.endsWith('.jpg'))
    .sort()
    .slice(0, count);
  return Promise.all(names.map(async (n) => new Uint8Array(await readFile(path.join(d, n)))));
}

async function itemsPerSecond(images: readonly Uint8Array[], p: typeof exact): Promise<number> {
  const t0 = performance.now();
  const out = await mapSettled(images, 4, async (bytes, i) => toRow(await decodeImage(bytes, p, `#${i}`), p));
  if (out.some((o) => !o.ok)) throw new Error('a bench image failed to decode');
  return images.length / ((performance.now() - t0) / 1000);
}

async function gap(images: readonly Uint8Array[]): Promise<{ max: number; mean: number }> {
  const u8 = { resize: 256, centerCrop: 224, dtype: 'uint8' as const };
  const a = resolvePreprocess({ preprocess: { ...u8 } });
  const b = resolvePreprocess({ preprocess: { ...u8, resizeMethod: 'fast' } });
  let max = 0;
  let sum = 0;
  let n = 0;
  for (const bytes of images) {
    const x = toRow(await decodeImage(bytes, a, 'x'), a).data;
    const y = toRow(await decodeImage(bytes, b, 'y'), b).data;
    for (let i = 0; i < x.length; i++) {
      const d = Math.abs(Number(x[i]) - Number(y[i]));
      max = Math.max(max, d);
      sum += d;
      n++;
    }
  }
  return { max, mean: sum / n };
}

heading('Image decode + imagenet preprocessing: exact (PIL) against fast (libvips)');
for (const [label, sub, count, w, h] of [
  ['500 x 375 JPEG', 'small', Number(values.small), 500, 375],
  ['4000 x 3000 JPEG', 'large', Number(values.large), 4000, 3000],
] as const) {
  const images = await load(sub, count, w, h);
  await itemsPerSecond(images.slice(0, 4), exact);
  await itemsPerSecond(images.slice(0, 4), fast);
  const s = await interleave(reps, {
    exact: () => itemsPerSecond(images, exact),
    fast: () => itemsPerSecond(images, fast),
  });
  process.stdout.write(`${label} (${count} images, 4 in flight, ${reps} interleaved reps)\n`);
  line(
    'exact (default): full decode + Pillow resample',
    s.exact,
    'items/s',
    ratios(s.exact, s.fast),
    'of fast',
  );
  line('fast: libvips shrink-on-load + resize', s.fast, 'items/s');
  const g = await gap(images.slice(0, Math.min(8, images.length)));
  process.stdout.write(
    `  fast vs exact pixels: max ${g.max} levels, mean ${g.mean.toFixed(3)} (ms/image exact ${(1000 / median(s.exact)).toFixed(1)}, fast ${(1000 / median(s.fast)).toFixed(1)})\n`,
  );
}
