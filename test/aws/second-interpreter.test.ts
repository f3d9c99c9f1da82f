// The synthesized definitions, executed by a second interpreter (aws-local-stepfunctions), give the
// same predictions and summary as the offline executor: every JSONPath, Retry, Catch and Choice of the
// definition is evaluated by code that is not ours.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { Synthesized } from '../../src/engines/aws/app.js';
import '../../src/storage/register.js';
import { runOfflineExecution } from '../helpers/aws-offline/executor.js';
import { runWithSecondInterpreter } from '../helpers/aws-offline/second-interpreter.js';
import type { HandlerFactory } from '../helpers/aws-offline/lambda-service.js';
import { comparableSummary, predictionsOf, summaryOf } from './compare.js';
import { recordAttempts, unknownOn } from './faults.js';
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

const second = (
  synth: Synthesized,
  name: string,
  more = {},
  handlers?: Readonly<Record<string, HandlerFactory>>,
) =>
  runWithSecondInterpreter({
    template: synth.templateFile,
    input: { job: fx.job(name, more) },
    s3Endpoint: fx.s3.endpoint,
    ...(handlers ? { handlers } : {}),
  });

test('aws-local-stepfunctions runs the definition to the same predictions and summary as the offline executor', async () => {
  const result = await second(single, 'alsf');
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  assert.deepEqual(
    [...new Set(result.states)],
    ['Initialize', 'Inference', 'Infer', 'Summarize'],
    'every state ran, the Map as its documented stand-in',
  );
  const ours = await runOfflineExecution({
    template: single.templateFile,
    input: { job: fx.job('alsf-ours') },
    s3Endpoint: fx.s3.endpoint,
    waitScale: 0.001,
  });
  assert.equal(ours.status, 'SUCCEEDED');
  const a = fx.store(`${DEPLOYMENT.output}/alsf`);
  const b = fx.store(`${DEPLOYMENT.output}/alsf-ours`);
  assert.deepEqual(await predictionsOf(a), await predictionsOf(b));
  assert.deepEqual(comparableSummary(await summaryOf(a)), comparableSummary(await summaryOf(b)));
});

test('with an ItemBatcher, BatchInput and the batched Parameters resolve the same way', async () => {
  const result = await second(batched, 'alsf-batched');
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  assert.equal(result.states.filter((s) => s === 'Infer').length, 3, '5 partitions in batches of 2');
  assert.equal((await summaryOf(fx.store(`${DEPLOYMENT.output}/alsf-batched`))).partitions.completed, 5);
});

test("over the error budget: the Map's Catch reaches Summarize, the Choice fails the execution", async () => {
  const result = await second(single, 'alsf-over', { input: `${DEPLOYMENT.data}/bad` });
  assert.equal(result.status, 'FAILED');
  assert.equal(result.error, 'CaiJobFailed');
  assert.match(result.cause ?? '', /1 of 5 partitions failed.*States\.ExceedToleratedFailureThreshold/);
  const summary = await summaryOf(fx.store(`${DEPLOYMENT.output}/alsf-over`));
  assert.deepEqual(
    summary.failures.map((f) => [f.partition, f.error.code]),
    [['5', 'E_CORRUPT']],
  );
});

test("the child's own try counter: a crash twice goes TryAgain, NextTry, Backoff, Infer, and the third try is recorded as 3", async () => {
  const seen: number[] = [];
  const result = await second(single, 'alsf-crash', {}, unknownOn('2', 2, seen));
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  assert.deepEqual(seen, [1, 2, 3], 'the intrinsics of NextTry counted the tries');
  const out = fx.store(`${DEPLOYMENT.output}/alsf-crash`);
  assert.deepEqual(await recordAttempts(out), { 1: 1, 2: 3, 3: 1, 4: 1, 5: 1 });
  assert.equal((await summaryOf(out)).run.retries, 2);
  // Past crashAttempts (3 by default) the child fails with the crash's own error, through PartitionFailed.
  const always = await second(
    single,
    'alsf-crash-always',
    { toleratedFailurePercentage: 20 },
    unknownOn('2', 99),
  );
  assert.equal(always.status, 'SUCCEEDED', `${always.error}: ${always.cause}`);
  const summary = await summaryOf(fx.store(`${DEPLOYMENT.output}/alsf-crash-always`));
  assert.deepEqual(
    summary.failures.map((f) => [f.partition, f.error.code, f.attempts]),
    [['2', 'E_TIMEOUT', 3]],
  );
});
