// What would break on a real account, run through the offline executor with every function's S3
// requests checked against its role's policy from the synthesized template.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { Synthesized } from '../../src/engines/aws/app.js';
import type { JobSpecInput } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import '../../src/storage/register.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { CAI_HANDLERS } from '../helpers/aws-offline/handlers.js';
import { runOfflineExecution } from '../helpers/aws-offline/executor.js';
import type { HandlerFactory, LambdaHandler } from '../helpers/aws-offline/lambda-service.js';
import { handlerConfigFromEnv } from '../../src/engines/aws/config.js';
import { createSummarizeHandler, type FailedSummary } from '../../src/engines/aws/handlers/summarize.js';
import type { SummarizeEvent } from '../../src/engines/aws/protocol.js';
import { StatesError } from '../helpers/aws-offline/paths.js';
import { summaryOf } from './compare.js';
import { recordAttempts, unknownOn } from './faults.js';
import { DEPLOYMENT, startAwsFixture, synthTest, type AwsFixture } from './fixture.js';

const initializeId = (synth: Synthesized) =>
  Object.entries(
    (JSON.parse(readFileSync(synth.templateFile, 'utf8')) as { Resources: Record<string, { Type: string }> })
      .Resources,
  ).find(([id, r]) => r.Type === 'AWS::Lambda::Function' && id.startsWith('Initialize'))?.[0];

const fixture = (rel: string) => readFileSync(new URL(`../../../test/fixtures/${rel}`, import.meta.url));

let fx: AwsFixture;
let single: Synthesized;
let trivial: Synthesized;
const TRIVIAL_MODEL = 's3://cai-data/models/trivial.onnx';

before(async () => {
  fx = await startAwsFixture();
  await fx.store('s3://cai-data/galaxies/ray').put('ray.parquet', fixture('parquet/ray.parquet'));
  await fx.store('s3://cai-data/galaxies/cutouts').put('cutouts3.fits', fixture('fits/cutouts3.fits'));
  single = await synthTest({ memoryMb: 1769, maxConcurrency: 3, crashAttempts: 3 });
  trivial = await synthTest({
    memoryMb: 1769,
    maxConcurrency: 3,
    model: TRIVIAL_MODEL,
    stackName: 'CaiTrivial',
  });
});
after(() => fx?.s3.stop());

async function offline(
  synth: Synthesized,
  job: JobSpecInput,
  handlers: Readonly<Record<string, HandlerFactory>> = CAI_HANDLERS,
  more: { accountConcurrency?: number; waitScale?: number } = {},
) {
  return runOfflineExecution({
    template: synth.templateFile,
    input: { job },
    s3Endpoint: fx.s3.endpoint,
    waitScale: 0.0001,
    handlers,
    ...more,
  });
}

test('the offline executor enforces each role: a request outside it is answered 403 and reported', async () => {
  // An Initialize that also writes next to the model: its role allows nothing there.
  const result = await offline(single, fx.job('iam-denied'), {
    ...CAI_HANDLERS,
    'index.initialize': (env) => {
      const real = CAI_HANDLERS['index.initialize'](env);
      return (async (event: { input: { job: JobSpecInput } }, context) => {
        const models = new S3Store('s3://cai-data/models', { s3Endpoint: event.input.job.s3Endpoint });
        await models.put('x.onnx', 'not allowed');
        return real(event as never, context);
      }) as LambdaHandler;
    },
  });
  assert.equal(result.status, 'FAILED');
  assert.match(result.cause ?? '', /denied/i);
  assert.deepEqual(
    result.iamDenials.map((d) => [d.principal.split('/')[0], d.action, d.resource]),
    [[initializeId(single), 's3:PutObject', 'arn:aws:s3:::cai-data/models/x.onnx']],
  );
});

test('Parquet row ranges (partitionItems) are planned in Initialize: its role may read the footers', async () => {
  await fx
    .store('s3://cai-data/models')
    .put('trivial.onnx', buildTrivial({ inputName: 'image', shape: ['N', 3, 224, 224] }));
  const result = await offline(trivial, {
    ...fx.job('parquet-rows'),
    input: `${DEPLOYMENT.data}/ray`,
    model: TRIVIAL_MODEL,
    inputs: undefined,
    label: undefined,
    imageShape: [16, 20, 3],
    preset: 'imagenet',
    partitionItems: 5,
  });
  assert.deepEqual(result.iamDenials, []);
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  const summary = await summaryOf(fx.store(`${DEPLOYMENT.output}/parquet-rows`));
  assert.equal(summary.partitions.planned, 3, '12 rows in partitions of 5, 5 and 2');
  assert.equal(summary.items, 12);
});

test('FITS cutout files are planned as row ranges in Initialize, within its role', async () => {
  await fx
    .store('s3://cai-data/models')
    .put('trivial.onnx', buildTrivial({ inputName: 'image', shape: ['N', 1, 8, 8] }));
  const result = await offline(trivial, {
    ...fx.job('fits-rows'),
    input: `${DEPLOYMENT.data}/cutouts`,
    model: TRIVIAL_MODEL,
    inputs: undefined,
    label: undefined,
    fitsCutouts: true,
    partitionItems: 4,
  });
  assert.deepEqual(result.iamDenials, []);
  const summary = await summaryOf(fx.store(`${DEPLOYMENT.output}/fits-rows`));
  assert.equal(result.status, 'SUCCEEDED', JSON.stringify(summary.failures));
  assert.equal(summary.partitions.planned, 3, '10 cutouts in partitions of 4, 4 and 2');
  assert.equal(summary.items, 10);
});

test('Lambda.Unknown is retried as a crash: the partition completes on its second try', async () => {
  const result = await offline(single, fx.job('unknown-once'), unknownOn('2', 1));
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  const summary = await summaryOf(fx.store(`${DEPLOYMENT.output}/unknown-once`));
  assert.equal(summary.partitions.completed, 5);
  assert.equal(summary.run.retries, 1);
});

test('Lambda.Unknown on every try: recorded as E_TIMEOUT with the Lambda message, after crashAttempts', async () => {
  const result = await offline(
    single,
    fx.job('unknown-always', { toleratedFailurePercentage: 20 }),
    unknownOn('2', 99),
  );
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  const summary = await summaryOf(fx.store(`${DEPLOYMENT.output}/unknown-always`));
  assert.deepEqual(
    summary.failures.map((f) => [f.partition, f.error.code, f.attempts]),
    [['2', 'E_TIMEOUT', 3]],
  );
  assert.match(summary.failures[0].error.message, /Task timed out after 900\.00 seconds/);
});

test('a fractional error budget means floor(total x pct / 100) failures, on AWS as locally', async () => {
  const input = `${DEPLOYMENT.data}/bad`;
  // 1 corrupt partition of 5: 20.5% tolerates floor(1.025) = 1 failure, 19.5% none.
  const ok = await offline(single, fx.job('budget-20.5', { input, toleratedFailurePercentage: 20.5 }));
  assert.equal(ok.status, 'SUCCEEDED', `${ok.error}: ${ok.cause}`);
  const over = await offline(single, fx.job('budget-19.5', { input, toleratedFailurePercentage: 19.5 }));
  assert.equal(over.status, 'FAILED');
  assert.match(over.cause ?? '', /1 of 5 partitions failed.*ExceedToleratedFailureThreshold/);
  const [a, b] = await Promise.all(
    ['budget-20.5', 'budget-19.5'].map((n) => summaryOf(fx.store(`${DEPLOYMENT.output}/${n}`))),
  );
  assert.equal(a.status, 'succeeded');
  assert.equal(b.status, 'failed');
  assert.equal(b.partitions.not_started, 0);
});

test('a failed partition keeps its reason even when the Map exported no results', async () => {
  // Whether a failed Map run writes its ResultWriter files is not documented: Summarize here gets
  // neither the Map's output nor its files, and must still name the partition and why.
  const raw = new S3Store(`${DEPLOYMENT.output}/no-results`, { s3Endpoint: fx.s3.endpoint });
  const handlers: Record<string, HandlerFactory> = {
    ...CAI_HANDLERS,
    'index.summarize': (env) => {
      const real = CAI_HANDLERS['index.summarize'](env);
      return (async (event: { state: { map?: unknown; init: { runFolder: string } } }, context) => {
        for await (const o of raw.list(`${event.state.init.runFolder}map`)) await raw.delete(o.key);
        const { map: _dropped, ...state } = event.state;
        return real({ ...event, state } as never, context);
      }) as LambdaHandler;
    },
  };
  const input = `${DEPLOYMENT.data}/bad`;
  const result = await offline(
    single,
    fx.job('no-results', { input, toleratedFailurePercentage: 20 }),
    handlers,
  );
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  const summary = await summaryOf(fx.store(`${DEPLOYMENT.output}/no-results`));
  assert.equal(summary.partitions.not_started, 0);
  assert.deepEqual(
    summary.failures.map((f) => [f.partition, f.data_path, f.error.code, f.attempts]),
    [['5', `${input}/5.pt`, 'E_CORRUPT', 1]],
  );
  assert.match(summary.failures[0].error.message, /5\.pt/);
});

test('Summarize failing ends the execution as CaiSummarizeFailed with its cause (a Catch), naming the record', async () => {
  const name = 'damaged-record';
  const first = await offline(single, fx.job(name));
  assert.equal(first.status, 'SUCCEEDED', `${first.error}: ${first.cause}`);
  const out = fx.store(`${DEPLOYMENT.output}/${name}`);
  const whole = await out.get('results/3.json');
  await out.put('results/3.json', whole.subarray(0, 50));
  await out.delete('predictions/4.jsonl'); // so that the run has a partition to redo
  const second = await offline(single, fx.job(name));
  assert.equal(second.status, 'FAILED');
  assert.equal(second.error, 'CaiSummarizeFailed');
  assert.match(second.cause ?? '', /CaiError.*results\/3\.json.*truncated or corrupt.*run the job again/s);
});

test("a Summarize killed by a timeout still leaves this run's failed summary, not the last run's", async () => {
  // The first run succeeds and writes summary.json; in the second, Summarize dies where no handler code
  // runs (Sandbox.Timedout). Before the fallback state the old, succeeded summary.json stayed in place
  // beside the new run's predictions.
  const name = 'summarize-killed';
  const first = await offline(single, fx.job(name));
  assert.equal(first.status, 'SUCCEEDED', `${first.error}: ${first.cause}`);
  const out = fx.store(`${DEPLOYMENT.output}/${name}`);
  await out.delete('predictions/4.jsonl'); // so that the run has a partition to redo
  await out.delete('results/4.json');
  const invocations: boolean[] = [];
  const killing: Record<string, HandlerFactory> = {
    ...CAI_HANDLERS,
    'index.summarize': (env) => {
      const real = createSummarizeHandler(handlerConfigFromEnv(env));
      return (async (event: SummarizeEvent) => {
        invocations.push(event.summarizeError !== undefined);
        if (!event.summarizeError)
          throw new StatesError(
            'Sandbox.Timedout',
            JSON.stringify({
              errorType: 'Sandbox.Timedout',
              errorMessage: 'Task timed out after 900.00 seconds',
            }),
          );
        return real(event);
      }) as LambdaHandler;
    },
  };
  const second = await offline(single, fx.job(name), killing);
  assert.equal(second.status, 'FAILED');
  assert.equal(second.error, 'CaiSummarizeFailed');
  assert.match(second.cause ?? '', /Task timed out/);
  assert.deepEqual(invocations, [false, true], 'Summarize once, then the fallback once');
  const summary = JSON.parse(new TextDecoder().decode(await out.get('summary.json'))) as FailedSummary;
  assert.equal(summary.status, 'failed');
  assert.equal(summary.summarize_error.code, 'E_TIMEOUT');
  assert.match(
    summary.summarize_error.message,
    /Summarize function.*Task timed out after 900\.00 seconds.*run the job again/,
  );
  assert.deepEqual(summary.partitions, { planned: 5, todo: 1, resumed: 4 });
  // The partition the second run redid is there once, and a third run resumes and summarizes.
  const third = await offline(single, fx.job(name));
  assert.equal(third.status, 'SUCCEEDED', `${third.error}: ${third.cause}`);
  assert.equal((await summaryOf(out)).partitions.completed, 5);
});

test('throttling slows the run instead of failing partitions: an account concurrency of 1 under a Map of 3', async () => {
  // Waits at 1/100 of Step Functions' seconds: the old Retry (6 tries, about a minute in all) gave up
  // within a second here, while each partition holds the one slot for about that long.
  const result = await offline(single, fx.job('throttled'), CAI_HANDLERS, {
    accountConcurrency: 1,
    waitScale: 0.01,
  });
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  const throttled = result.invocations.filter((i) => i.error === 'Lambda.TooManyRequestsException');
  assert.ok(throttled.length > 0, 'some invocations were throttled');
  const out = fx.store(`${DEPLOYMENT.output}/throttled`);
  const summary = await summaryOf(out);
  assert.equal(summary.partitions.completed, 5);
  assert.equal(summary.failures.length, 0);
  // A throttled invocation never ran: each partition ran once, and its record says so.
  assert.deepEqual(await recordAttempts(out), { 1: 1, 2: 1, 3: 1, 4: 1, 5: 1 });
  assert.equal(summary.run.retries, 0);
});

test('throttling spends none of the tries: a partition throttled, then crashing twice, completes on its third', async () => {
  const seen: number[] = [];
  const result = await offline(single, fx.job('throttled-crash'), unknownOn('2', 2, seen), {
    accountConcurrency: 1,
    waitScale: 0.01,
  });
  assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
  assert.ok(
    result.invocations.some((i) => i.error === 'Lambda.TooManyRequestsException'),
    'some invocations were throttled',
  );
  // The handler is told the try it runs, counted by the child workflow: 1, 2, 3, never a throttle.
  assert.deepEqual(seen, [1, 2, 3]);
  const out = fx.store(`${DEPLOYMENT.output}/throttled-crash`);
  assert.deepEqual(await recordAttempts(out), { 1: 1, 2: 3, 3: 1, 4: 1, 5: 1 });
  assert.equal((await summaryOf(out)).run.retries, 2);
});
