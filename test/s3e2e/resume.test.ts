// Resume on S3 as on disk: a partition whose record or predictions went missing from the bucket is
// run again, and only it; the outputs end up complete and identical to the first run's.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import '../../src/storage/register.js';
import { runJob } from '../../src/run/run.js';
import type { JobSpec } from '../../src/job/spec.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { makeS3Demo, predictionsByPartition, type S3Demo } from '../helpers/s3-demo.js';
import { startRequestLog, type RequestLog } from '../helpers/s3-request-log.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { listKeys } from '../helpers/s3-upload.js';

const BUCKET = 'resume';

let tmp: string;
let previousTmp: string | undefined;
let s3: S3TestServer;
let log: RequestLog;
let root: S3Store;
let demo: S3Demo;

before(async () => {
  // Everything this file makes, the workers' model cache included, goes in one folder removed after.
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cai-s3e2e-resume-'));
  previousTmp = process.env.TMPDIR;
  process.env.TMPDIR = tmp;
  s3 = await startS3Server([BUCKET]);
  log = await startRequestLog(s3.endpoint);
  root = new S3Store(`s3://${BUCKET}`, { s3Endpoint: s3.endpoint });
  demo = await makeS3Demo(root, BUCKET, { partitions: 4, itemsPerPartition: 30 });
});

after(async () => {
  root?.close();
  await log?.stop();
  await s3?.stop();
  await demo?.cleanup();
  if (previousTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = previousTmp;
  await rm(tmp, { recursive: true, force: true });
});

test('a second run on S3 redoes only the partitions whose outputs are missing', async () => {
  const job: JobSpec = {
    ...demo.local.job,
    input: demo.input,
    model: demo.model,
    output: `s3://${BUCKET}/out`,
    s3Endpoint: log.endpoint,
    concurrency: 2,
    threads: 1,
  };
  const out = new S3Store(job.output, { s3Endpoint: s3.endpoint });
  try {
    const first = await runJob(job, { retryBaseMs: 10 });
    assert.equal(first.status, 'succeeded');
    assert.equal(first.partitions.completed, 4);
    const rows = await predictionsByPartition(out);
    const keys = await listKeys(out);
    const untouched = { one: await out.get('results/1.json'), four: await out.get('results/4.json') };

    // One partition lost its record, another its predictions.
    await out.delete('results/2.json');
    await out.delete('predictions/3.parquet');
    const started: string[] = [];
    const mark = log.requests().length;
    const second = await runJob(job, {
      retryBaseMs: 10,
      onEvent: (e) => {
        if (e.type === 'start') started.push(e.partition.id);
      },
    });
    assert.equal(second.status, 'succeeded');
    assert.deepEqual(started.sort(), ['2', '3']);
    assert.equal(second.partitions.resumed, 2);
    assert.equal(second.run.partitions, 2);
    assert.equal(second.partitions.completed, 4);
    assert.equal(second.items, demo.items);
    assert.equal(second.runs.length, 2);
    assert.deepEqual(second.metrics, first.metrics);

    // Complete and identical: the same objects, the same rows, untouched records left alone.
    assert.deepEqual(await listKeys(out), keys);
    assert.deepEqual(await predictionsByPartition(out), rows);
    assert.deepEqual(await out.get('results/1.json'), untouched.one);
    assert.deepEqual(await out.get('results/4.json'), untouched.four);
    // The resumed run read only the two partitions it redid, and re-planned nothing: it listed the input
    // once (the listing is part of the job's identity: a partition added since would be refused).
    const again = log.requests().slice(mark);
    const reads = again.filter((r) => r.method === 'GET' && r.path.startsWith(`/${BUCKET}/data/`));
    assert.deepEqual(reads.map((r) => r.path).sort(), [`/${BUCKET}/data/2.pt`, `/${BUCKET}/data/3.pt`]);
    const listings = again.filter((r) => /(^|&)list-type=2/.test(r.query) && r.query.includes('data'));
    assert.equal(listings.length, 1);

    // A third run has nothing to do and starts no worker.
    const third = await runJob(job, { retryBaseMs: 10, onEvent: (e) => assert.notEqual(e.type, 'start') });
    assert.deepEqual([third.partitions.resumed, third.run.partitions, third.runs.length], [4, 0, 3]);
  } finally {
    out.close();
  }
});
