// Scaling: `cai run` over 1, 2, 4 and 8 times the data (more partitions of the same size, same workers,
// threads and batch size). Wall time should grow linearly (a fixed start-up cost plus a constant cost
// per item) and each worker's peak RSS should stay flat, within model + two partitions + 200 MB.
// Scales are interleaved within each repetition.
//
//   node dist/bench/scaling.js [--model astromae|trivial] [--base 2] [--items 320] [--batch 128] [--workers 2] [--reps 1]
import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildAstroMAE } from '../src/model/zoo/astromae.js';
import { buildTrivial } from '../src/model/zoo/trivial.js';
import { cachedModel, makeCaiPartitions, partitionFiles, totalBytes } from './datasets.js';
import { heading, interleave, median } from './print.js';
import { bareLoop, caiRun, type BenchJob, type CaiRunResult } from './runs.js';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'astromae' },
    base: { type: 'string', default: '2' },
    items: { type: 'string', default: '320' },
    batch: { type: 'string', default: '128' },
    workers: { type: 'string', default: String(os.availableParallelism()) },
    reps: { type: 'string', default: '1' },
    scales: { type: 'string', default: '1,2,4,8' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'cai-bench-astromae') },
  },
});
const base = Number(values.base);
const items = Number(values.items);
const batch = Number(values.batch);
const workers = Number(values.workers);
const scales = (values.scales as string).split(',').map(Number);
const dir = values.dir as string;
const data = path.join(dir, `data-${items}`);
await makeCaiPartitions(data, base * Math.max(...scales), items);
const astro = values.model === 'astromae';
const model = astro
  ? await cachedModel(path.join(dir, 'astromae.onnx'), () => buildAstroMAE())
  : await cachedModel(path.join(dir, 'trivial-image.onnx'), () =>
      buildTrivial({ inputName: 'image', shape: ['N', 5, 32, 32] }),
    );
const inputs: Record<string, number> = astro ? { image: 0, magnitude: 1 } : { image: 0 };
const partitionMb = (await totalBytes((await partitionFiles(data)).slice(0, 1))) / 1e6;
const modelMb = (await stat(model)).size / 1e6;

heading(
  `Scaling: ${values.model} model, ${scales.join('/')} x ${base} partitions of ${items} items (${partitionMb.toFixed(1)} MB each), ${workers} workers x 1 thread, batch ${batch}, ${values.reps} interleaved repetition(s)`,
);
const runs = new Map<number, CaiRunResult[]>(scales.map((k) => [k, []]));
await interleave(
  Number(values.reps),
  Object.fromEntries(
    scales.map((k) => [
      `${k}x`,
      async () => {
        const job: BenchJob = { input: data, fileLimit: base * k, inputs };
        runs.get(k)?.push(await caiRun({ model, job, concurrency: workers, threads: 1, batch }));
      },
    ]),
  ),
);
// What the model alone holds at this batch size: a bare loop's peak RSS over one partition in memory.
const bare = await bareLoop({
  model,
  job: { input: data, fileLimit: 1, inputs },
  procs: 1,
  threads: 1,
  batch,
});

const points = scales.map((k) => {
  const r = runs.get(k) ?? [];
  return {
    k,
    items: r[0]?.items ?? 0,
    wall: median(r.map((x) => x.wall)),
    map: median(r.map((x) => x.summary.run.map_seconds)),
    rss: Math.max(...r.map((x) => x.summary.peak_rss_mb)),
  };
});
// Least squares wall = a + b * scale: b is the cost of one unit of data, a the fixed start-up.
const n = points.length;
const mx = points.reduce((s, p) => s + p.k, 0) / n;
const my = points.reduce((s, p) => s + p.wall, 0) / n;
const b =
  points.reduce((s, p) => s + (p.k - mx) * (p.wall - my), 0) /
  points.reduce((s, p) => s + (p.k - mx) ** 2, 0);
const a = my - b * mx;
const ssTot = points.reduce((s, p) => s + (p.wall - my) ** 2, 0);
const ssRes = points.reduce((s, p) => s + (p.wall - (a + b * p.k)) ** 2, 0);
const bound = modelMb + 2 * partitionMb + 200;
for (const p of points) {
  process.stdout.write(
    `  ${String(p.k).padStart(2)}x: ${String(p.items).padStart(6)} items, whole process ${p.wall.toFixed(2)} s (${((p.wall / p.k / points[0].wall) * 1).toFixed(2)} of 1x per unit), map ${p.map.toFixed(2)} s, ${(p.items / p.wall).toFixed(1)} items/s, peak RSS/worker ${p.rss.toFixed(0)} MB (${(p.rss / points[0].rss).toFixed(2)}x of 1x)\n`,
  );
}
process.stdout.write(
  `  linear fit: wall = ${a.toFixed(2)} s + ${b.toFixed(2)} s per ${base} partitions (R^2 ${(1 - ssRes / ssTot).toFixed(4)})\n` +
    `  peak RSS/worker ${Math.min(...points.map((p) => p.rss)).toFixed(0)}-${Math.max(...points.map((p) => p.rss)).toFixed(0)} MB; model file ${modelMb.toFixed(1)} MB + 2 partitions ${(2 * partitionMb).toFixed(1)} MB + 200 MB = ${bound.toFixed(0)} MB; ` +
    `a bare onnxruntime loop holding one partition peaks at ${bare.peakRssMb.toFixed(0)} MB at this batch size, so the model's working set is ~${(bare.peakRssMb - partitionMb).toFixed(0)} MB and model (working set) + 2 partitions + 200 MB = ${(bare.peakRssMb - partitionMb + 2 * partitionMb + 200).toFixed(0)} MB\n`,
);
