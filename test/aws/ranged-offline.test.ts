// The AWS engine reads HDF5 and Zarr in S3 by byte range: the CDK-synthesized state machine run by the
// offline executor (the real Initialize, Inference and Summarize handlers, each function's S3 requests
// through a proxy that enforces its role's policy from the synthesis) against a loopback S3 server whose
// requests a second proxy counts. Initialize plans each dataset from its metadata; the partitions fetch
// their chunks (<= 1.3x of them, plus each open's metadata), never a whole object; the predictions are
// the local engine's, bit for bit; and the roles grant reads of the data prefix and writes of the output
// prefix only. Fixtures: scripts/fixtures/make_ranged_fixtures.py (h5py, zarr 2.13).
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Synthesized } from '../../src/engines/aws/app.js';
import { parseJobSpec, type JobSpecInput } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { runJob } from '../../src/run/run.js';
import '../../src/storage/register.js';
import { runOfflineExecution } from '../helpers/aws-offline/executor.js';
import { isAllowed } from '../helpers/aws-offline/iam.js';
import { loadSynthesizedTemplate } from '../helpers/aws-offline/template.js';
import { startRequestLog, type LoggedRequest, type RequestLog } from '../helpers/s3-request-log.js';
import { FIXTURES } from '../sources/helpers.js';
import { predictionsOf } from './compare.js';
import { DEPLOYMENT, startAwsFixture, synthTest, type AwsFixture } from './fixture.js';

const DIR = `${FIXTURES}ranged`;
const MODEL = 's3://cai-data/models/trivial-ranged.onnx';
interface Expected {
  items: number;
  chunk_rows: number;
  ids: number[];
  image_mean: number[];
  h5_chunks: { row: number; offset: number; size: number }[];
  h5_size: number;
}

let fx: AwsFixture;
let synth: Synthesized;
let log: RequestLog;
let E: Expected;
const zarrSizes = new Map<string, number>();

before(async () => {
  E = JSON.parse(await readFile(`${DIR}/expected.json`, 'utf8')) as Expected;
  fx = await startAwsFixture();
  synth = await synthTest({ memoryMb: 1769, maxConcurrency: 2, model: MODEL, stackName: 'CaiRanged' });
  await fx.store(`${DEPLOYMENT.data}/h5`).put('rows.h5', await readFile(`${DIR}/rows.h5`));
  const zarr = fx.store(`${DEPLOYMENT.data}/zarr/rows.zarr`);
  for (const sub of ['', 'images', 'ids']) {
    for (const e of await readdir(path.join(DIR, 'rows.zarr', sub), { withFileTypes: true })) {
      if (!e.isFile()) continue;
      const key = sub ? `${sub}/${e.name}` : e.name;
      const body = await readFile(path.join(DIR, 'rows.zarr', key));
      await zarr.put(key, body);
      zarrSizes.set(key, body.byteLength);
    }
  }
  await fx
    .store('s3://cai-data/models')
    .put('trivial-ranged.onnx', buildTrivial({ inputName: 'images', shape: ['N', 16, 16, 3] }));
  log = await startRequestLog(fx.s3.endpoint);
});
after(async () => {
  await log?.stop();
  await fx?.s3.stop();
});

function job(input: string, output: string, extra: Partial<JobSpecInput> = {}): JobSpecInput {
  return {
    input: `${DEPLOYMENT.data}/${input}`,
    model: MODEL,
    output: `${DEPLOYMENT.output}/${output}`,
    datasets: { images: 'images' },
    idColumn: 'ids',
    partitionItems: 128,
    batchSize: 32,
    predictionsFormat: 'jsonl',
    s3Endpoint: log.endpoint,
    ...extra,
  };
}

/** Runs the job offline, returning the requests made before the Map (Initialize) and during the rest. */
async function offline(j: JobSpecInput): Promise<{ planning: LoggedRequest[]; rest: LoggedRequest[] }> {
  const from = log.requests().length;
  let mapAt = -1;
  const result = await runOfflineExecution({
    template: synth.templateFile,
    input: { job: j },
    s3Endpoint: log.endpoint,
    waitScale: 0.001,
    onState: (e) => {
      if (e.type === 'Map' && e.phase === 'entered' && mapAt < 0) mapAt = log.requests().length;
    },
  });
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  assert.deepEqual(result.iamDenials, [], 'every S3 request allowed by the function roles');
  assert.ok(mapAt >= from, 'the Map ran');
  return { planning: log.requests().slice(from, mapAt), rest: log.requests().slice(mapAt) };
}

async function sameAsLocal(aws: string, input: string, extra: Partial<JobSpecInput> = {}): Promise<void> {
  const local = await runJob(
    parseJobSpec({ ...job(input, `${aws}-local`, extra), concurrency: 2, threads: 1 }),
    { retryBaseMs: 10 },
  );
  assert.equal(local.status, 'succeeded');
  const rows = await predictionsOf(fx.store(`${DEPLOYMENT.output}/${aws}`));
  assert.equal(rows.length, E.items);
  assert.deepEqual(rows, await predictionsOf(fx.store(`${DEPLOYMENT.output}/${aws}-local`)), 'bit for bit');
  rows.forEach((r) => {
    const i = E.ids.indexOf(Number(r.id));
    assert.ok(i >= 0 && Math.abs(Number(r.mean) - E.image_mean[i]) < 1e-4, String(r.id));
  });
}

const gets = (rs: readonly LoggedRequest[], match: (p: string) => boolean) =>
  rs.filter((r) => r.method === 'GET' && !r.query.includes('list-type') && match(r.path));
const sum = (rs: readonly LoggedRequest[]) => rs.reduce((s, r) => s + r.bytes, 0);

test('AWS engine, offline: an HDF5 object in S3 is planned from its metadata and read by its chunks', async (t) => {
  const { planning, rest } = await offline(job('h5', 'h5-aws'));
  const isH5 = (p: string) => p.endsWith('/galaxies/h5/rows.h5');
  const plan = gets(planning, isH5);
  t.diagnostic(`Initialize: ${sum(plan)} bytes of the ${E.h5_size}-byte object in ${plan.length} GETs`);
  assert.ok(sum(plan) <= 2 * 2 * 64 * 1024, `Initialize fetched ${sum(plan)} bytes`);
  const read = gets(rest, isH5);
  const chunks = E.h5_chunks.reduce((s, c) => s + c.size, 0) + 8 * E.items;
  // Four partitions (one per invocation: no ItemBatcher) each open the file (~2 pages) and fetch their chunks.
  const bound = 4 * 2 * 64 * 1024 + 1.3 * chunks;
  t.diagnostic(
    `the Map: ${sum(read)} bytes in ${read.length} GETs; chunks and ids ${chunks}, bound ${bound}`,
  );
  assert.ok(sum(read) <= bound, `the Map fetched ${sum(read)} bytes`);
  assert.ok(
    [...plan, ...read].every((r) => r.range),
    'every GET of the object is ranged',
  );
  await sameAsLocal('h5-aws', 'h5');
});

test('AWS engine, offline: a Zarr store in S3 is planned from its metadata and each chunk object is fetched once', async (t) => {
  const { planning, rest } = await offline(job('zarr', 'zarr-aws', { format: 'zarr' }));
  const under = (p: string) => p.includes('/galaxies/zarr/rows.zarr/');
  const isImageChunk = (p: string) => /\/rows\.zarr\/images\/\d+\.0\.0\.0$/.test(p);
  assert.equal(gets(planning, isImageChunk).length, 0, 'Initialize fetches no image chunk');
  const read = gets(rest, isImageChunk);
  const perKey = new Map<string, number>();
  for (const r of read) perKey.set(r.path, (perKey.get(r.path) ?? 0) + 1);
  assert.equal(perKey.size, E.items / E.chunk_rows, 'every image chunk');
  assert.ok(
    [...perKey.values()].every((n) => n === 1),
    'no chunk fetched twice',
  );
  const chunks = [...zarrSizes.entries()]
    .filter(([k]) => /^images\/\d/.test(k))
    .reduce((s, [, n]) => s + n, 0);
  const metadata = [...zarrSizes.entries()]
    .filter(([k]) => !/^images\/\d/.test(k))
    .reduce((s, [, n]) => s + n, 0);
  const all = gets(rest, under);
  t.diagnostic(
    `the Map: ${sum(all)} bytes in ${all.length} GETs; image chunks ${chunks}, metadata and ids ${metadata}`,
  );
  assert.ok(sum(all) <= 4 * metadata + 1.3 * chunks, `the Map fetched ${sum(all)} bytes`);
  // (Summarize lists the run's results; no listing of the data.)
  assert.equal(
    rest.filter((r) => r.query.includes('list-type') && decodeURIComponent(r.query).includes('galaxies/zarr'))
      .length,
    0,
    'the workers list nothing: the job names its datasets',
  );
  await sameAsLocal('zarr-aws', 'zarr', { format: 'zarr' });
});

test('the synthesized roles grant reads of the data prefix and writes of the output prefix, nothing more', async () => {
  const template = await loadSynthesizedTemplate(synth.templateFile);
  const data = 'arn:aws:s3:::cai-data/galaxies';
  const fns = [...template.functions.values()];
  const inference = fns.find((f) => f.handler === 'index.handler');
  assert.ok(inference);
  for (const f of fns) {
    // What the read path uses: ranged GETs (s3:GetObject), HEAD (s3:GetObject), and no other bucket's objects.
    assert.ok(
      !isAllowed(f.policy, 's3:PutObject', `${data}/h5/rows.h5`),
      `${f.logicalId} may not write the data`,
    );
    assert.ok(!isAllowed(f.policy, 's3:DeleteObject', `${data}/zarr/rows.zarr/images/0.0.0.0`), f.logicalId);
    assert.ok(!isAllowed(f.policy, 's3:GetObject', 'arn:aws:s3:::cai-data/elsewhere/rows.h5'), f.logicalId);
    assert.ok(!isAllowed(f.policy, 's3:GetObject', 'arn:aws:s3:::other-bucket/rows.h5'), f.logicalId);
    assert.ok(
      !isAllowed(f.policy, 's3:ListBucket', 'arn:aws:s3:::cai-data', { 's3:prefix': 'elsewhere/' }),
      f.logicalId,
    );
  }
  assert.ok(isAllowed(inference.policy, 's3:GetObject', `${data}/zarr/rows.zarr/images/0.0.0.0`));
  assert.ok(isAllowed(inference.policy, 's3:GetObject', `${data}/h5/rows.h5`));
  assert.ok(isAllowed(inference.policy, 's3:GetObject', 'arn:aws:s3:::cai-data/models/trivial-ranged.onnx'));
  assert.ok(!isAllowed(inference.policy, 's3:GetObject', 'arn:aws:s3:::cai-data/models/other.onnx'));
});
