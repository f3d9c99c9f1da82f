// The AWS engine's control path at 1,000 / 10,000 / 100,000 partitions, offline: CAI's real Initialize
// and Summarize handlers against a loopback S3 that answers every request after ~20 ms, as S3 from a
// Lambda in the same region does (test/helpers/memory-s3.ts, in its own process: s3rver needs minutes
// to take 300,000 objects and lists quadratically). Partitions are tiny; their records and
// predictions are synthetic (written as the worker writes them, no inference run): the Map's own
// work scales out across Lambdas and is not what this measures. The Map's ResultWriter export is
// written as Step Functions writes it (one SUCCEEDED file, each child's output carrying its record),
// and Summarize is handed the Map's output; `cai aws run`'s polling is two API calls per poll whatever N.
//
//   node dist/bench/aws-scale.js [--sizes 1000,10000,100000] [--latency 20]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { createInitializeHandler } from '../src/engines/aws/handlers/initialize.js';
import { createSummarizeHandler } from '../src/engines/aws/handlers/summarize.js';
import { billRecords, BILL_DEFAULTS } from '../src/experiments/cost.js';
import { loadOutput } from '../src/report/load.js';
import '../src/storage/register.js';
import { S3Store } from '../src/storage/s3-store.js';
import type { PlannedPartition } from '../src/plan/plan.js';
import type { PartitionRecord } from '../src/worker/record.js';
import { startMemoryS3, type MemoryS3 } from '../test/helpers/memory-s3.js';
import { syntheticOutputs, syntheticPlan } from '../test/helpers/synthetic-records.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,100000' },
    latency: { type: 'string', default: '20' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const latencyMs = Number(values.latency);

const config = {
  data: 's3://scale-data/parts',
  output: 's3://scale-out/runs',
  model: 's3://scale-data/model.onnx',
  maxConcurrency: 1000,
  toleratedFailurePercentage: 0,
  inferenceMemoryMb: 10240,
  crashAttempts: 3,
};
const KIB = 1024;
const s = (ms: number) => `${(ms / 1000).toFixed(2)} s`;

/** A stage's wall time, this process's CPU time in it, and the highest RSS seen while it ran. */
interface Cost {
  ms: number;
  cpuMs: number;
  rssMb: number;
}

async function timed<T>(fn: () => Promise<T>): Promise<[T, number, Cost]> {
  let rss = process.memoryUsage.rss();
  const sampler = setInterval(() => (rss = Math.max(rss, process.memoryUsage.rss())), 50);
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  try {
    const v = await fn();
    const ms = performance.now() - t0;
    const cpu = process.cpuUsage(cpu0);
    rss = Math.max(rss, process.memoryUsage.rss());
    return [v, ms, { ms, cpuMs: (cpu.user + cpu.system) / 1000, rssMb: rss / 2 ** 20 }];
  } finally {
    clearInterval(sampler);
  }
}

async function oneSize(n: number, s3: MemoryS3): Promise<void> {
  const name = `n${n}`;
  const endpoint = s3.endpoint;
  const raw = (uri: string) => new S3Store(uri, { s3Endpoint: endpoint });
  // Seeding goes straight into the server's memory (not timed, not delayed).
  const seed = syntheticPlan(n, 64);
  const partition = new Uint8Array(64);
  await s3.seed(seed.map((p) => ['scale-data', `parts/${name}/${p.key}`, partition] as const));
  const job = {
    input: `${config.data}/${name}`,
    output: `${config.output}/${name}`,
    model: config.model,
    s3Endpoint: endpoint,
    predictionsFormat: 'jsonl' as const,
  };
  const initialize = createInitializeHandler(config);
  const start = new Date().toISOString();
  let r0 = await s3.requests();
  const counted = async () => {
    const now = await s3.requests();
    const r = now - r0;
    r0 = now;
    return r;
  };
  const [init, , plan] = await timed(() =>
    initialize({ input: { job }, executionName: 'first', executionStartTime: start }),
  );
  const planRequests = await counted();
  const payload = Buffer.byteLength(JSON.stringify({ init }));
  const out = raw(job.output);
  const manifestBytes = (await out.head(`${init.runFolder}items.json`))?.size ?? 0;

  // The Map's outcome: every partition's record and predictions (synthetic), written directly, and the
  // ResultWriter's export as Step Functions writes it: one entry per child with its input and its
  // output, which carries the partition's record as the inference function returns it.
  const items = JSON.parse(
    new TextDecoder().decode(await out.get(`${init.runFolder}items.json`)),
  ) as PlannedPartition[];
  const outputs = seed.flatMap((p) =>
    syntheticOutputs(p).map(
      ([key, body]) => ['scale-out', `runs/${name}/${key}`, Buffer.from(body)] as const,
    ),
  );
  const recordOf = new Map(
    seed.map((p) => [p.id, JSON.parse(syntheticOutputs(p)[0][1]) as PartitionRecord] as const),
  );
  const entry = (item: PlannedPartition) =>
    JSON.stringify({
      ExecutionArn: `arn:aws:states:us-east-1:123456789012:execution:Cai/Inference:${'0'.repeat(36)}`,
      Input: JSON.stringify({ partition: item, task: init.task, try: { attempt: 1 } }),
      InputDetails: { Included: true },
      Output: JSON.stringify({
        partitions: [{ id: item.id, status: 'ok', items: 4, seconds: 1.2, record: recordOf.get(item.id) }],
      }),
      OutputDetails: { Included: true },
      Status: 'SUCCEEDED',
    });
  const resultFile = Buffer.concat([
    Buffer.from('['),
    ...items.map((item, i) => Buffer.from(`${i ? ',' : ''}${entry(item)}`)),
    Buffer.from(']'),
  ]);
  const resultWriterBytes = resultFile.byteLength;
  const mapFolder = `runs/${name}/${init.runFolder}map/run-1`;
  const manifest = {
    DestinationBucket: 'scale-out',
    MapRunArn: 'arn:aws:states:us-east-1:123456789012:mapRun:Cai/Inference:run-1',
    ResultFiles: {
      SUCCEEDED: [{ Key: `${mapFolder}/SUCCEEDED_0.json`, Size: resultWriterBytes }],
      FAILED: [],
      PENDING: [],
    },
  };
  await s3.seed(outputs);
  await counted();
  const summarize = createSummarizeHandler(config);
  // The baseline in the same run: Summarize before the Map's export exists (as with a Map that
  // exported nothing), which reads every record with a GET.
  const [, , base] = await timed(() =>
    summarize({
      state: { init: { ...init, mapStartedAt: new Date().toISOString() } } as never,
      executionName: 'first',
      executionStartTime: start,
    }),
  );
  const baseRequests = await counted();
  await s3.seed([
    ['scale-out', `${mapFolder}/SUCCEEDED_0.json`, resultFile],
    ['scale-out', `${mapFolder}/manifest.json`, Buffer.from(JSON.stringify(manifest))],
  ]);
  await counted();
  const state = {
    init: { ...init, mapStartedAt: new Date().toISOString() },
    map: {
      MapRunArn: manifest.MapRunArn,
      ResultWriterDetails: { Bucket: 'scale-out', Key: `${mapFolder}/manifest.json` },
    },
  };
  const [summary, , summ] = await timed(() =>
    summarize({ state: state as never, executionName: 'first', executionStartTime: start }),
  );

  const summarizeRequests = await counted();
  // Resume: a second execution finds every partition done (listings, no per-partition request).
  const [again, , resume] = await timed(() =>
    initialize({ input: { job }, executionName: 'second', executionStartTime: new Date().toISOString() }),
  );

  const resumeRequests = await counted();
  // `cai cost`: reads combined_data.json and bills every record.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-aws-scale-'));
  let cost: Cost;
  try {
    await writeFile(path.join(dir, 'combined_data.json'), await out.get('combined_data.json'));
    await writeFile(path.join(dir, 'summary.json'), await out.get('summary.json'));
    [, , cost] = await timed(async () => {
      const loaded = await loadOutput(dir);
      if (loaded.kind !== 'run') throw new Error('expected a run');
      return billRecords(
        loaded.records.map(
          (r) =>
            ({ ...r, lambda: { ...(r.lambda ?? {}), billed_duration_ms: 1200, memory_mb: 10240 } }) as never,
        ),
        BILL_DEFAULTS,
      );
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  const stage = (c: Cost, requests?: number) =>
    `${s(c.ms)}, CPU ${s(c.cpuMs)}${requests === undefined ? '' : `, ${requests} req`}, ${c.rssMb.toFixed(0)} MB`;
  const row = [
    n.toLocaleString('en-US'),
    stage(plan, planRequests),
    `${payload} B`,
    `${(manifestBytes / KIB).toFixed(0)} KiB`,
    `${(resultWriterBytes / KIB / KIB).toFixed(1)} MiB`,
    stage(base, baseRequests),
    stage(summ, summarizeRequests),
    `x${(summ.ms / base.ms).toFixed(2)} wall, x${(summ.cpuMs / base.cpuMs).toFixed(2)} CPU`,
    stage(resume, resumeRequests),
    stage(cost),
    `${summary.status} ${summary.completed}/${summary.planned}; resume todo ${again.todo}`,
  ];
  console.log(`| ${row.join(' | ')} |`);
  out.close();
}

const s3 = await startMemoryS3(['scale-data', 'scale-out'], latencyMs);
try {
  console.log(
    `# AWS control path at scale, ${latencyMs} ms per S3 request (Initialize and Summarize handlers, synthetic records)`,
  );
  console.log(
    "| partitions | plan (Initialize) | Initialize result | manifest | ResultWriter files | Summarize, a GET per record (baseline) | Summarize, records from the Map's results | vs baseline | resume (Initialize) | cai cost | outcome |",
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const n of sizes) await oneSize(n, s3);
  // Baselines in the same run: one GET at a time (the latency), and 64 at a time (this process's CPU
  // per request, which bounds a stage once requests overlap).
  const probe = new S3Store('s3://scale-out', { s3Endpoint: s3.endpoint });
  await probe.put('probe.json', '{}');
  const [, probeMs] = await timed(async () => {
    for (let i = 0; i < 200; i++) await probe.get('probe.json');
  });
  let next = 0;
  const [, , many] = await timed(() =>
    Promise.all(
      Array.from({ length: 64 }, async () => {
        while (next++ < 4000) await probe.get('probe.json');
      }),
    ),
  );
  console.log(
    `\nbaselines: one GET at a time ${(probeMs / 200).toFixed(1)} ms each; 64 at a time ${((4000 / many.ms) * 1000).toFixed(0)} GET/s, ${(many.cpuMs / 4000).toFixed(2)} ms CPU each`,
  );
  probe.close();
} finally {
  await s3.stop();
}
