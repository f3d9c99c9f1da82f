// Errors a person must fix (a missing bucket, a missing model) end `cai run` at once with a message
// naming the s3:// URI, instead of retrying: each failing request is sent once.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { encodePtDataset } from '../../src/formats/writers/pt-writer.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { runCli } from '../helpers/s3-cli.js';
import { startRequestLog, type RequestLog } from '../helpers/s3-request-log.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { listKeys } from '../helpers/s3-upload.js';

const BUCKET = 'present';
// Long enough for a CLI and a worker to start on a busy 2-core machine; far shorter than the default
// retry policy would take to give up (8 tries, about 13 s of backoff per request).
const QUICK_MS = 8_000;

let tmp: string;
let s3: S3TestServer;
let log: RequestLog;
let root: S3Store;

before(async () => {
  tmp = await mkdtemp(path.join(os.tmpdir(), 'cai-s3e2e-errors-'));
  s3 = await startS3Server([BUCKET]);
  log = await startRequestLog(s3.endpoint);
  root = new S3Store(`s3://${BUCKET}`, { s3Endpoint: s3.endpoint });
  const images = {
    dtype: 'float32',
    shape: [2, 5, 32, 32],
    data: new Float32Array(2 * 5 * 32 * 32),
  } as const;
  const mags = { dtype: 'float64', shape: [2, 5], data: new Float64Array(10) } as const;
  await root.put('data/1.pt', encodePtDataset([images, mags], '1'));
  // A model object that exists, so the bucket tests fail on the bucket, not on the model check.
  await root.put('model.onnx', buildTrivial({ inputName: 'image' }));
});

after(async () => {
  root?.close();
  await log?.stop();
  await s3?.stop();
  await rm(tmp, { recursive: true, force: true });
});

function run(input: string, model: string, output: string) {
  const env: NodeJS.ProcessEnv = { ...process.env, TMPDIR: tmp };
  delete env.AWS_ENDPOINT_URL_S3;
  return runCli(
    [
      'run',
      '--input',
      input,
      '--model',
      model,
      '--output',
      output,
      '--s3-endpoint',
      log.endpoint,
      '-c',
      '1',
      '-q',
    ],
    { env, timeoutMs: 30_000 },
  );
}

/** Requests whose path starts with `prefix`; each must have been sent once (no retries). */
function sentOnce(prefix: string, from: number) {
  const seen = log
    .requests()
    .slice(from)
    .filter((r) => r.path.startsWith(prefix));
  const signatures = seen.map((r) => `${r.method} ${r.path}?${r.query}`);
  assert.equal(new Set(signatures).size, signatures.length, `retried: ${signatures.join(', ')}`);
  return seen;
}

test('a missing input bucket: exit 2 at once, naming the bucket and the URI', async (t) => {
  const mark = log.requests().length;
  const r = await run('s3://no-such-bucket/data', `s3://${BUCKET}/model.onnx`, `s3://${BUCKET}/out-a`);
  t.diagnostic(`exit ${r.code} after ${r.ms.toFixed(0)} ms: ${r.stderr.trim()}`);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /^error: s3:\/\/no-such-bucket\/data: the bucket s3:\/\/no-such-bucket does not exist/m,
  );
  assert.ok(r.ms < QUICK_MS, `${r.ms} ms`);
  const seen = sentOnce('/no-such-bucket', mark);
  assert.deepEqual(
    seen.map((s) => [s.method, s.status]),
    [['GET', 404]],
    'one listing request, answered 404',
  );
});

test('a missing output bucket: exit 2 before any work, naming the output URI', async (t) => {
  const mark = log.requests().length;
  const r = await run(`s3://${BUCKET}/data`, `s3://${BUCKET}/model.onnx`, 's3://gone/out');
  t.diagnostic(`exit ${r.code} after ${r.ms.toFixed(0)} ms: ${r.stderr.trim()}`);
  assert.equal(r.code, 2, r.stderr);
  assert.match(
    r.stderr,
    /^error: s3:\/\/gone\/out\/(job\.json|cai\.lock): the bucket s3:\/\/gone does not exist/m,
  );
  assert.ok(r.ms < QUICK_MS, `${r.ms} ms`);
  sentOnce('/gone', mark);
  assert.ok(
    !log
      .requests()
      .slice(mark)
      .some((s) => s.path.startsWith(`/${BUCKET}/data`)),
    'nothing read',
  );
});

test('a missing model key: exit 2 at once, naming the model URI', async (t) => {
  const mark = log.requests().length;
  const model = `s3://${BUCKET}/models/missing.onnx`;
  const r = await run(`s3://${BUCKET}/data`, model, `s3://${BUCKET}/out-b`);
  t.diagnostic(`exit ${r.code} after ${r.ms.toFixed(0)} ms: ${r.stderr.trim()}`);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /^error: s3:\/\/present\/models\/missing\.onnx: .*does not exist/m);
  assert.ok(r.ms < QUICK_MS, `${r.ms} ms`);
  const seen = sentOnce(`/${BUCKET}/models/missing.onnx`, mark);
  assert.deepEqual(
    seen.map((s) => [s.method, s.status]),
    [['HEAD', 404]],
    'the job looked the model up once, before planning or starting a worker',
  );
  // No partition was read or written for a job that could not start.
  const keys = await listKeys(root, 'out-b');
  assert.ok(
    !keys.some((k) => k.startsWith('out-b/predictions/') || k.startsWith('out-b/results/')),
    keys.join(),
  );
});

test('a malformed S3 URI is a usage error: exit 2', async (t) => {
  const r = await run(`s3://${BUCKET}/data`, `s3://${BUCKET}/model.onnx`, 's3:///no-bucket');
  t.diagnostic(`exit ${r.code} after ${r.ms.toFixed(0)} ms: ${r.stderr.trim()}`);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /s3:\/\/\/no-bucket: not an S3 URI; write it as s3:\/\/bucket/);
});
