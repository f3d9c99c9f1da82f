// The bare onnxruntime loop CAI is measured against: the input planned as CAI plans it, this process's
// share of the partitions decoded and preprocessed into model batches in memory before the clock starts,
// then one session running batch after batch, nothing else. Prints {items, bytes, seconds, peakRssMb}.
//
//   node dist/bench/bare-ort.js '{"model": "m.onnx", "job": {"input": "data"}, "threads": 2, "batch": 128, "index": 0, "of": 1}'
import * as ort from 'onnxruntime-node';
import { sourceByName } from '../src/formats/sources.js';
import { parseJobSpec } from '../src/job/spec.js';
import { planPartitions } from '../src/plan/plan.js';
import { openStore } from '../src/storage/open.js';
import { cast } from '../src/tensor/tensor.js';
import type { BareLoopConfig } from './runs.js';

const config = JSON.parse(process.argv[2]) as BareLoopConfig;
const job = parseJobSpec({ ...config.job, model: config.model, output: '/nonexistent' });
const store = await openStore(job.input);
const plan = (await planPartitions(store, { job, fileLimit: job.fileLimit })).filter(
  (_, j) => j % config.of === config.index,
);
const session = await ort.InferenceSession.create(config.model, {
  intraOpNumThreads: config.threads,
  interOpNumThreads: 1,
  graphOptimizationLevel: 'all',
});
const names = session.inputNames;

// Model batches as plain float32 arrays with their shapes: what a hand-written loop would hold.
const batches: { data: Float32Array; shape: number[] }[][] = [];
let items = 0;
let bytes = 0;
for (const partition of plan) {
  const stream = await sourceByName(partition.source ?? 'tensor').open(store, partition, job);
  for await (const b of stream.batches(config.batch)) {
    if (b.rows.items === 0) continue;
    batches.push(
      names.map((name, position) => {
        const ref = job.inputs?.[name] ?? position;
        const column = typeof ref === 'number' ? ref : b.rows.names.indexOf(ref);
        const t = cast(b.rows.columns[column], 'float32');
        return { data: t.data, shape: [...t.shape] };
      }),
    );
    items += b.rows.items;
  }
  bytes += stream.stats().bytes;
}

const feeds = (cols: { data: Float32Array; shape: number[] }[]) =>
  Object.fromEntries(names.map((n, i) => [n, new ort.Tensor('float32', cols[i].data, cols[i].shape)]));
// One warm-up batch, as any loop pays its first-call allocations before measuring.
if (batches.length) await session.run(feeds(batches[0]));
const t0 = performance.now();
for (const cols of batches) await session.run(feeds(cols));
const seconds = (performance.now() - t0) / 1000;
process.stdout.write(
  JSON.stringify({ items, bytes, seconds, peakRssMb: process.resourceUsage().maxRSS / 1024 }),
);
