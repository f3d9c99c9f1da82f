// The AWS engine's control path at 1,000 / 10,000 / 100,000 partitions, offline: CAI's real Initialize
// and Summarize handlers against a loopback S3 (s3rver) behind a proxy that delays every request by
// ~20 ms, as S3 from a Lambda in the same region does. Partitions are tiny; their records and
// predictions are synthetic (written as the worker writes them, no inference run): the Map's own
// work scales out across Lambdas and is not what this measures. The Map's manifest and ResultWriter
// files are sized from the planned items; `cai aws run`'s polling is two API calls per poll whatever N.
//
//   node dist/bench/aws-scale.js [--sizes 1000,10000,100000] [--latency 20]
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
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
import { startS3Server } from '../test/helpers/s3-server.js';
import { syntheticPlan, writeSyntheticOutputs } from '../test/helpers/synthetic-records.js';

const { values } = parseArgs({
  options: {
    sizes: { type: 'string', default: '1000,10000,100000' },
    latency: { type: 'string', default: '20' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const latencyMs = Number(values.latency);

// Every request waits `latencyMs` before it is forwarded: S3's first-byte latency, not bandwidth.
async function delayingProxy(
  target: string,
): Promise<{ endpoint: string; requests: () => number; stop(): Promise<void> }> {
  const t = new URL(target);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  let count = 0;
  const server = http.createServer((req, res) => {
    count++;
    setTimeout(() => {
      const up = http.request(
        { host: t.hostname, port: t.port, method: req.method, path: req.url, headers: req.headers, agent },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    }, latencyMs);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    requests: () => count,
    stop: () =>
      new Promise<void>((resolve) => {
        agent.destroy();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

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

async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = performance.now();
  const v = await fn();
  return [v, performance.now() - t0];
}

async function oneSize(n: number, endpoint: string, direct: string, requests: () => number): Promise<void> {
  const name = `n${n}`;
  const raw = (uri: string) => new S3Store(uri, { s3Endpoint: direct });
  // Seeding goes straight to the server (not timed, not delayed).
  const data = raw(`${config.data}/${name}`);
  const seed = syntheticPlan(n, 64);
  let next = 0;
  await Promise.all(
    Array.from({ length: 64 }, async () => {
      while (next < seed.length) await data.put(seed[next++].key, new Uint8Array(64));
    }),
  );
  const job = {
    input: `${config.data}/${name}`,
    output: `${config.output}/${name}`,
    model: config.model,
    s3Endpoint: endpoint,
    predictionsFormat: 'jsonl' as const,
  };
  const initialize = createInitializeHandler(config);
  const start = new Date().toISOString();
  let r0 = requests();
  const counted = () => {
    const r = requests() - r0;
    r0 = requests();
    return r;
  };
  const [init, planMs] = await timed(() =>
    initialize({ input: { job }, executionName: 'first', executionStartTime: start }),
  );
  const planRequests = counted();
  const payload = Buffer.byteLength(JSON.stringify({ init }));
  const out = raw(job.output);
  const manifestBytes = (await out.head(`${init.runFolder}items.json`))?.size ?? 0;

  // The Map's ResultWriter files: one entry per child with its input (and output), as Step Functions
  // writes them; sized from the manifest's items with CAI's per-partition output.
  const items = JSON.parse(
    new TextDecoder().decode(await out.get(`${init.runFolder}items.json`)),
  ) as unknown[];
  const entry = (item: unknown) =>
    JSON.stringify({
      ExecutionArn: `arn:aws:states:us-east-1:123456789012:execution:Cai/Inference:${'0'.repeat(36)}`,
      Input: JSON.stringify({ partition: item, task: init.task, retryCount: 0 }),
      InputDetails: { Included: true },
      Output: JSON.stringify({ partitions: [{ id: '1', status: 'ok', items: 4, seconds: 1.2 }] }),
      OutputDetails: { Included: true },
      Status: 'SUCCEEDED',
    });
  const resultWriterBytes = items.reduce<number>((a, item) => a + Buffer.byteLength(entry(item)) + 1, 2);

  // The Map's outcome: every partition's record and predictions (synthetic), written directly.
  await writeSyntheticOutputs(out, syntheticPlan(n, 64));

  counted();
  const summarize = createSummarizeHandler(config);
  const state = { init: { ...init, mapStartedAt: new Date().toISOString() } };
  const [summary, summarizeMs] = await timed(() =>
    summarize({ state: state as never, executionName: 'first', executionStartTime: start }),
  );

  const summarizeRequests = counted();
  // Resume: a second execution finds every partition done (listings, no per-partition request).
  const [again, resumeMs] = await timed(() =>
    initialize({ input: { job }, executionName: 'second', executionStartTime: new Date().toISOString() }),
  );

  const resumeRequests = counted();
  // `cai cost`: reads combined_data.json and bills every record.
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-aws-scale-'));
  let costMs: number;
  try {
    await writeFile(path.join(dir, 'combined_data.json'), await out.get('combined_data.json'));
    await writeFile(path.join(dir, 'summary.json'), await out.get('summary.json'));
    [, costMs] = await timed(async () => {
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

  const row = [
    n.toLocaleString('en-US'),
    `${s(planMs)} (${planRequests} req)`,
    `${payload} B`,
    `${(manifestBytes / KIB).toFixed(0)} KiB`,
    `${(resultWriterBytes / KIB / KIB).toFixed(1)} MiB`,
    `${s(summarizeMs)} (${summarizeRequests} req)`,
    `${s(resumeMs)} (${resumeRequests} req)`,
    s(costMs),
    `${summary.status} ${summary.completed}/${summary.planned}; resume todo ${again.todo}`,
  ];
  console.log(`| ${row.join(' | ')} |`);
  data.close();
  out.close();
}

const server = await startS3Server(['scale-data', 'scale-out']);
const proxy = await delayingProxy(server.endpoint);
try {
  console.log(
    `# AWS control path at scale, ${latencyMs} ms per S3 request (Initialize and Summarize handlers, synthetic records)`,
  );
  console.log(
    '| partitions | plan (Initialize) | Initialize result | manifest | ResultWriter files | Summarize | resume (Initialize) | cai cost | outcome |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const n of sizes) await oneSize(n, proxy.endpoint, server.endpoint, proxy.requests);
  // A baseline in the same run: one request through the proxy, sequentially, 200 times.
  const probe = new S3Store('s3://scale-out', { s3Endpoint: proxy.endpoint });
  await probe.put('probe.json', '{}');
  const [, probeMs] = await timed(async () => {
    for (let i = 0; i < 200; i++) await probe.get('probe.json');
  });
  console.log(`\nbaseline: one GET through the proxy, sequentially: ${(probeMs / 200).toFixed(1)} ms`);
  probe.close();
} finally {
  await proxy.stop();
  await server.stop();
}
