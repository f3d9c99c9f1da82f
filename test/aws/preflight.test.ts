// `cai aws run` checks a job on the submitting machine before any execution starts, as `cai run` checks
// it before any worker starts: the same errors (code, exit 2, the object named), read from the loopback
// S3 with the user's credentials. A stub Step Functions records whether an execution was started: none
// may be for a job the preflight refuses, so no Initialize, Map or Lambda runs and nothing is written.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import '../../src/storage/register.js';
import { registerAwsCommand } from '../../src/cli/commands/aws.js';
import type { AwsApi, Deployment } from '../../src/engines/aws/cloud.js';
import { CaiError, ErrorCodes, ExitCodes, exitCodeFor } from '../../src/errors.js';
import { runJob } from '../../src/run/run.js';
import { LOCK_KEY } from '../../src/run/lock.js';
import { OUTPUT_KEYS } from '../../src/storage/output-layout.js';
import { DEPLOYMENT, startAwsFixture, type AwsFixture } from './fixture.js';

let fx: AwsFixture;

before(async () => {
  fx = await startAwsFixture();
});
after(() => fx?.s3.stop());

const DEPLOYED: Deployment = {
  stackName: 'Cai',
  region: 'us-east-1',
  stateMachineArn: 'arn:aws:states:us-east-1:123456789012:stateMachine:Cai',
  data: DEPLOYMENT.data,
  output: DEPLOYMENT.output,
  model: DEPLOYMENT.model,
  memoryMb: 1769,
  maxConcurrency: 8,
};

/** Runs `cai aws run <args>` against a stub Step Functions; returns what it threw and the executions it started. */
async function awsRun(
  args: string[],
  deployed: Deployment = DEPLOYED,
): Promise<{ thrown: unknown; started: string[]; stderr: string }> {
  const started: string[] = [];
  const api: AwsApi = {
    region: 'us-east-1',
    describeStack: () => Promise.resolve(deployed),
    startExecution: (_arn, name) => {
      started.push(name);
      return Promise.reject(new Error('stub: no execution runs in this test'));
    },
    describeExecution: () => Promise.reject(new Error('not used')),
    mapRun: () => Promise.resolve(undefined),
    deleteStack: () => Promise.reject(new Error('not used')),
  };
  const program = new Command().exitOverride();
  let stderr = '';
  registerAwsCommand(program, {
    api: () => Promise.resolve(api),
    out: () => {},
    err: (t) => {
      stderr += t;
    },
  });
  const thrown = await program
    .parseAsync(['node', 'cai', 'aws', 'run', ...args, '--s3-endpoint', fx.s3.endpoint, '--quiet'])
    .then(
      () => undefined,
      (e: unknown) => e,
    );
  return { thrown, started, stderr };
}

const common = (name: string) => [
  '--input',
  `${DEPLOYMENT.data}/good`,
  '--output',
  `${DEPLOYMENT.output}/${name}`,
  '--inputs',
  'image=0,magnitude=1',
  '--label',
  '2',
  '--predictions-format',
  'jsonl',
];

/** Whether the output holds anything (a job, a plan, a lock left behind). */
async function written(name: string): Promise<string[]> {
  const out = fx.store(`${DEPLOYMENT.output}/${name}`);
  const keys: string[] = [];
  for await (const o of out.list()) keys.push(o.key);
  return keys;
}

test('a --carry column the data lacks exits 2 before any execution starts, naming the column and the partition', async () => {
  const { thrown, started } = await awsRun([...common('carry'), '--carry', 'ra']);
  assert.ok(thrown instanceof CaiError, String(thrown));
  assert.equal(thrown.code, ErrorCodes.option);
  assert.equal(exitCodeFor(thrown), ExitCodes.usage);
  assert.match(thrown.message, /"ra"/);
  assert.match(thrown.message, /--carry/);
  assert.ok(thrown.object.endsWith('galaxies/good/1.pt'), thrown.object);
  assert.deepEqual(started, [], 'no execution started');
  assert.deepEqual(await written('carry'), [], 'nothing written, the lock released');

  // The same job on the local engine fails with the same error, before any worker starts.
  const local = await runJob(fx.job('carry-local', { carry: ['ra'] })).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(local instanceof CaiError);
  assert.equal(local.code, thrown.code);
  assert.equal(local.message, thrown.message);
});

test('a model input left unmapped and a label column that does not exist exit 2 before any execution', async () => {
  const unmapped = await awsRun([...common('inputs'), '--inputs', 'image=0,magnitud=1']);
  assert.ok(unmapped.thrown instanceof CaiError, String(unmapped.thrown));
  assert.equal(exitCodeFor(unmapped.thrown), ExitCodes.usage);
  assert.match(unmapped.thrown.message, /input "magnitude" is not mapped/);
  const label = await awsRun([...common('label'), '--label', '7']);
  assert.ok(label.thrown instanceof CaiError, String(label.thrown));
  assert.equal(exitCodeFor(label.thrown), ExitCodes.usage);
  assert.match(label.thrown.message, /label/);
  assert.deepEqual([...unmapped.started, ...label.started], []);
});

test('an output that holds another job is refused before any execution, naming the field that differs', async () => {
  // A complete run of one partition, by the local engine, into the stack's output prefix.
  const first = await runJob(fx.job('taken', { fileLimit: 1 }));
  assert.equal(first.status, 'succeeded');
  const { thrown, started } = await awsRun([...common('taken'), '--file-limit', '1', '--label', '1']);
  assert.ok(thrown instanceof CaiError, String(thrown));
  assert.equal(thrown.code, ErrorCodes.jobChanged);
  assert.equal(exitCodeFor(thrown), ExitCodes.usage);
  assert.match(thrown.message, /label: 2 -> 1/);
  assert.deepEqual(started, []);
  assert.ok(!(await written('taken')).includes(LOCK_KEY), 'the lock is released');
});

test('a job that passes the preflight starts its execution; the preflight wrote nothing and named what planning skips', async () => {
  await fx.store(`${DEPLOYMENT.data}/good`).put('notes.txt', 'not a partition');
  const { thrown, started, stderr } = await awsRun(common('fine'));
  assert.match(
    stderr,
    /warning: skipped 1 input object\(s\) \(all in skipped.json\):\n {2}notes.txt: no reader for this kind of file/,
  );
  assert.match(String((thrown as Error).message), /stub: no execution runs/);
  assert.equal(started.length, 1, 'the execution was started');
  // The preflight wrote nothing: Initialize writes job.json and plan.json in AWS.
  const keys = await written('fine');
  assert.ok(!keys.includes(OUTPUT_KEYS.job) && !keys.includes(OUTPUT_KEYS.plan), keys.join(', '));
});

test("a job concurrency above the stack's maximum exits 2 before any execution, naming both and the redeploy", async () => {
  const { thrown, started } = await awsRun([...common('over'), '--concurrency', '9']);
  assert.ok(thrown instanceof CaiError, String(thrown));
  assert.equal(thrown.code, ErrorCodes.option);
  assert.equal(exitCodeFor(thrown), ExitCodes.usage);
  assert.equal(thrown.object, 'concurrency');
  assert.match(thrown.message, /asks for 9 Lambdas at once, above the stack's maximum of 8/);
  assert.match(thrown.message, /--concurrency 8 or less/);
  assert.match(thrown.message, /cai aws deploy --max-concurrency 9/);
  assert.deepEqual(started, [], 'no execution started');
  assert.deepEqual(await written('over'), [], 'nothing written');

  // At the maximum the job starts; a stack deployed by an older CAI (no MaxConcurrency output) still
  // runs jobs, and one that sets a concurrency is told it could not be checked.
  const at = await awsRun([...common('at-max'), '--concurrency', '8']);
  assert.equal(at.started.length, 1);
  const { maxConcurrency: _m, ...older } = DEPLOYED;
  const old = await awsRun([...common('old-stack'), '--concurrency', '9'], older);
  assert.equal(old.started.length, 1, 'the execution was started');
  assert.match(
    old.stderr,
    /warning: stack Cai was deployed by an older CAI .* concurrency 9 .*cai aws deploy/,
  );
  const oldDefault = await awsRun(common('old-default'), older);
  assert.equal(oldDefault.started.length, 1);
  assert.doesNotMatch(oldDefault.stderr, /older CAI/, 'no warning when the job sets no concurrency');
});
