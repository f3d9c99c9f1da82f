// The benchmarks' datasets, made on first use and reused: the seeds' .pt partitions, a folder of JPEGs
// (synthetic photos), Parquet in the Ray benchmark's layout, and models built by the zoo.
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parquetWriteBuffer } from 'hyparquet-writer';
import sharp from 'sharp';
import { makeGalaxies } from '../src/demo/galaxies.js';
import { Random } from '../src/tensor/random.js';
import { encodePtDataset } from '../src/formats/writers/pt-writer.js';
import { naturalCompare } from '../src/storage/natural-sort.js';

/** Galaxies per partition of the seeds' 25 MB partitions. */
export const SEEDS_25MB_ITEMS = 1278;

/** Writes `count` CAI partitions (`torch.save(TensorDataset(images, magnitudes, redshift))` layout). */
export async function makeCaiPartitions(
  dir: string,
  count: number,
  items = SEEDS_25MB_ITEMS,
  firstSeed = 1,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  // Partitions written by an older writer (members not 64-byte aligned, so every tensor was copied on
  // load) would measure a cost the current writer and torch.save do not have: write them again.
  const marker = path.join(dir, '.layout');
  const fresh = (await readFile(marker, 'utf8').catch(() => '')) === PT_LAYOUT;
  const have = new Set(fresh ? await readdir(dir) : []);
  for (let p = 1; p <= count; p++) {
    if (have.has(`${p}.pt`)) continue;
    const g = makeGalaxies(items, firstSeed + p);
    const z = { dtype: 'float32' as const, shape: [items], data: new Float32Array(items).fill(0.1) };
    await writeFile(path.join(dir, `${p}.pt`), encodePtDataset([g.images, g.magnitudes, z], String(p)));
  }
  await writeFile(marker, PT_LAYOUT);
}

// What makeCaiPartitions' files are; a folder marked otherwise is written again.
const PT_LAYOUT = 'CAI pt-writer: members 64-byte aligned, as torch.save lays them out\n';

/** Partition files of a folder in natural order. */
export async function partitionFiles(dir: string, ext = '.pt'): Promise<string[]> {
  return (await readdir(dir))
    .filter((f) => f.endsWith(ext))
    .sort(naturalCompare)
    .map((f) => path.join(dir, f));
}

/**
 * HWC 8-bit pixels of a synthetic photo: smooth colour gradients, a few discs and some noise, so JPEG
 * sizes and decode costs are like a photo's rather than a flat image's.
 */
export function syntheticPixels(width: number, height: number, seed: number): Uint8Array {
  const r = new Random(seed);
  const rnd = () => r.uniform();
  const px = new Uint8Array(width * height * 3);
  const base = [rnd() * 255, rnd() * 255, rnd() * 255];
  const grad = [rnd() - 0.5, rnd() - 0.5, rnd() - 0.5];
  const discs = Array.from({ length: 6 }, () => ({
    x: rnd() * width,
    y: rnd() * height,
    r2: (rnd() * Math.min(width, height) * 0.3) ** 2,
    c: [rnd() * 255, rnd() * 255, rnd() * 255],
  }));
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      let c = [0, 1, 2].map((k) => base[k] + grad[k] * (x + y) * 0.5);
      for (const d of discs) if ((x - d.x) ** 2 + (y - d.y) ** 2 < d.r2) c = d.c;
      for (let k = 0; k < 3; k++) px[i + k] = Math.max(0, Math.min(255, c[k] + (rnd() - 0.5) * 24));
    }
  }
  return px;
}

/** Writes `count` JPEGs of `width` x `height` (ImageNet's typical 500 x 375) named `img_00001.jpg`... */
export async function makeJpegs(dir: string, count: number, width = 500, height = 375): Promise<void> {
  await mkdir(dir, { recursive: true });
  const have = new Set(await readdir(dir));
  for (let i = 1; i <= count; i++) {
    const name = `img_${String(i).padStart(5, '0')}.jpg`;
    if (have.has(name)) continue;
    const jpeg = await sharp(syntheticPixels(width, height, i), { raw: { width, height, channels: 3 } })
      .jpeg({ quality: 90 })
      .toBuffer();
    await writeFile(path.join(dir, name), jpeg);
  }
}

/**
 * Writes `files` Parquet files in the Ray batch-inference benchmark's layout: one column `image`, a
 * LIST<UINT_8> of a `side` x `side` x 3 HWC image per row, `rows` rows a file (the benchmark has ~1k).
 */
export async function makeRayParquet(dir: string, files: number, rows: number, side = 256): Promise<void> {
  await mkdir(dir, { recursive: true });
  const have = new Set(await readdir(dir));
  for (let f = 1; f <= files; f++) {
    const name = `part-${String(f).padStart(3, '0')}.parquet`;
    if (have.has(name)) continue;
    const images = Array.from({ length: rows }, (_, r) =>
      Array.from(syntheticPixels(side, side, f * 10000 + r)),
    );
    const buffer = parquetWriteBuffer({
      columnData: [{ name: 'image', data: images }],
      schema: [
        { name: 'root', num_children: 1 },
        { name: 'image', repetition_type: 'OPTIONAL', converted_type: 'LIST', num_children: 1 },
        { name: 'list', repetition_type: 'REPEATED', num_children: 1 },
        { name: 'element', type: 'INT32', repetition_type: 'OPTIONAL', converted_type: 'UINT_8' },
      ],
      rowGroupSize: Math.min(rows, 64),
      statistics: false,
    });
    await writeFile(path.join(dir, name), new Uint8Array(buffer));
  }
}

/** Writes a model built by the zoo once, and reuses the file afterwards. */
export async function cachedModel(file: string, build: () => Uint8Array): Promise<string> {
  const exists = await stat(file).then(
    (s) => s.size > 0,
    () => false,
  );
  if (!exists) {
    await mkdir(path.dirname(file), { recursive: true });
    await writeFile(file, build());
  }
  return file;
}

/** Total bytes of a set of files. */
export async function totalBytes(files: readonly string[]): Promise<number> {
  let bytes = 0;
  for (const f of files) bytes += (await stat(f)).size;
  return bytes;
}
