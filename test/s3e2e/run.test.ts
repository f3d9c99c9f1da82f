// `cai run` from S3 to S3 through the real CLI, against s3rver on loopback: once cleanly (behind a
// request log that sees every request of every process) and once through a proxy that answers 503
// SlowDown or drops the connection for 30% of requests. Both must write exactly the predictions of a
// local run of the same job, item for item.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { runJob } from '../../src/run/run.js';
import { FileStore } from '../../src/storage/file-store.js';
import { S3Store } from '../../src/storage/s3-store.js';
import type { PredictionRows } from '../../src/summarize/read-predictions.js';
import type { JobSummary } from '../../src/summarize/summarize.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { startFaultProxy, type FaultProxy } from '../helpers/fault-proxy.js';
import { runCli, type CliResult } from '../helpers/s3-cli.js';
import {
  demoJobFlags,
  makeS3Demo,
  predictionsByPartition,
  recordsByPartition,
  type S3Demo,
} from '../helpers/s3-demo.js';
import { startRequestLog, type RequestLog } from '../helpers/s3-request-log.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { listKeys } from '../helpers/s3-upload.js';

const BUCKET = 'cai-e2e';
const WORKERS = 2;

let s3: S3TestServer;
let root: S3Store;
let demo: S3Demo;
let baseline: { summary: JobSummary; rows: Map<string, PredictionRows> };
const proxies: (FaultProxy | RequestLog)[] = [];
const temps: string[] = [];

/** The environment the CLI runs with: s3rver's credentials, and an empty temp folder for the model cache. */
async function cliEnv(): Promise<NodeJS.ProcessEnv> {
  const tmp = await mkdtemp(path.join(os.tmpdir(), 'cai-s3e2e-tmp-'));
  temps.push(tmp);
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
  // The endpoint must reach the workers through the job (--s3-endpoint), not the environment.
  delete env.AWS_ENDPOINT_URL_S3;
  delete env.AWS_ENDPOINT_URL;
  return env;
}

async function runS3(output: string, endpoint: string): Promise<CliResult & { summary: JobSummary }> {
  const result = await runCli(
    [
      'run',
      '--input',
      demo.input,
      '--model',
      demo.model,
      '--output',
      `s3://${BUCKET}/${output}`,
      '--s3-endpoint',
      endpoint,
      '--concurrency',
      String(WORKERS),
      '--threads',
      '1',
      ...demoJobFlags(demo.local.job),
      '--json',
      '--quiet',
    ],
    { env: await cliEnv() },
  );
  assert.equal(result.code, 0, `cai run failed:\n${result.stderr}`);
  return { ...result, summary: JSON.parse(result.stdout) as JobSummary };
}

function expectedKeys(partitions: number): string[] {
  const ids = Array.from({ length: partitions }, (_, i) => String(i + 1));
  return [
    'combined_data.json',
    'job.json',
    'plan.json',
    ...ids.map((id) => `predictions/${id}.parquet`),
    ...ids.map((id) => `results/${id}.json`),
    'result_stats.csv',
    'summary.json',
  ].sort();
}

/** The predictions match the local run's item for item, each partition's rows in item order. */
function assertSamePredictions(rows: Map<string, PredictionRows>): void {
  assert.deepEqual([...rows.keys()].sort(), [...baseline.rows.keys()].sort());
  let total = 0;
  for (const [id, got] of rows) {
    got.forEach((row, i) => {
      assert.equal(row.partition, id);
      assert.equal(row.index, i, `partition ${id}: row ${i} is item ${String(row.index)}`);
    });
    assert.deepEqual(got, baseline.rows.get(id), `partition ${id} differs from the local run`);
    total += got.length;
  }
  assert.equal(total, demo.items);
}

function assertSameSummary(summary: JobSummary): void {
  assert.equal(summary.status, 'succeeded');
  assert.deepEqual(summary.partitions, baseline.summary.partitions);
  assert.equal(summary.items, demo.items);
  assert.equal(summary.failed_items, 0);
  assert.equal(summary.bytes, baseline.summary.bytes);
  assert.ok(summary.metrics, 'metrics from the labels');
  assert.deepEqual(summary.metrics, baseline.summary.metrics);
}

const sumStage = (records: Iterable<PartitionRecord>, stage: string, field: 'requests' | 'retries') =>
  [...records].reduce((a, r) => a + (r.storage?.[stage]?.[field] ?? 0), 0);

before(async () => {
  s3 = await startS3Server([BUCKET]);
  root = new S3Store(`s3://${BUCKET}`, { s3Endpoint: s3.endpoint });
  demo = await makeS3Demo(root, BUCKET);
  const output = await mkdtemp(path.join(os.tmpdir(), 'cai-s3e2e-local-'));
  temps.push(output);
  const summary = await runJob(
    { ...demo.local.job, output, concurrency: WORKERS, threads: 1 },
    { retryBaseMs: 10 },
  );
  baseline = { summary, rows: await predictionsByPartition(new FileStore(output)) };
  assert.equal(summary.status, 'succeeded');
});

after(async () => {
  root?.close();
  await Promise.all(proxies.map((p) => p.stop()));
  await s3?.stop();
  await demo?.cleanup();
  await Promise.all(temps.map((t) => rm(t, { recursive: true, force: true })));
});

test('cai run from S3 to S3 writes what a local run writes, and loads the model once per worker', async (t) => {
  const log = await startRequestLog(s3.endpoint);
  proxies.push(log);
  const { summary, ms } = await runS3('out-clean', log.endpoint);
  const out = new S3Store(`s3://${BUCKET}/out-clean`, { s3Endpoint: s3.endpoint });
  try {
    assertSameSummary(summary);
    assert.equal(summary.output, `s3://${BUCKET}/out-clean`);
    assertSamePredictions(await predictionsByPartition(out));
    assert.deepEqual(await listKeys(out), expectedKeys(demo.partitions));

    const records = await recordsByPartition(out);
    assert.equal(records.size, demo.partitions);
    const pids = new Set([...records.values()].map((r) => r.worker.pid));
    const cold = [...records.values()].filter((r) => r.cold);
    assert.equal(pids.size, WORKERS);
    assert.equal(cold.length, WORKERS, 'one cold partition per worker process');
    const modelSize = (await root.head(demo.modelKey))?.size ?? 0;
    for (const r of records.values()) {
      const predictions = await out.head(`predictions/${r.partition}.parquet`);
      assert.ok(r.storage?.read && r.storage.write, `partition ${r.partition} has storage traffic`);
      assert.equal(r.storage.read.requests, 1, 'a partition is one GET');
      assert.ok(r.storage.read.bytes >= r.bytes && r.bytes > 0);
      assert.ok(r.storage.write.requests >= 1 && r.storage.write.bytes >= (predictions?.size ?? Infinity));
      assert.equal(r.storage.read.retries + r.storage.write.retries, 0);
      if (r.cold) assert.ok((r.storage.model?.requests ?? 0) >= 1, 'the cold partition paid the model');
      else assert.equal(r.storage.model, undefined, 'warm partitions do not download the model');
    }

    // What the server saw, from every process of the run.
    const requests = log.requests();
    const modelPath = `/${BUCKET}/${demo.modelKey}`;
    const modelHeads = requests.filter((r) => r.method === 'HEAD' && r.path === modelPath).length;
    const modelGets = requests.filter((r) => r.method === 'GET' && r.path === modelPath).length;
    // The job checks the model exists before planning, hashes its bytes for the job's identity (a HEAD,
    // and a GET unless the local copy is there), its preflight loads it (a HEAD: the copy is there), and
    // the summary reads the optimization recorded in its metadata from that copy (a HEAD); then each
    // worker process looks it up once.
    assert.equal(modelHeads, WORKERS + 4, 'each worker process looks the model up once');
    assert.ok(modelGets >= 1 && modelGets <= WORKERS + 1, `model GETs: ${modelGets}`);
    const workerModelRequests = cold.reduce((a, r) => a + (r.storage?.model?.requests ?? 0), 0);
    assert.ok(
      workerModelRequests >= WORKERS && workerModelRequests <= modelHeads - 4 + modelGets,
      "the records count the workers' model traffic the server saw (the job's own checks are not a worker's)",
    );
    const modelBytes = cold.reduce((a, r) => a + (r.storage?.model?.bytes ?? 0), 0);
    assert.ok(
      modelBytes <= modelGets * modelSize && modelBytes % modelSize === 0,
      `model bytes ${modelBytes}`,
    );
    for (let id = 1; id <= demo.partitions; id++) {
      const gets = requests.filter((r) => r.method === 'GET' && r.path === `/${BUCKET}/data/${id}.pt`);
      // The preflight reads the first partition once to check its columns against the model's inputs.
      assert.equal(gets.length, id === 1 ? 2 : 1, `partition ${id} was read once by a worker`);
    }
    assert.equal(sumStage(records.values(), 'read', 'requests'), demo.partitions);
    assert.ok(
      requests.every((r) => r.status !== 'dropped' && (r.status as number) < 500),
      'no server errors',
    );
    t.diagnostic(
      `clean run: ${ms.toFixed(0)} ms, ${requests.length} requests (${modelHeads} model HEAD, ${modelGets} model GET of ${modelSize} bytes) for ${demo.partitions} partitions`,
    );
  } finally {
    out.close();
  }
});

test('through 503 SlowDown and dropped connections for 30% of requests, nothing is lost or duplicated', async (t) => {
  const faults = await startFaultProxy({
    target: s3.endpoint,
    seed: 2501,
    slowDownRate: 0.15,
    dropRate: 0.15,
    lifetimeMs: 60_000,
  });
  proxies.push(faults);
  const { summary, ms } = await runS3('out-faulty', faults.endpoint);
  const out = new S3Store(`s3://${BUCKET}/out-faulty`, { s3Endpoint: s3.endpoint });
  try {
    const c = faults.counts();
    assert.ok(c.slowDowns > 0 && c.drops > 0 && c.dropsAfterServer > 0, JSON.stringify(c));
    assertSameSummary(summary);
    assert.equal(summary.run.retries, 0, 'the storage layer absorbed every fault: no partition was retried');
    assertSamePredictions(await predictionsByPartition(out));

    // Nothing else in the bucket: no temporary or partial objects, here or anywhere.
    assert.deepEqual(await listKeys(out), expectedKeys(demo.partitions));
    const stray = (await listKeys(root)).filter(
      (k) => !/^(data\/\d+\.pt|model\/astromae\.onnx|out-clean\/.*)$/.test(k) && !k.startsWith('out-faulty/'),
    );
    assert.deepEqual(stray, []);

    const records = [...(await recordsByPartition(out)).values()];
    assert.equal(records.length, demo.partitions);
    assert.ok(records.every((r) => r.attempt === 1));
    const retries = ['read', 'write', 'model'].map((s) => sumStage(records, s, 'retries'));
    const requests = ['read', 'write', 'model'].map((s) => sumStage(records, s, 'requests'));
    assert.ok(
      retries.reduce((a, b) => a + b, 0) > 0,
      `the records show the retries: ${JSON.stringify(retries)}`,
    );
    t.diagnostic(
      `faulty run: ${ms.toFixed(0)} ms; proxy ${JSON.stringify(c)}; records read/write/model requests ${requests.join('/')}, retries ${retries.join('/')}`,
    );
  } finally {
    out.close();
  }
});
