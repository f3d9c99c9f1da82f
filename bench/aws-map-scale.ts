// A whole AWS execution at 1,000 / 10,000 / 100,000 partitions, offline: the synthesized state machine
// (Initialize -> Distributed Map -> Summarize, exactly as CDK renders it) run by the offline executor,
// CAI's real Initialize and Summarize handlers, the Lambda service's own timeouts (Initialize 5 min,
// Summarize 15 min), against the in-memory S3 endpoint answering each request after ~20 ms. Only the
// inference function is replaced: each child checks for its record as the real one does (two listings)
// and writes a synthetic record and predictions (two puts) instead of running a model, because a
// thousand concurrent containers each loading onnxruntime is not what this measures. IAM enforcement
// (a proxy per function) is off: it doubles every request's hops and is tested by test/aws.
//
//   node dist/bench/aws-map-scale.js [--sizes 1000,10000,100000] [--latency 20] [--concurrency 1000]
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
    sizes: { type: 'string', default: '1000,10000,100000' },
    latency: { type: 'string', default: '20' },
    concurrency: { type: 'string', default: '1000' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const latencyMs = Number(values.latency);
const bucket = (uri: string) => new URL(uri).host;

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

async function oneSize(n: number, s3: MemoryS3, templateFile: string): Promise<void> {
  const name = `n${n}`;
  const job = await seedSyntheticJob(s3, name, n, Number(values.concurrency));
  const stateTimes = new Map<string, number>();
  const r0 = await s3.requests();
  let rss = process.memoryUsage.rss();
  const sampler = setInterval(() => (rss = Math.max(rss, process.memoryUsage.rss())), 200);
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
      executionName: `scale-${name}`,
      onState: (event) => {
        stateTimes.set(`${event.name}:${event.phase === 'entered' ? 'in' : 'out'}`, performance.now());
      },
    });
  } finally {
    clearInterval(sampler);
  }
  const wall = performance.now() - t0;
  const requests = (await s3.requests()) - r0;
  const stage = (state: string) => {
    const a = stateTimes.get(`${state}:in`);
    const b = stateTimes.get(`${state}:out`);
    return a !== undefined && b !== undefined ? s(b - a) : '-';
  };
  const map = result.mapRuns[0];
  const summary = result.output as { summary?: { status?: string; completed?: number } };
  console.log(
    `| ${n.toLocaleString('en-US')} | ${result.status}${result.error ? ` ${result.error}: ${result.cause?.slice(0, 200)}` : ''} | ${stage('Initialize')} | ${stage('Inference')} (${map?.itemCounts.succeeded ?? 0} ok, ${map?.itemCounts.failed ?? 0} failed) | ${stage('Summarize')} | ${summary.summary?.status ?? '-'} ${summary.summary?.completed ?? 0}/${n} | ${s(wall)} | ${requests.toLocaleString('en-US')} | ${(rss / 2 ** 20).toFixed(0)} MB |`,
  );
}

const s3 = await startMemoryS3([bucket(DEPLOYMENT.data), bucket(DEPLOYMENT.output)], latencyMs);
try {
  const synth = await synthTest();
  console.log(
    `# A whole execution offline, ${latencyMs} ms per S3 request, Map concurrency ${values.concurrency} (synthetic inference)`,
  );
  console.log(
    '| partitions | execution | Initialize | Map | Summarize | summary | wall | S3 requests | peak RSS |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const n of sizes) await oneSize(n, s3, synth.templateFile);
} finally {
  await s3.stop();
}
