// The pipeline's own ceiling: `cai run` with the zoo's trivial model (the mean of each item, no
// weights) over CAI `.pt` partitions, in items/s and MB/s, against reading the same files raw (whole,
// into memory) in as many processes. Interleaved repetitions; ratios are medians of pairwise ratios.
// Two views: whole processes (`cai run` from spawn to exit vs the raw reader from spawn to exit, which
// includes each one's start-up), and steady state (cai's map stage vs the raw reader's timed loop).
//
//   node dist/bench/trivial.js [--partitions 32] [--items 1278] [--batch 1278] [--workers 2] [--reps 5] [--main-thread]
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { buildTrivial } from '../src/model/zoo/trivial.js';
import { cachedModel, makeCaiPartitions, partitionFiles, SEEDS_25MB_ITEMS, totalBytes } from './datasets.js';
import { describeRuns, heading, interleave, line, ratios } from './print.js';
import { caiRun, rawRead, type CaiRunResult, type Throughput } from './runs.js';

const { values } = parseArgs({
  options: {
    partitions: { type: 'string', default: '32' },
    items: { type: 'string', default: String(SEEDS_25MB_ITEMS) },
    batch: { type: 'string', default: String(SEEDS_25MB_ITEMS) },
    workers: { type: 'string', default: String(os.availableParallelism()) },
    reps: { type: 'string', default: '5' },
    'main-thread': { type: 'boolean', default: false },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'cai-bench-astromae') },
  },
});
const partitions = Number(values.partitions);
const items = Number(values.items);
const batch = Number(values.batch);
const workers = Number(values.workers);
const dir = values.dir as string;
const data = path.join(dir, `data-${items}`);
await makeCaiPartitions(data, partitions, items);
const files = (await partitionFiles(data)).slice(0, partitions);
const bytes = await totalBytes(files);
const model = await cachedModel(path.join(dir, 'trivial-image.onnx'), () =>
  buildTrivial({ inputName: 'image', shape: ['N', 5, 32, 32] }),
);

heading(
  `Pipeline ceiling: trivial (mean) model, ${partitions} .pt partitions x ${items} items (${(bytes / 1e6).toFixed(0)} MB), batch ${batch}, ${workers} worker(s) x 1 thread vs ${workers} raw reader(s), ${values.reps} interleaved repetitions`,
);
const raw: { loop: Throughput; wall: number }[] = [];
const cai: CaiRunResult[] = [];
const caiMain: CaiRunResult[] = [];
const run = (env?: Record<string, string>) =>
  caiRun({
    model,
    job: { input: data, fileLimit: partitions, inputs: { image: 0 } },
    concurrency: workers,
    threads: 1,
    batch,
    env,
  });
await interleave(Number(values.reps), {
  raw: async () => {
    const t0 = performance.now();
    const loop = await rawRead(files, workers);
    raw.push({ loop, wall: (performance.now() - t0) / 1000 });
  },
  cai: async () => void cai.push(await run()),
  ...(values['main-thread']
    ? {
        'cai main-thread inference': async () =>
          void caiMain.push(await run({ CAI_INFERENCE_THREAD: 'main' })),
      }
    : {}),
});
const mb = bytes / 1e6;
const rawWhole = raw.map((r) => mb / r.wall);
const rawLoop = raw.map((r) => r.loop.mbPerSecond);
const caiWhole = cai.map((r) => r.mbPerSecond);
const caiMap = cai.map((r) => r.summary.bytes / 1e6 / r.summary.run.map_seconds);
const caiStages = cai.map((r) => r.summary.bytes / 1e6 / (r.summary.stage_seconds.total / workers));
const perMb = (partitions * items) / mb;
line('raw read, whole processes (spawn to exit)', rawWhole, 'MB/s');
line('cai run end to end, whole process', caiWhole, 'MB/s', ratios(caiWhole, rawWhole), 'vs raw whole');
line(
  '  same, in items/s',
  caiWhole.map((x) => x * perMb),
  'items/s',
);
line('raw read, timed loop only', rawLoop, 'MB/s');
line(
  'cai map stage (workers started to last record)',
  caiMap,
  'MB/s',
  ratios(caiMap, rawLoop),
  'vs raw loop',
);
line(
  '  same, in items/s',
  caiMap.map((x) => x * perMb),
  'items/s',
);
line(
  'cai per-partition work (sum of partition totals / workers)',
  caiStages,
  'MB/s',
  ratios(caiStages, rawLoop),
  'vs raw loop',
);
describeRuns(`${workers}x1`, cai);
if (caiMain.length) {
  const mainWhole = caiMain.map((r) => r.mbPerSecond);
  line(
    'cai run, inference forced onto the JS thread',
    mainWhole,
    'MB/s',
    ratios(mainWhole, rawWhole),
    'vs raw whole',
  );
  line(
    '  default placement vs forced JS thread',
    caiWhole,
    'MB/s',
    ratios(caiWhole, mainWhole),
    'default / JS thread',
  );
  describeRuns(`${workers}x1 (forced JS-thread inference)`, caiMain);
}
