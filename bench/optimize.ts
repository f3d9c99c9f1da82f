// Issue 26's benchmark: `cai optimize --int8` on the AstroMAE-shaped model (CAI .pt partitions) and on
// ResNet-50 (JPEGs, imagenet preset); the optimized model in `cai run` against the fp32 model in `cai
// run` and against the bare onnxruntime fp32 loop over the same tensors, at 1 worker x 1 thread and
// 1 worker x 2 threads, interleaved (A B C A B C ...) with ratios taken pair by pair; the accuracy
// deltas `cai optimize` measured on held-out items printed beside each speed-up.
//
// --trained: the AstroMAE-shaped model with weights trained briefly by PyTorch (bench/trained-astromae.ts)
// instead of the zoo's random ones.
//
//   node dist/bench/optimize.js [--model astromae|resnet50|both] [--reps 3] [--threads 1,2] [--no-conv] [--no-matmul]
//     [--trained] [--smooth-alpha 0.8]
//     [--astromae-items 512] [--images 48] [--calibration-items 128] [--held-out-items 128]
import { copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { parseJobSpec } from '../src/job/spec.js';
import { buildAstroMAE } from '../src/model/zoo/astromae.js';
import { buildResNet50 } from '../src/model/zoo/resnet50.js';
import { optimizeModel, type OptimizeReport } from '../src/optimize/optimize.js';
import { cachedModel, makeCaiPartitions, makeJpegs } from './datasets.js';
import { heading, interleave, line, ratios } from './print.js';
import { trainedAstroMAE } from './trained-astromae.js';
import { bareLoop, caiRun, type BenchJob, type CaiRunResult, type Throughput } from './runs.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'both' },
    reps: { type: 'string', default: '3' },
    threads: { type: 'string', default: '1,2' },
    'no-conv': { type: 'boolean', default: false },
    'no-matmul': { type: 'boolean', default: false },
    'keep-fp32': { type: 'string' },
    trained: { type: 'boolean', default: false },
    'smooth-alpha': { type: 'string' },
    'astromae-items': { type: 'string', default: '512' },
    images: { type: 'string', default: '48' },
    'calibration-items': { type: 'string', default: '128' },
    'held-out-items': { type: 'string', default: '128' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'cai-bench-optimize') },
  },
});
const dir = values.dir as string;
const reps = Number(values.reps);

function accuracy(r: OptimizeReport): string {
  const c = r.comparison;
  if (!c) return 'accuracy not measured';
  const parts = c.outputs.map(
    (o) =>
      `${o.name}: error ${(o.relative_error * 100).toFixed(2)}% of fp32 std, max |diff| ${o.max_abs_diff.toPrecision(3)}` +
      (o.argmax_agreement === undefined ? '' : `, top-1 agreement ${(o.argmax_agreement * 100).toFixed(2)}%`),
  );
  const m = c.metrics;
  if (m?.fp32.kind === 'regression' && m.optimized.kind === 'regression')
    parts.push(
      `MAE ${m.fp32.mae.toPrecision(3)} -> ${m.optimized.mae.toPrecision(3)}, NMAD ${m.fp32.nmad.toPrecision(3)} -> ${m.optimized.nmad.toPrecision(3)}`,
    );
  return `${parts.join('; ')} (${c.items} held-out items; ${r.accepted ? 'accepted' : 'REFUSED by the 5% tolerance'})`;
}

async function study(
  title: string,
  fp32: string,
  job: BenchJob,
  inputs: Record<string, string | number>,
  label: string | number | undefined,
  batch: number,
) {
  const flag = values['no-conv'] ? ' --no-conv' : values['no-matmul'] ? ' --no-matmul' : '';
  const out = fp32.replace(/\.onnx$/, `.int8${flag.replace(' --', '-')}.onnx`);
  const t0 = performance.now();
  const report = await optimizeModel({
    model: fp32,
    output: out,
    int8: true,
    job: parseJobSpec({ ...job, model: fp32, output: dir, inputs, label }),
    calibrationItems: Number(values['calibration-items']),
    heldOutItems: Number(values['held-out-items']),
    noConv: values['no-conv'],
    noMatmul: values['no-matmul'],
    keepFp32: values['keep-fp32'] === undefined ? undefined : Number(values['keep-fp32']),
    smoothAlpha: values['smooth-alpha'] === undefined ? undefined : Number(values['smooth-alpha']),
    log: (l) => process.stderr.write(`  ${l}\n`),
  });
  const optimizeSeconds = (performance.now() - t0) / 1000;
  heading(`${title}, batch ${batch}, ${reps} interleaved repetitions`);
  process.stdout.write(
    `  cai optimize --int8${flag}: ${optimizeSeconds.toFixed(0)} s; ${report.optimization.int8?.dynamic_matmul} MatMul/Gemm dynamic, ${report.optimization.int8?.static_conv} Conv QDQ, kept fp32: ${report.optimization.int8?.kept_fp32.length}\n`,
  );
  process.stdout.write(`  accuracy: ${accuracy(report)}\n`);
  const withInputs = { ...job, inputs };
  for (const threads of (values.threads as string).split(',').map(Number)) {
    const r = { bare: [] as Throughput[], fp32: [] as CaiRunResult[], int8: [] as CaiRunResult[] };
    await interleave(reps, {
      bare: async () =>
        void r.bare.push(await bareLoop({ model: fp32, job: withInputs, procs: 1, threads, batch })),
      fp32: async () =>
        void r.fp32.push(await caiRun({ model: fp32, job: withInputs, concurrency: 1, threads, batch })),
      int8: async () =>
        void r.int8.push(
          await caiRun({ model: report.optimized, job: withInputs, concurrency: 1, threads, batch }),
        ),
    });
    const ips = (xs: readonly { itemsPerSecond: number }[]) => xs.map((x) => x.itemsPerSecond);
    const steady = (xs: readonly CaiRunResult[]) => xs.map((x) => x.steadyItemsPerSecond);
    const [bare, fp, q] = [ips(r.bare), ips(r.fp32), ips(r.int8)];
    process.stdout.write(`  1 worker x ${threads} thread(s):\n`);
    line('bare onnxruntime loop, fp32', bare, 'items/s');
    line('cai run, fp32', fp, 'items/s', ratios(fp, bare), 'vs bare fp32');
    line('cai run, int8', q, 'items/s', ratios(q, bare), 'vs bare fp32');
    line('cai run, int8 vs cai run, fp32', q, 'items/s', ratios(q, fp), 'vs cai fp32');
    line(
      '  steady state: cai int8 vs bare fp32',
      steady(r.int8),
      'items/s',
      ratios(steady(r.int8), bare),
      'vs bare fp32',
    );
  }
}

if (values.model !== 'resnet50') {
  const items = Number(values['astromae-items']);
  const data = path.join(dir, `astromae-2x${items}`);
  await makeCaiPartitions(data, 2, items);
  const model = values.trained
    ? await trainedAstroMAE(path.join(dir, 'trained-astromae')).then(async (t) => {
        process.stdout.write(`trained AstroMAE-shaped model: ${JSON.stringify(t.info)}\n`);
        // A copy per run folder: optimize writes the int8 model beside it.
        const copy = path.join(dir, 'astromae-trained.onnx');
        await copyFile(t.model, copy);
        return copy;
      })
    : await cachedModel(path.join(dir, 'astromae.onnx'), () => buildAstroMAE());
  await study(
    `AstroMAE-shaped model${values.trained ? ' (trained)' : ''}, 2 CAI .pt partitions x ${items} items`,
    model,
    { input: data, fileLimit: 2 },
    { image: 0, magnitude: 1 },
    2,
    128,
  );
}
if (values.model !== 'astromae') {
  const images = Number(values.images);
  const jpegs = path.join(dir, `jpeg-${images}`);
  await makeJpegs(jpegs, images);
  const model = await cachedModel(path.join(dir, 'resnet50.onnx'), () => buildResNet50());
  await study(
    `ResNet-50 on ${images} JPEGs (500x375), imagenet preset`,
    model,
    { input: jpegs, preset: 'imagenet', partitionItems: 16 },
    { input: 0 },
    undefined,
    16,
  );
}
