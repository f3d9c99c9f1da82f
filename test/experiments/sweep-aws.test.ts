import assert from 'node:assert/strict';
import { mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { Synthesized } from '../../src/engines/aws/app.js';
import { CaiError } from '../../src/errors.js';
import type { SweepRow } from '../../src/experiments/sweep-rows.js';
import '../../src/storage/register.js';
import { DEPLOYMENT, startAwsFixture, synthTest, type AwsFixture } from '../aws/fixture.js';
import { offlineAwsApi, type OfflineAwsApi } from '../helpers/offline-aws-api.js';
import { caiBench as runCaiBench } from './cai-bench.js';

let fx: AwsFixture;
let synth: Synthesized;

before(async () => {
  fx = await startAwsFixture();
  synth = await synthTest({ memoryMb: 3538, maxConcurrency: 2, stackName: 'CaiSweep' });
});
after(() => fx?.s3.stop());

const caiBench = (api: OfflineAwsApi, ...args: string[]) =>
  runCaiBench(args, { connect: async () => api, pollMs: 20 });

/** The flags every aws sweep here shares: the stack, its data and model, a local report folder. */
const onStack = (out: string, runsOutput: string) => [
  '--engine',
  'aws',
  '--stack-name',
  'CaiSweep',
  '--input',
  `${DEPLOYMENT.data}/good`,
  '--model',
  DEPLOYMENT.model,
  '--output',
  out,
  '--runs-output',
  runsOutput,
  '--s3-endpoint',
  fx.s3.endpoint,
];

test('cai bench --engine aws runs every configuration as an execution of the deployed state machine', async () => {
  const api = offlineAwsApi(synth, fx.s3.endpoint);
  const out = await mkdtemp(path.join(os.tmpdir(), 'cai-bench-aws-'));
  const { printed, codes } = await caiBench(
    api,
    ...onStack(out, `${DEPLOYMENT.output}/bench`),
    '--inputs',
    'image=0,magnitude=1',
    '--label',
    '2',
    '--predictions-format',
    'jsonl',
    '--partitions',
    '2,all',
    '--batch-sizes',
    '16,32',
    '--runs',
    '1',
    '--no-report',
  );
  assert.deepEqual(codes, [], printed);
  await api.settled();
  // 2 data sizes x 2 batch sizes x 1 run: four executions, all succeeded, each a whole job.
  const runs = [...api.executions.values()];
  assert.equal(runs.length, 4);
  assert.ok(runs.every((r) => r.result?.status === 'SUCCEEDED'));
  const jobs = runs.map(
    (r) => (JSON.parse(r.input) as { job: { batchSize: number; fileLimit?: number } }).job,
  );
  assert.deepEqual(jobs.map((j) => `${j.fileLimit}-${j.batchSize}`).sort(), ['2-16', '2-32', '5-16', '5-32']);
  assert.ok(
    jobs.every((j) => !('threads' in j) && !('concurrency' in j)),
    'the stack, not this machine, decides threads and concurrency',
  );

  const rows = JSON.parse(await readFile(path.join(out, 'sweep.json'), 'utf8')) as SweepRow[];
  const total = Object.values(fx.items).reduce((a, b) => a + b, 0);
  const firstTwo = fx.items['1'] + fx.items['2'];
  assert.deepEqual(
    rows.map((r) => r.items).sort((a, b) => a - b),
    [firstTwo, firstTwo, total, total],
  );
  for (const row of rows) {
    assert.ok(row.records.length > 0);
    for (const r of row.records) assert.equal(r.lambda?.memory_mb, 3538, 'records are Lambda records');
  }
  const csv = await readFile(path.join(out, 'result_stats.csv'), 'utf8');
  assert.equal(csv.trim().split('\n').length, 1 + 4 + 4, 'header, four runs and four mean rows');
});

test('cai bench --engine aws: a job outside the stack prefixes fails before any execution starts', async () => {
  const api = offlineAwsApi(synth, fx.s3.endpoint);
  const out = await mkdtemp(path.join(os.tmpdir(), 'cai-bench-aws-'));
  await assert.rejects(
    caiBench(api, ...onStack(out, 's3://cai-data/elsewhere'), '--runs', '1', '--no-report'),
    (e: unknown) => e instanceof CaiError && /output prefix/.test(e.message),
  );
  assert.equal(api.executions.size, 0);
});
