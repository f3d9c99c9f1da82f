// Truncated 200s on every kind of read: a proxy answers 10% of GETs (and the first GET of every object
// the job reads: partitions, the model, the lock, job.json, plan.json, records, summary.json) with a
// well-formed 200/206 whose Content-Length and body are half the object's. The job completes exactly
// once with exit 0, its predictions are a clean run's, and the records count the retries; nothing is
// called corrupt.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import '../../src/storage/register.js';
import { runJob } from '../../src/run/run.js';
import { FileStore } from '../../src/storage/file-store.js';
import { S3Store } from '../../src/storage/s3-store.js';
import type { PredictionRows } from '../../src/summarize/read-predictions.js';
import type { JobSummary } from '../../src/summarize/summarize.js';
import { createWorkerContext } from '../../src/worker/context.js';
import { resolveJob } from '../../src/job/spec.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { runCli } from '../helpers/s3-cli.js';
import {
  demoJobFlags,
  makeS3Demo,
  predictionsByPartition,
  recordsByPartition,
  type S3Demo,
} from '../helpers/s3-demo.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';

const BUCKET = 'cai-short';
let s3: S3TestServer;
let root: S3Store;
let demo: S3Demo;
let baseline: Map<string, PredictionRows>;
const proxies: FaultProxy[] = [];
const temps: string[] = [];

async function tempDir(name: string): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `cai-short-${name}-`));
  temps.push(dir);
  return dir;
}

before(async () => {
  s3 = await startS3Server([BUCKET]);
  root = new S3Store(`s3://${BUCKET}`, { s3Endpoint: s3.endpoint });
  demo = await makeS3Demo(root, BUCKET);
  const output = await tempDir('local');
  const summary = await runJob(
    { ...demo.local.job, output, concurrency: 2, threads: 1 },
    { retryBaseMs: 10 },
  );
  assert.equal(summary.status, 'succeeded');
  baseline = await predictionsByPartition(new FileStore(output));
});

after(async () => {
  root?.close();
  await Promise.all(proxies.map((p) => p.stop()));
  await s3?.stop();
  await demo?.cleanup();
  await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
});

test('10% of GETs (and the first of every object) cut short: the job completes once, exit 0, retries counted', async (t) => {
  const output = 'out-short';
  const proxy = await startFaultProxy({
    target: s3.endpoint,
    seed: 27,
    shortRate: 0.1,
    shortFirst: (url) =>
      new RegExp(
        `/${output}/(results/|plan\\.json|job\\.json|summary\\.json|cai\\.lock)|/data/|/model/`,
      ).test(url),
    lifetimeMs: 90_000,
  });
  proxies.push(proxy);
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: await tempDir('tmp') };
  delete env.AWS_ENDPOINT_URL_S3;
  delete env.AWS_ENDPOINT_URL;
  const args = [
    'run',
    '--input',
    demo.input,
    '--model',
    demo.model,
    '--output',
    `s3://${BUCKET}/${output}`,
    '--s3-endpoint',
    proxy.endpoint,
    '--concurrency',
    '2',
    '--threads',
    '1',
    ...demoJobFlags(demo.local.job),
    '--json',
    '--quiet',
  ];
  // Twice: the second run resumes, so it reads job.json, plan.json and summary.json too.
  for (const run of [1, 2]) {
    const r = await runCli(args, { env, timeoutMs: 90_000 });
    assert.equal(r.code, 0, `run ${run} exited ${String(r.code)}:\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /corrupt|not valid JSON/i);
    const summary = JSON.parse(r.stdout) as JobSummary;
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.items, demo.items);
    assert.equal(
      summary.run.partitions,
      run === 1 ? demo.partitions : 0,
      `run ${run} did each partition once`,
    );
  }
  const shortUrls = proxy.counts().shortUrls;
  for (const kind of ['/data/', '/model/', 'cai.lock', 'job.json', 'plan.json', '/results/', 'summary.json'])
    assert.ok(
      shortUrls.some((u) => u.includes(kind)),
      `a read of ${kind} was cut short: ${shortUrls.join(' ')}`,
    );

  const out = new S3Store(`s3://${BUCKET}/${output}`, { s3Endpoint: s3.endpoint });
  try {
    const rows = await predictionsByPartition(out);
    assert.deepEqual([...rows.keys()].sort(), [...baseline.keys()].sort());
    for (const [id, got] of rows) assert.deepEqual(got, baseline.get(id), `partition ${id}`);
    const records = [...(await recordsByPartition(out)).values()];
    assert.equal(records.length, demo.partitions);
    assert.ok(
      records.every((r) => r.attempt === 1),
      'no partition was retried: the store absorbed the faults',
    );
    const readRetries = records.reduce((a, r) => a + (r.storage?.read?.retries ?? 0), 0);
    // Partition 1's first GET is the preflight's (no record); every other partition's first GET is a worker's.
    assert.ok(readRetries >= demo.partitions - 1, `every worker's cut read counted: ${readRetries}`);
    t.diagnostic(`${shortUrls.length} short answers; ${readRetries} read retries in the records`);
  } finally {
    out.close();
  }
});

test("a model download cut short is retried and counted in the worker's model traffic", async () => {
  const proxy = await startFaultProxy({
    target: s3.endpoint,
    shortRate: 0,
    shortFirst: (u) => u.includes('/model/'),
  });
  proxies.push(proxy);
  const previous = process.env.TMPDIR;
  process.env.TMPDIR = await tempDir('model-cache');
  try {
    const job = resolveJob(
      {
        ...demo.local.job,
        input: demo.input,
        model: demo.model,
        output: `s3://${BUCKET}/out-model`,
        s3Endpoint: proxy.endpoint,
      },
      { partitions: 1 },
    );
    const ctx = await createWorkerContext(job);
    try {
      assert.ok(proxy.counts().shorts >= 1, JSON.stringify(proxy.counts()));
      assert.ok((ctx.modelTraffic?.retries ?? 0) >= 1, JSON.stringify(ctx.modelTraffic));
    } finally {
      await ctx.model.release();
    }
  } finally {
    if (previous === undefined) delete process.env.TMPDIR;
    else process.env.TMPDIR = previous;
  }
});
