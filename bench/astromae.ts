// Issue 8's headline benchmark: `cai run` end to end over CAI `.pt` partitions with the AstroMAE-shaped
// model, against a bare onnxruntime loop over the same tensors already in memory (same workers, threads
// and batch size), at 1 worker x all cores' threads and at one worker per core x 1 thread, and against
// the seeds' PyTorch loop when Debian's torch is installed. Runs are interleaved (A B A B ...) and every
// ratio is the median of pairwise ratios, so a shared machine's drift cancels out.
//
//   node dist/bench/astromae.js [--partitions 4] [--items 1278] [--batch 128] [--reps 3] [--dir /tmp/cai-bench-astromae] [--no-torch]
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { buildAstroMAE } from '../src/model/zoo/astromae.js';
import { cachedModel, makeCaiPartitions, SEEDS_25MB_ITEMS } from './datasets.js';
import { heading, interleave, line, ratios, describeRuns } from './print.js';
import {
  bareLoop,
  caiRun,
  hasTorch,
  pytorchLoop,
  type BenchJob,
  type CaiRunResult,
  type Throughput,
} from './runs.js';

const { values } = parseArgs({
  options: {
    partitions: { type: 'string', default: '4' },
    items: { type: 'string', default: String(SEEDS_25MB_ITEMS) },
    batch: { type: 'string', default: '128' },
    reps: { type: 'string', default: '3' },
    dir: { type: 'string', default: path.join(os.tmpdir(), 'cai-bench-astromae') },
    'no-torch': { type: 'boolean', default: false },
  },
});
const partitions = Number(values.partitions);
const batch = Number(values.batch);
const dir = values.dir as string;
// A folder of exactly these partitions: the PyTorch loop reads every partition of its input.
const data = path.join(dir, `astromae-${partitions}x${values.items}`);
const model = await cachedModel(path.join(dir, 'astromae.onnx'), () => buildAstroMAE());
await makeCaiPartitions(data, partitions, Number(values.items));
const cores = os.availableParallelism();
const job: BenchJob = { input: data, fileLimit: partitions, inputs: { image: 0, magnitude: 1 } };

async function torch(): Promise<number> {
  const out = await mkdtemp(path.join(os.tmpdir(), 'cai-bench-torch-'));
  const r = await pytorchLoop({ model, input: data, threads: cores, batch, out });
  await rm(out, { recursive: true, force: true });
  return r ?? NaN;
}
const haveTorch = !values['no-torch'] && (await hasTorch());

heading(
  `AstroMAE-shaped model, ${partitions} CAI .pt partitions x ${values.items} items, batch ${batch}, ${values.reps} interleaved repetitions`,
);
const r = {
  bare1: [] as Throughput[],
  cai1: [] as CaiRunResult[],
  bareN: [] as Throughput[],
  caiN: [] as CaiRunResult[],
  torch: [] as number[],
};
await interleave(Number(values.reps), {
  bare1: async () => void r.bare1.push(await bareLoop({ model, job, procs: 1, threads: cores, batch })),
  cai1: async () => void r.cai1.push(await caiRun({ model, job, concurrency: 1, threads: cores, batch })),
  bareN: async () => void r.bareN.push(await bareLoop({ model, job, procs: cores, threads: 1, batch })),
  caiN: async () => void r.caiN.push(await caiRun({ model, job, concurrency: cores, threads: 1, batch })),
  ...(haveTorch ? { torch: async () => void r.torch.push(await torch()) } : {}),
});
const ips = (xs: readonly { itemsPerSecond: number }[]) => xs.map((x) => x.itemsPerSecond);
const [bare1, bareN, cai1, caiN] = [ips(r.bare1), ips(r.bareN), ips(r.cai1), ips(r.caiN)];
line(`bare onnxruntime loop, 1 process x ${cores} threads`, bare1, 'items/s');
line(
  `bare onnxruntime loop, ${cores} processes x 1 thread`,
  bareN,
  'items/s',
  ratios(bareN, bare1),
  `vs 1x${cores}`,
);
line(
  `cai run end to end, 1 worker x ${cores} threads`,
  cai1,
  'items/s',
  ratios(cai1, bare1),
  'vs bare 1 process',
);
line(
  `cai run end to end, ${cores} workers x 1 thread`,
  caiN,
  'items/s',
  ratios(caiN, bareN),
  `vs bare ${cores} processes`,
);
line(
  `cai run end to end, ${cores}x1 vs 1x${cores}`,
  caiN,
  'items/s',
  ratios(caiN, cai1),
  `vs cai 1x${cores}`,
);
const steady1 = r.cai1.map((x) => x.steadyItemsPerSecond);
const steadyN = r.caiN.map((x) => x.steadyItemsPerSecond);
line(
  `  cai 1x${cores} steady state (after each worker's first batch)`,
  steady1,
  'items/s',
  ratios(steady1, bare1),
  'vs bare 1 process',
);
line(
  `  cai ${cores}x1 steady state (after each worker's first batch)`,
  steadyN,
  'items/s',
  ratios(steadyN, bareN),
  `vs bare ${cores} processes`,
);
const best = caiN.map((x, i) => Math.max(x, cai1[i]));
const bareBest = bareN.map((x, i) => Math.max(x, bare1[i]));
line('cai run, best layout vs the best bare loop', best, 'items/s', ratios(best, bareBest), 'vs bare');
describeRuns(`1x${cores}`, r.cai1, r.bare1);
describeRuns(`${cores}x1`, r.caiN, r.bareN);
if (haveTorch) {
  const t = r.torch;
  line(`seeds' PyTorch loop, 1 process x ${cores} threads`, t, 'items/s');
  line(`cai run best layout / PyTorch loop`, best, 'items/s', ratios(best, t), 'vs PyTorch');
} else {
  process.stdout.write(
    "  seeds' PyTorch loop: skipped (needs /usr/bin/python3 with python3-torch, python3-onnx)\n",
  );
}
