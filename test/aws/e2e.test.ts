import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Synthesized } from '../../src/engines/aws/app.js';
import type { MapRunManifest } from '../../src/engines/aws/map-results.js';
import type { InferenceResult } from '../../src/engines/aws/protocol.js';
import type { MapRunProgress } from '../helpers/aws-offline/distributed-map.js';
import { runOfflineExecution } from '../helpers/aws-offline/executor.js';
import { isAllowed } from '../helpers/aws-offline/iam.js';
import { loadSynthesizedTemplate } from '../helpers/aws-offline/template.js';
import { runJob } from '../../src/run/run.js';
import { parseJobSpec, type JobSpecInput } from '../../src/job/spec.js';
import '../../src/storage/register.js';
import { startAuditProxy } from './audit-proxy.js';
import { comparableRecords, comparableSummary, predictionsOf, recordsOf, summaryOf } from './compare.js';
import { DEPLOYMENT, startAwsFixture, synthTest, type AwsFixture } from './fixture.js';

let fx: AwsFixture;
let single: Synthesized;
let batched: Synthesized;

before(async () => {
  fx = await startAwsFixture();
  single = await synthTest({ memoryMb: 1769, maxConcurrency: 3 });
  batched = await synthTest({ memoryMb: 1769, maxConcurrency: 2, itemsPerBatch: 2, stackName: 'CaiBatched' });
});
after(() => fx?.s3.stop());

async function local(name: string, overrides: Partial<JobSpecInput> = {}) {
  // One onnxruntime thread per worker, as a 1,769 MB Lambda (1 vCPU) gets.
  return runJob(parseJobSpec(fx.job(name, { concurrency: 2, threads: 1, ...overrides })), {
    retryBaseMs: 10,
  });
}

async function offline(synth: Synthesized, job: JobSpecInput, onMapRun?: (p: MapRunProgress) => void) {
  return runOfflineExecution({
    template: synth.templateFile,
    input: { job },
    s3Endpoint: fx.s3.endpoint,
    waitScale: 0.001,
    onMapRun,
  });
}

test("the synthesized definition run offline gives the local engine's predictions and summary, within its IAM", async () => {
  const proxy = await startAuditProxy({ target: fx.s3.endpoint });
  let running = 0;
  try {
    const result = await offline(single, fx.job('aws', { s3Endpoint: proxy.endpoint }), (p) => {
      running = Math.max(running, p.itemCounts.running);
    });
    assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
    const baseline = await local('local');
    assert.equal(baseline.status, 'succeeded');

    const aws = fx.store(`${DEPLOYMENT.output}/aws`);
    const loc = fx.store(`${DEPLOYMENT.output}/local`);
    const rows = await predictionsOf(aws);
    assert.equal(
      rows.length,
      Object.values(fx.items).reduce((a, b) => a + b, 0),
    );
    assert.deepEqual(rows, await predictionsOf(loc), 'every prediction equal, item for item');
    assert.deepEqual(comparableSummary(await summaryOf(aws)), comparableSummary(baseline));
    assert.deepEqual(comparableRecords(await recordsOf(aws)), comparableRecords(await recordsOf(loc)));
    const summary = await summaryOf(aws);
    assert.equal(summary.run.engine, 'aws');
    assert.equal(summary.run.concurrency, 3, "the stack's max concurrency, as the job set none");

    // The Map ran 3 children at once (MaxConcurrencyPath), each Lambda record billed honestly.
    assert.equal(running, 3);
    const records = await recordsOf(aws);
    for (const r of records) {
      assert.equal(r.lambda?.memory_mb, 1769);
      assert.equal(r.lambda?.architecture, 'x86_64');
      assert.ok(Number.isInteger(r.lambda?.billed_duration_ms) && (r.lambda?.billed_duration_ms ?? 0) >= 1);
      assert.ok((r.lambda?.billed_duration_ms ?? 0) >= r.timings.total * 1000 - 1, 'billed covers the work');
    }
    const cold = records.filter((r) => r.lambda?.cold_start).length;
    assert.equal(cold, result.invocations.filter((i) => i.function.startsWith('Inference') && i.cold).length);
    assert.ok(cold >= 1 && cold <= 3, `${cold} containers for 3 concurrent children`);

    // The ResultWriter exported every child execution, as the Map's output points to.
    const map = (result.output as { map: { ResultWriterDetails: { Key: string } } }).map;
    const manifest = JSON.parse(
      new TextDecoder().decode(await fx.store('s3://cai-out').get(map.ResultWriterDetails.Key)),
    ) as MapRunManifest;
    assert.equal(manifest.ResultFiles.SUCCEEDED.length, 1);
    assert.equal(manifest.ResultFiles.FAILED.length, 0);
    const children = JSON.parse(
      new TextDecoder().decode(await fx.store('s3://cai-out').get(manifest.ResultFiles.SUCCEEDED[0].Key)),
    ) as { Status: string; Input: string; Output: string }[];
    assert.equal(children.length, 5);
    assert.ok(children.every((c) => c.Status === 'SUCCEEDED' && JSON.parse(c.Input).partition.id));
    // Each child returned its partition's record exactly as written: what Summarize read instead of it.
    for (const c of children) {
      const [p] = (JSON.parse(c.Output) as InferenceResult).partitions;
      assert.deepEqual(
        p.record,
        records.find((r) => r.partition === p.id),
      );
    }

    // Every S3 request the functions made is allowed by some function role, and none is a HEAD of a
    // missing key (which S3 answers 403, not 404, to a role without bucket-wide s3:ListBucket).
    const template = await loadSynthesizedTemplate(single.templateFile);
    const policies = [...template.functions.values()].map((f) => f.policy);
    assert.ok(proxy.requests.length > 20);
    for (const r of proxy.requests) {
      const context: Record<string, string> = r.list ? { 's3:prefix': r.prefix ?? '' } : {};
      const allowed = policies.some((p) => isAllowed(p, r.action, r.resource, context));
      assert.ok(
        allowed,
        `${r.method} ${r.resource} (${r.action} prefix=${r.prefix}) is not allowed by the stack`,
      );
      assert.ok(!(r.method === 'HEAD' && r.status === 404), `HEAD of a missing key ${r.resource}`);
    }
  } finally {
    await proxy.stop();
  }
});

test('with an ItemBatcher each invocation runs a batch of partitions, with the same predictions', async () => {
  const progress: MapRunProgress[] = [];
  const result = await offline(batched, fx.job('batched'), (p) => progress.push(p));
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  const last = progress[progress.length - 1];
  assert.deepEqual(last.batches, [2, 2, 1]);
  assert.equal(last.itemCounts.succeeded, 5);
  assert.equal(last.executionCounts.succeeded, 3);
  assert.ok(Math.max(...progress.map((p) => p.executionCounts.running)) <= 2);
  const inference = result.invocations.filter((i) => i.function.startsWith('Inference'));
  assert.equal(inference.length, 3);
  const records = await recordsOf(fx.store(`${DEPLOYMENT.output}/batched`));
  // In a batch only the first partition pays the cold start.
  assert.equal(records.filter((r) => r.lambda?.cold_start).length, inference.filter((i) => i.cold).length);
  assert.deepEqual(
    await predictionsOf(fx.store(`${DEPLOYMENT.output}/batched`)),
    await predictionsOf(fx.store(`${DEPLOYMENT.output}/local`)),
  );
});

test('a corrupt partition within the tolerated share: the execution succeeds and lists it, as the local engine does', async () => {
  const input = `${DEPLOYMENT.data}/bad`;
  const result = await offline(single, fx.job('bad-aws', { input, toleratedFailurePercentage: 25 }));
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  const baseline = await local('bad-local', { input, toleratedFailurePercentage: 25 });
  const aws = await summaryOf(fx.store(`${DEPLOYMENT.output}/bad-aws`));
  assert.equal(aws.status, 'succeeded');
  assert.deepEqual(comparableSummary(aws), comparableSummary(baseline));
  assert.equal(aws.failures.length, 1);
  assert.equal(aws.failures[0].partition, '5');
  assert.equal(aws.failures[0].error.code, 'E_CORRUPT');
  assert.equal(aws.failures[0].attempts, 1, 'a corrupt file is not retried');
  assert.deepEqual(
    await predictionsOf(fx.store(`${DEPLOYMENT.output}/bad-aws`)),
    await predictionsOf(fx.store(`${DEPLOYMENT.output}/bad-local`)),
  );
});

test('over the tolerated share the Map fails, Summarize still writes the failed summary, the execution fails', async () => {
  const input = `${DEPLOYMENT.data}/bad`;
  const mapRuns: MapRunProgress[] = [];
  const result = await offline(single, fx.job('over-aws', { input, toleratedFailurePercentage: 0 }), (p) =>
    mapRuns.push(p),
  );
  assert.equal(result.status, 'FAILED');
  assert.equal(result.error, 'CaiJobFailed');
  assert.match(result.cause ?? '', /1 of 5 partitions failed.*States\.ExceedToleratedFailureThreshold/);
  assert.equal(mapRuns[mapRuns.length - 1].status, 'FAILED');
  const aws = await summaryOf(fx.store(`${DEPLOYMENT.output}/over-aws`));
  const baseline = await local('over-local', { input, toleratedFailurePercentage: 0 });
  assert.equal(aws.status, 'failed');
  assert.equal(baseline.status, 'failed');
  assert.deepEqual(
    aws.failures.map((f) => [f.partition, f.error.code]),
    baseline.failures.map((f) => [f.partition, f.error.code]),
  );
});

test('a job outside the stack prefixes fails in Initialize, with a message that says what to change', async () => {
  const result = await offline(single, fx.job('x', { input: 's3://cai-out/elsewhere' }));
  assert.equal(result.status, 'FAILED');
  assert.equal(result.error, 'CaiError');
  assert.match(result.cause ?? '', /not under the stack's data prefix s3:\/\/cai-data\/galaxies/);
});
