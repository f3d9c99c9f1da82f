// The four runs the report's predictions, gallery and timeline are checked on, each a real job with a small
// model from the graph builder: a classifier with labels over Galaxy10-like HDF5 images, a regression
// without labels over the demo's 5-band tensors, a folder of images, and 5-band HDF5 cutouts with a
// redshift label.
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parquetReadObjects } from 'hyparquet';
import sharp from 'sharp';
import { parseJobSpec, type JobSpecInput } from '../../src/job/spec.js';
import { GraphBuilder } from '../../src/model/builder/index.js';
import { writeReport, type ReportResult } from '../../src/report/report.js';
import { runJob } from '../../src/run/run.js';
import type { JobSummary } from '../../src/summarize/summarize.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { freshJob, smallDemo } from '../helpers/demo-fixture.js';

const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

/** A finished run and its report. */
export interface GlanceRun {
  readonly dir: string;
  readonly report: ReportResult;
  readonly records: PartitionRecord[];
  readonly summary: JobSummary;
  /** Every prediction row, read with hyparquet (not CAI's reader). */
  readonly rows: Record<string, unknown>[];
  remove(): Promise<void>;
}

/** Mean over the image axes, times a weight matrix (and a softmax): a model whose scores vary by item. */
function meanModel(o: {
  input: [string, number, number, number];
  axes: [number, number];
  scale: number | number[];
  /** Subtracted from the means before scaling. */
  shift?: number[];
  weights: number[][];
  output: string;
  softmax?: boolean;
}): Uint8Array {
  const b = new GraphBuilder({ name: 'glance', seed: 25 });
  const x = b.input('image', 'float32', ['N', ...o.input.slice(1)] as (string | number)[]);
  const mean = b.node('ReduceMean', [x], { axes: o.axes, keepdims: 0 });
  const centred = o.shift ? b.node('Sub', [mean, b.constant(o.shift)]) : mean;
  const scaled = b.node('Mul', [centred, b.constant(o.scale)]);
  const k = o.weights[0].length;
  const w = b.initializer('w', Float32Array.from(o.weights.flat()), [o.weights.length, k]);
  const logits = b.node('MatMul', [scaled, w], {}, o.softmax ? {} : { output: o.output });
  if (o.softmax) b.node('Softmax', [logits], { axis: -1 }, { output: o.output });
  b.output(o.output, 'float32', ['N', k]);
  return b.toModelBytes();
}

async function finish(dir: string, job: JobSpecInput): Promise<GlanceRun> {
  const spec = parseJobSpec({ concurrency: 2, threads: 1, batchSize: 8, ...job });
  await runJob(spec, { retryBaseMs: 10 });
  const out = spec.output;
  const report = await writeReport(out);
  const records = JSON.parse(
    await readFile(path.join(out, 'combined_data.json'), 'utf8'),
  ) as PartitionRecord[];
  const summary = JSON.parse(await readFile(path.join(out, 'summary.json'), 'utf8')) as JobSummary;
  const rows: Record<string, unknown>[] = [];
  for (const f of (await readdir(path.join(out, 'predictions'))).sort()) {
    const bytes = await readFile(path.join(out, 'predictions', f));
    rows.push(
      ...((await parquetReadObjects({
        file: bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength),
      })) as Record<string, unknown>[]),
    );
  }
  return {
    dir: out,
    report,
    records,
    summary,
    rows,
    remove: () => rm(dir, { recursive: true, force: true }),
  };
}

/** A 10-class classifier with labels over the Galaxy10-like HDF5 fixture (64 RGB 64x64 images), 2 row ranges. */
export async function classifierRun(): Promise<GlanceRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-glance-cls-'));
  await mkdir(path.join(dir, 'data'));
  await writeFile(
    path.join(dir, 'data', 'Galaxy10_DECals_small.h5'),
    await readFile(`${FIXTURES}hdf5/galaxy10.h5`),
  );
  // Standardised channel means (as the fixture's) times fixed weights: predictions spread over the classes.
  const weights = [0, 1, 2].map((c) =>
    Array.from({ length: 10 }, (_, k) => Math.sin(1.7 * k + 2.3 * c + 0.5) * 1.5),
  );
  await writeFile(
    path.join(dir, 'model.onnx'),
    meanModel({
      input: ['N', 64, 64, 3],
      axes: [1, 2],
      shift: [0.823 * 255, 0.901 * 255, 0.942 * 255],
      scale: [1 / (0.098 * 255), 1 / (0.075 * 255), 1 / (0.051 * 255)],
      weights,
      output: 'logits',
    }),
  );
  return finish(dir, {
    input: path.join(dir, 'data'),
    model: path.join(dir, 'model.onnx'),
    output: path.join(dir, 'out'),
    datasets: { image: 'images', ans: 'ans' },
    idColumn: 'ids',
    label: 'ans',
    inputs: { image: 'image' },
    partitionItems: 32,
  });
}

/** A regression over the demo's 5-band 32x32 tensors (4 `.pt` partitions), without a label. */
export async function regressionRun(): Promise<GlanceRun> {
  const demo = await smallDemo();
  const job = await freshJob(demo);
  const model = path.join(job.output, '..', `${path.basename(job.output)}-model.onnx`);
  await writeFile(
    model,
    meanModel({
      input: ['N', 5, 32, 32],
      axes: [2, 3],
      scale: 1,
      weights: [[0.02], [0.05], [-0.01], [0.03], [0.01]],
      output: 'redshift',
    }),
  );
  const run = await finish(job.output, {
    input: job.input,
    model,
    output: job.output,
    inputs: { image: 0 },
  });
  return {
    ...run,
    remove: async () => {
      await run.remove();
      await rm(model, { force: true });
    },
  };
}

/** A folder of 12 small PNG images (two partitions), classified into 4 classes by colour, without labels. */
export async function imageFolderRun(): Promise<GlanceRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-glance-img-'));
  const data = path.join(dir, 'photos');
  await mkdir(data);
  for (let i = 0; i < 12; i++) {
    const [w, h] = [40 + 4 * i, 30 + 2 * i];
    const px = Buffer.alloc(w * h * 3);
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++) {
        const o = (y * w + x) * 3;
        px[o] = (i * 53 + x * 3) % 256;
        px[o + 1] = (i * 97 + y * 5) % 256;
        px[o + 2] = (i * 31 + 128) % 256;
      }
    await sharp(px, { raw: { width: w, height: h, channels: 3 } })
      .png()
      .toFile(path.join(data, `holiday_photo_${String(i).padStart(2, '0')}.png`));
  }
  const weights = [0, 1, 2].map((c) => Array.from({ length: 4 }, (_, k) => Math.cos(2.1 * k + 1.3 * c) * 4));
  await writeFile(
    path.join(dir, 'model.onnx'),
    meanModel({ input: ['N', 3, 16, 16], axes: [2, 3], scale: 1, weights, output: 'probs', softmax: true }),
  );
  return finish(dir, {
    input: data,
    model: path.join(dir, 'model.onnx'),
    output: path.join(dir, 'out'),
    preprocess: { resize: [16, 16] },
    partitionItems: 6,
  });
}

/** 16 five-band float32 16x16 cutouts in HDF5 with a redshift label: a regression with labels, 2 row ranges. */
export async function cutoutRun(): Promise<GlanceRun> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-glance-cut-'));
  await mkdir(path.join(dir, 'data'));
  await writeFile(path.join(dir, 'data', 'cutouts5.h5'), await readFile(`${FIXTURES}report/cutouts5.h5`));
  const weights = [[0.002], [0.004], [-0.001], [0.006], [0.003]];
  await writeFile(
    path.join(dir, 'model.onnx'),
    meanModel({ input: ['N', 5, 16, 16], axes: [2, 3], scale: 1, weights, output: 'redshift' }),
  );
  return finish(dir, {
    input: path.join(dir, 'data'),
    model: path.join(dir, 'model.onnx'),
    output: path.join(dir, 'out'),
    datasets: { image: 'images', z: 'redshift' },
    idColumn: 'ids',
    label: 'z',
    inputs: { image: 'image' },
    partitionItems: 8,
  });
}
