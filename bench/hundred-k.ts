// Issue 27, item 6: 100,000 partitions end to end offline, with 10,000 as the same-run baseline. The
// AWS engine's whole execution as CDK synthesizes it (Initialize = plan -> Distributed Map -> Summarize)
// run by the offline executor with CAI's real Initialize and Summarize handlers, against the in-memory
// S3 endpoint (test/helpers/memory-s3.ts, its own process) answering every request after ~20 ms.
// Partitions are 64-byte objects seeded straight into the server's memory (not timed). The inference
// function is the trivial stand-in of bench/aws-map-scale.ts: the real resume check (two HEADs through
// the listing cache) and the worker's two writes (record and predictions), no model run: a thousand
// concurrent containers each loading onnxruntime on two cores is not what this measures, and the local
// engine (one onnxruntime session per worker, one partition at a time per worker) would spend hours on
// 100,000 partitions here. Stage boundaries come from the executor's state events; requests are counted
// by the server by kind as they arrive (the count is read over IPC at each boundary, so a stage may be
// charged a handful of its neighbour's requests). Peak RSS is this process's (executor, handlers and
// stand-in children share it), sampled every 100 ms and reset at each stage's start.
//
// With --profile DIR, each stage of each size is profiled in this process through the inspector: a CPU
// profile (DIR/<n>-<stage>.cpuprofile, for Chrome DevTools or speedscope) and V8's sampling heap
// profile of what the stage allocated (DIR/<n>-<stage>.heapprofile). The profilers cost time: compare
// stage times of profiled runs with profiled runs only.
//
//   npm run bench:hundred-k -- [--sizes 10000,100000] [--latency 20] [--concurrency 1000] [--profile DIR]
import { mkdir, writeFile } from 'node:fs/promises';
import { Session } from 'node:inspector/promises';
import path from 'node:path';
import { performance, PerformanceObserver } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import '../src/storage/register.js';
import { runOfflineExecution } from '../test/helpers/aws-offline/executor.js';
import { CAI_HANDLERS } from '../test/helpers/aws-offline/handlers.js';
import { startMemoryS3, type MemoryS3 } from '../test/helpers/memory-s3.js';
import { seedSyntheticJob, syntheticInference } from '../test/helpers/synthetic-inference.js';
import { DEPLOYMENT, synthTest } from '../test/aws/fixture.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '10000,100000' },
    latency: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '1000' },
    profile: { type: 'string' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const latencyMs = Number(values.latency);
const bucket = (uri: string) => new URL(uri).host;
const STAGES = [
  ['plan', 'Initialize'],
  ['map', 'Inference'],
  ['summarize', 'Summarize'],
] as const;
const KINDS = ['LIST', 'GET', 'HEAD', 'PUT'] as const;

/** Profiles one stage at a time (CPU and sampled allocations) through the inspector, when asked to. */
class StageProfiler {
  private readonly session = new Session();
  private queue: Promise<unknown> = Promise.resolve();
  private started = false;

  constructor(private readonly dir: string) {}

  start(): void {
    this.queue = this.queue.then(async () => {
      if (!this.started) {
        this.session.connect();
        await mkdir(this.dir, { recursive: true });
        await this.session.post('Profiler.enable');
        await this.session.post('Profiler.setSamplingInterval', { interval: 1000 });
        await this.session.post('HeapProfiler.enable');
        this.started = true;
      }
      await this.session.post('Profiler.start');
      await this.session.post('HeapProfiler.startSampling', {
        samplingInterval: 64 * 1024,
        includeObjectsCollectedByMajorGC: true,
        includeObjectsCollectedByMinorGC: true,
      });
    });
  }

  stop(name: string): void {
    this.queue = this.queue.then(async () => {
      const { profile } = await this.session.post('Profiler.stop');
      const { profile: heap } = await this.session.post('HeapProfiler.stopSampling');
      await writeFile(path.join(this.dir, `${name}.cpuprofile`), JSON.stringify(profile));
      await writeFile(path.join(this.dir, `${name}.heapprofile`), JSON.stringify(heap));
    });
  }

  async close(): Promise<void> {
    await this.queue;
    if (this.started) this.session.disconnect();
  }
}
const profiler = values.profile ? new StageProfiler(values.profile) : undefined;

interface StageCost {
  ms: number;
  rssMb: number;
  requests: Record<string, number>;
  /** CPU seconds of this process (executor, handlers, stand-in children), user + system. */
  cpu: number;
  /** Seconds of garbage collection pauses in this process. */
  gc: number;
  /** CPU seconds of the S3 server's process. */
  s3Cpu: number;
}

// Garbage collection pauses of this process, summed as they are reported.
let gcMs = 0;
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcMs += e.duration;
}).observe({ entryTypes: ['gc'] });
const cpuNow = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1e6;
};

interface SizeResult {
  n: number;
  status: string;
  wallMs: number;
  stages: Map<string, StageCost>;
  summary: string;
}

async function oneSize(n: number, s3: MemoryS3, templateFile: string): Promise<SizeResult> {
  const name = `k${n}`;
  const job = await seedSyntheticJob(s3, name, n, Number(values.concurrency));
  const enteredAt = new Map<string, number>();
  const kindsAt = new Map<string, Promise<Record<string, number>>>();
  const at = new Map<string, { cpu: number; gc: number; s3Cpu: Promise<number> }>();
  const stages = new Map<string, StageCost>();
  let rss = 0;
  const sampler = setInterval(() => (rss = Math.max(rss, process.memoryUsage.rss())), 100);
  const t0 = performance.now();
  let result: Awaited<ReturnType<typeof runOfflineExecution>>;
  try {
    result = await runOfflineExecution({
      template: templateFile,
      input: { job },
      s3Endpoint: s3.endpoint,
      handlers: { ...CAI_HANDLERS, 'index.handler': () => syntheticInference() },
      enforceIam: false,
      waitScale: 0.001,
      executionName: `hundred-k-${name}`,
      onState: (event) => {
        const stage = STAGES.find(([, state]) => state === event.name)?.[0];
        if (!stage) return;
        const now = performance.now();
        if (event.phase === 'entered') {
          enteredAt.set(stage, now);
          kindsAt.set(stage, s3.requestsByKind());
          at.set(stage, { cpu: cpuNow(), gc: gcMs, s3Cpu: s3.cpuSeconds() });
          rss = process.memoryUsage.rss();
          profiler?.start();
        } else if (!stages.has(stage)) {
          const before = kindsAt.get(stage);
          const peak = Math.max(rss, process.memoryUsage.rss());
          const ms = now - (enteredAt.get(stage) ?? now);
          const start = at.get(stage);
          const cost: StageCost = {
            ms,
            rssMb: peak / 2 ** 20,
            requests: {},
            cpu: cpuNow() - (start?.cpu ?? 0),
            gc: (gcMs - (start?.gc ?? 0)) / 1000,
            s3Cpu: NaN,
          };
          profiler?.stop(`${n}-${stage}`);
          stages.set(stage, cost);
          void Promise.all([before, s3.requestsByKind(), start?.s3Cpu, s3.cpuSeconds()]).then(
            ([a, b, s3Before, s3After]) => {
              for (const k of new Set([...Object.keys(a ?? {}), ...Object.keys(b)]))
                cost.requests[k] = (b[k] ?? 0) - (a?.[k] ?? 0);
              cost.s3Cpu = s3After - (s3Before ?? 0);
            },
          );
        }
      },
    });
  } finally {
    clearInterval(sampler);
  }
  const wallMs = performance.now() - t0;
  await s3.requestsByKind(); // let the last stage's count land
  await s3.cpuSeconds();
  const summary = result.output as { summary?: { status?: string; completed?: number } };
  return {
    n,
    status: `${result.status}${result.error ? ` ${result.error}: ${result.cause?.slice(0, 300)}` : ''}`,
    wallMs,
    stages,
    summary: `${summary.summary?.status ?? '-'} ${summary.summary?.completed ?? 0}/${n}`,
  };
}

const sec = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
const s3 = await startMemoryS3([bucket(DEPLOYMENT.data), bucket(DEPLOYMENT.output)], latencyMs);
const results: SizeResult[] = [];
try {
  const synth = await synthTest();
  console.log(
    `# End to end offline: ${sizes.map((n) => n.toLocaleString('en-US')).join(' and ')} partitions, ${latencyMs} ms per S3 request, Map concurrency ${values.concurrency}, trivial inference`,
  );
  console.log(
    '| partitions | execution | summary | wall | plan | map | summarize | plan req/partition (LIST/GET/HEAD/PUT) | map req/partition | summarize req/partition | peak RSS plan | peak RSS map | peak RSS summarize |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|---|---|---|');
  for (const n of sizes) {
    const r = await oneSize(n, s3, synth.templateFile);
    results.push(r);
    const st = (k: string) => r.stages.get(k);
    const perPartition = (k: string) => {
      const req = st(k)?.requests ?? {};
      const other = Object.entries(req).filter(
        ([kind, v]) => !(KINDS as readonly string[]).includes(kind) && v,
      );
      return (
        KINDS.map((kind) => ((req[kind] ?? 0) / n).toFixed(3)).join(' / ') +
        (other.length ? ` (+ ${other.map(([kind, v]) => `${v} ${kind}`).join(', ')})` : '')
      );
    };
    console.log(
      `| ${n.toLocaleString('en-US')} | ${r.status} | ${r.summary} | ${sec(r.wallMs)} | ${STAGES.map(([k]) => sec(st(k)?.ms ?? NaN)).join(' | ')} | ${STAGES.map(([k]) => perPartition(k)).join(' | ')} | ${STAGES.map(([k]) => `${(st(k)?.rssMb ?? NaN).toFixed(0)} MB`).join(' | ')} |`,
    );
  }
  // Where the time went: CPU of this process (CAI's handlers, the executor and stand-in children),
  // its garbage collection, and the S3 server's CPU, per stage; microseconds a partition.
  console.log(
    '\n| partitions | CPU plan | CPU map | CPU summarize | GC map | GC summarize | S3 server CPU map | S3 server CPU summarize | CPU/partition map | CPU/partition summarize |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  for (const r of results) {
    const st = (k: string) => r.stages.get(k);
    const perItem = (k: string) => `${(((st(k)?.cpu ?? NaN) / r.n) * 1e6).toFixed(0)} us`;
    console.log(
      `| ${r.n.toLocaleString('en-US')} | ${STAGES.map(([k]) => `${(st(k)?.cpu ?? NaN).toFixed(1)} s`).join(' | ')} | ${['map', 'summarize'].map((k) => `${(st(k)?.gc ?? NaN).toFixed(1)} s`).join(' | ')} | ${['map', 'summarize'].map((k) => `${(st(k)?.s3Cpu ?? NaN).toFixed(1)} s`).join(' | ')} | ${perItem('map')} | ${perItem('summarize')} |`,
    );
  }
  if (results.length >= 2) {
    const base = results[0];
    for (const big of results.slice(1)) {
      const ratio = (f: (r: SizeResult) => number) => (f(big) / f(base)).toFixed(2);
      const of = (k: string, f: (c: StageCost) => number) => (r: SizeResult) => {
        const c = r.stages.get(k);
        return c ? f(c) : NaN;
      };
      console.log(
        `\nscaling ${big.n.toLocaleString('en-US')} / ${base.n.toLocaleString('en-US')} (x${big.n / base.n} partitions): wall x${ratio((r) => r.wallMs)}; ${STAGES.map(([k]) => `${k} x${ratio(of(k, (c) => c.ms))}`).join(', ')}; CPU ${STAGES.map(([k]) => `${k} x${ratio(of(k, (c) => c.cpu))}`).join(', ')}; GC ${['map', 'summarize'].map((k) => `${k} x${ratio(of(k, (c) => c.gc))}`).join(', ')}; peak RSS ${STAGES.map(([k]) => `${k} x${ratio(of(k, (c) => c.rssMb))}`).join(', ')}`,
      );
    }
  }
} finally {
  await profiler?.close();
  await s3.stop();
}
