// Issue 8's headline benchmark: `cai run` end to end over CAI `.pt` partitions with the AstroMAE-shaped
// model, against a bare onnxruntime loop over the same tensors already in memory (same threads and
// batch size), and against the seeds' PyTorch loop when Debian's torch is installed.
//
//   node dist/bench/astromae.js [--partitions 4] [--items 1278] [--batch 128] [--dir /tmp/cai-bench]
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { runJob } from '../src/job/run.js';
import { parseJobSpec } from '../src/job/spec.js';
import { buildAstroMAE } from '../src/model/zoo/astromae.js';
import { bareLoop, makeCaiPartitions, partitionFiles, pytorchLoop, row, SEEDS_25MB_ITEMS } from './common.js';

const { values } = parseArgs({
  options: {
    partitions: { type: 'string', default: '4' },
    items: { type: 'string', default: String(SEEDS_25MB_ITEMS) },
    batch: { type: 'string', default: '128' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'cai-bench-astromae') },
    'no-torch': { type: 'boolean', default: false },
  },
});
const partitions = Number(values.partitions);
const batch = Number(values.batch);
const dir = values.dir as string;
const data = path.join(dir, 'data');
const model = path.join(dir, 'astromae.onnx');
await makeCaiPartitions(data, partitions, Number(values.items));
await writeFile(model, buildAstroMAE());
const files = (await partitionFiles(data)).slice(0, partitions);
const cores = os.availableParallelism();

async function cai(concurrency: number, threads: number): Promise<{ e2e: number; map: number; rss: number }> {
  const output = await mkdtemp(path.join(os.tmpdir(), 'cai-bench-out-'));
  const s = await runJob(
    parseJobSpec({
      input: data,
      model,
      output,
      batchSize: batch,
      concurrency,
      threads,
      fileLimit: partitions,
      inputs: { image: 0, magnitude: 1 },
    }),
  );
  return { e2e: s.items / s.run.wall_seconds, map: s.run.items_per_second, rss: s.peak_rss_mb };
}

process.stdout.write(
  `AstroMAE-shaped model, ${partitions} CAI .pt partitions x ${values.items} items, batch ${batch}, ${cores} cores\n`,
);
const bare1 = await bareLoop({ model, files, procs: 1, threads: cores, batch });
row(`bare onnxruntime loop, 1 process x ${cores} threads`, bare1, 'items/s');
const bareN = await bareLoop({ model, files, procs: cores, threads: 1, batch });
row(`bare onnxruntime loop, ${cores} processes x 1 thread`, bareN, 'items/s');
const one = await cai(1, cores);
row(`cai run end to end, 1 worker x ${cores} threads`, one.e2e, 'items/s', {
  to: 'bare 1 process',
  value: bare1,
});
const many = await cai(cores, 1);
row(`cai run end to end, ${cores} workers x 1 thread`, many.e2e, 'items/s', {
  to: `bare ${cores} processes`,
  value: bareN,
});
row(`  (map stage only, ${cores} workers x 1 thread)`, many.map, 'items/s', {
  to: `bare ${cores} processes`,
  value: bareN,
});
process.stdout.write(
  `  peak RSS per worker: ${one.rss.toFixed(0)} MB (1 worker), ${many.rss.toFixed(0)} MB (${cores} workers)\n`,
);
if (!values['no-torch']) {
  const torch = await pytorchLoop({
    model,
    input: data,
    threads: cores,
    batch,
    out: await mkdtemp(path.join(os.tmpdir(), 'cai-bench-torch-')),
  });
  if (torch === undefined)
    process.stdout.write(
      "  seeds' PyTorch loop: skipped (needs /usr/bin/python3 with python3-torch, python3-onnx)\n",
    );
  else {
    row(`seeds' PyTorch loop, ${cores} threads`, torch, 'items/s');
    row(`cai run best / PyTorch loop`, Math.max(one.e2e, many.e2e) / torch, 'x');
  }
}
