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
//   npm run bench:hundred-k -- [--sizes 10000,100000] [--latency 20] [--concurrency 1000]
import { performance } from 'node:perf_hooks';
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

interface StageCost {
  ms: number;
  rssMb: number;
  requests: Record<string, number>;
}

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
          rss = process.memoryUsage.rss();
        } else if (!stages.has(stage)) {
          const before = kindsAt.get(stage);
          const peak = Math.max(rss, process.memoryUsage.rss());
          const ms = now - (enteredAt.get(stage) ?? now);
          const cost: StageCost = { ms, rssMb: peak / 2 ** 20, requests: {} };
          stages.set(stage, cost);
          void Promise.all([before, s3.requestsByKind()]).then(([a, b]) => {
            for (const k of new Set([...Object.keys(a ?? {}), ...Object.keys(b)]))
              cost.requests[k] = (b[k] ?? 0) - (a?.[k] ?? 0);
          });
        }
      },
    });
  } finally {
    clearInterval(sampler);
  }
  const wallMs = performance.now() - t0;
  await s3.requestsByKind(); // let the last stage's count land
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
  if (results.length >= 2) {
    const [base, big] = [results[0], results[results.length - 1]];
    const ratio = (f: (r: SizeResult) => number) => (f(big) / f(base)).toFixed(2);
    console.log(
      `\nscaling ${big.n.toLocaleString('en-US')} / ${base.n.toLocaleString('en-US')} (x${big.n / base.n} partitions): wall x${ratio((r) => r.wallMs)}; ${STAGES.map(([k]) => `${k} x${ratio((r) => r.stages.get(k)?.ms ?? NaN)}`).join(', ')}; peak RSS ${STAGES.map(([k]) => `${k} x${ratio((r) => r.stages.get(k)?.rssMb ?? NaN)}`).join(', ')}`,
    );
  }
} finally {
  await s3.stop();
}
