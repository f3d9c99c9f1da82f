// ResNet-50 (the zoo's exact architecture, deterministic weights, nothing downloaded) with the imagenet
// preset (resize 256, center crop 224, ImageNet mean/std): `cai run` end to end against the bare
// onnxruntime loop over the same preprocessed tensors in memory, same processes, threads and batch size,
// (1) on a folder of JPEGs (500 x 375, ImageNet's typical size) and (2) on Parquet in the Ray
// benchmark's layout (a LIST<uint8> column of 256 x 256 x 3 pixels; ~1k rows a file there, scaled down
// here). Runs are interleaved and ratios are medians of pairwise ratios.
//
// `--model vit-b16` runs the zoo's ViT-B/16 (86 M weights, ~4x ResNet-50's compute per image) instead,
// the same way.
//
//   node dist/bench/resnet50.js [--model resnet50|vit-b16] [--images 64] [--partition-items 16] [--parquet-files 4] [--rows 16] [--batch 16] [--reps 3] [--layouts 2x1,1x2] [--only jpeg|parquet] [--force-thread main|separate]
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildZooModel } from '../src/model/zoo/registry.js';
import { compareToBare, type Layout } from './compare.js';
import { cachedModel, makeJpegs, makeRayParquet } from './datasets.js';
import { heading } from './print.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'resnet50' },
    images: { type: 'string', default: '64' },
    'partition-items': { type: 'string', default: '16' },
    'parquet-files': { type: 'string', default: '4' },
    rows: { type: 'string', default: '16' },
    batch: { type: 'string', default: '16' },
    reps: { type: 'string', default: '3' },
    layouts: { type: 'string', default: `${os.availableParallelism()}x1,1x${os.availableParallelism()}` },
    only: { type: 'string' },
    // Also runs cai with inference forced onto the worker's JS thread (main) or its own (separate).
    'force-thread': { type: 'string' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'cai-bench-resnet50') },
  },
});
const dir = values.dir as string;
function forceThread(v: string | undefined): 'main' | 'separate' | undefined {
  if (v !== undefined && v !== 'main' && v !== 'separate')
    throw new Error(`--force-thread: main or separate, not ${v}`);
  return v;
}
const batch = Number(values.batch);
const reps = Number(values.reps);
const layouts: Layout[] = (values.layouts as string).split(',').map((l) => {
  const [workers, threads] = l.split('x').map(Number);
  return { workers, threads };
});
const name = values.model as string;
if (name !== 'resnet50' && name !== 'vit-b16') throw new Error(`--model: resnet50 or vit-b16, not ${name}`);
const title = name === 'resnet50' ? 'ResNet-50' : 'ViT-B/16';
const model = await cachedModel(path.join(dir, `${name}.onnx`), () => buildZooModel(name));

if (values.only !== 'parquet') {
  const images = Number(values.images);
  const jpegs = path.join(dir, `jpeg-${images}`);
  await makeJpegs(jpegs, images);
  heading(
    `${title} on ${images} JPEGs (500x375), imagenet preset, partitions of ${values['partition-items']} images, batch ${batch}, ${reps} interleaved repetitions`,
  );
  await compareToBare({
    model,
    job: { input: jpegs, preset: 'imagenet', partitionItems: Number(values['partition-items']) },
    batch,
    layouts,
    reps,
    forceThread: forceThread(values['force-thread']),
  });
}
if (values.only !== 'jpeg') {
  const files = Number(values['parquet-files']);
  const rows = Number(values.rows);
  const parquet = path.join(dir, `ray-${files}x${rows}`);
  await makeRayParquet(parquet, files, rows);
  heading(
    `${title} on Parquet, Ray benchmark layout (LIST<uint8> 256x256x3), ${files} files x ${rows} rows, imagenet preset, batch ${batch}, ${reps} interleaved repetitions`,
  );
  await compareToBare({
    model,
    job: { input: parquet, preset: 'imagenet', imageShape: [256, 256, 3] },
    batch,
    layouts,
    reps,
    forceThread: forceThread(values['force-thread']),
  });
}
