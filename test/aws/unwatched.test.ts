// `cai aws run` that loses Step Functions while its execution runs: the execution goes on in AWS, so the
// command ends as unwatched (exit 3) naming the execution and how to follow it, not as a setup error (2)
// or a failed job (1). And Ctrl-C / SIGTERM of `cai aws run`: the execution is stopped (exit 130/143),
// or, if Step Functions does not take the stop, said to run on (exit 3) with how to follow and stop it.
// A stub API stands in for Step Functions here: what is tested is the watcher's reading of a lost
// connection and its answer to a signal, which no offline executor can produce.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Command } from 'commander';
import '../../src/storage/register.js';
import { registerAwsCommand } from '../../src/cli/commands/aws.js';
import { LOCK_KEY } from '../../src/run/lock.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { startMemoryS3, type MemoryS3 } from '../helpers/memory-s3.js';
import type { AwsApi, Deployment, ExecutionState } from '../../src/engines/aws/cloud.js';
import { followExecution } from '../../src/engines/aws/run-on-aws.js';
import { CaiError, ErrorCodes, ExitCodes, exitCodeFor } from '../../src/errors.js';
import { parseJobSpec } from '../../src/job/spec.js';

const ARN = 'arn:aws:states:eu-west-1:123456789012:execution:Cai:run-1';
let dir = '';
let memory: MemoryS3;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-unwatched-'));
  memory = await startMemoryS3(['bucket']);
});

after(async () => {
  await memory?.stop();
  await rm(dir, { recursive: true, force: true });
});

/** An API whose execution is RUNNING for `answers` polls, then whose every call fails as `fail` does. */
function api(answers: number, fail: () => Promise<never>, end?: ExecutionState['status']) {
  let polls = 0;
  const startDate = new Date();
  const stub: AwsApi = {
    region: 'eu-west-1',
    describeStack: () => Promise.reject(new Error('not used')),
    startExecution: () => Promise.reject(new Error('not used')),
    describeExecution: () => {
      polls++;
      if (polls > answers)
        return end ? Promise.resolve({ status: end, startDate, stopDate: new Date() }) : fail();
      return Promise.resolve({ status: 'RUNNING', startDate });
    },
    mapRun: () => Promise.resolve(undefined),
    deleteStack: () => Promise.reject(new Error('not used')),
  };
  return { stub, polls: () => polls };
}

const spec = () =>
  parseJobSpec({
    input: path.join(dir, 'in'),
    model: path.join(dir, 'm.onnx'),
    output: path.join(dir, 'out'),
  });

test('Step Functions lost while the execution runs: unwatched, exit 3, naming the execution and cai aws status', async () => {
  const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:443'), { code: 'ECONNREFUSED' });
  const { stub, polls } = api(2, () => Promise.reject(refused));
  await assert.rejects(followExecution(stub, ARN, spec(), { pollMs: 1 }), (err: unknown) => {
    assert.ok(err instanceof CaiError);
    assert.equal(err.code, ErrorCodes.unwatched);
    assert.equal(exitCodeFor(err), ExitCodes.unwatched);
    assert.match(err.message, /ECONNREFUSED/);
    assert.match(err.message, /runs on in AWS/);
    assert.ok(err.message.includes(`cai aws status ${ARN}`), err.message);
    assert.equal(err.cause, refused);
    return true;
  });
  assert.equal(
    polls(),
    3,
    'followed while it answered, then gave up on the first failure past the client retries',
  );
});

test('an execution that ends is reported as it ended, not as unwatched', async () => {
  const { stub } = api(1, () => Promise.reject(new Error('not reached')), 'FAILED');
  const result = await followExecution(stub, ARN, spec(), { pollMs: 1 });
  assert.equal(result.status, 'FAILED');
  assert.equal(result.summary, undefined);
});

/**
 * `cai aws run` with a stub Step Functions whose execution runs until stopped (or 200 polls), sent
 * `signal` after its second poll; returns what the command threw, the stops asked and whether the output
 * is left locked.
 */
async function interrupted(signal: 'SIGINT' | 'SIGTERM', stopFails = false) {
  const previous = process.env.AWS_ENDPOINT_URL_S3;
  process.env.AWS_ENDPOINT_URL_S3 = memory.endpoint;
  const deployment: Deployment = {
    stackName: 'Cai',
    region: 'eu-west-1',
    stateMachineArn: 'arn:aws:states:eu-west-1:123456789012:stateMachine:Cai',
    data: 's3://bucket/data',
    output: `s3://bucket/out-${signal}-${stopFails}`,
    model: 's3://bucket/model.onnx',
    memoryMb: 1024,
  };
  const stops: [string, string][] = [];
  let polls = 0;
  let aborted = false;
  const startDate = new Date();
  const api: AwsApi = {
    region: 'eu-west-1',
    describeStack: () => Promise.resolve(deployment),
    startExecution: () => Promise.resolve(ARN),
    describeExecution: () => {
      if (++polls === 2) setImmediate(() => process.emit(signal, signal));
      const ended = aborted || polls > 200;
      return Promise.resolve({ status: ended ? 'ABORTED' : 'RUNNING', startDate });
    },
    mapRun: () => Promise.resolve(undefined),
    deleteStack: () => Promise.reject(new Error('not used')),
    stopExecution: (arn, cause) => {
      stops.push([arn, cause]);
      if (stopFails)
        return Promise.reject(new Error('AccessDeniedException: not authorized to StopExecution'));
      aborted = true;
      return Promise.resolve();
    },
  };
  const program = new Command().exitOverride();
  registerAwsCommand(program, {
    api: () => Promise.resolve(api),
    out: () => {},
    err: () => {},
    pollSeconds: 0.01,
    // The stub stack holds no data or model: the checks before the execution have their own test
    // (preflight.test.ts); this one is about the watcher.
    preflight: async () => [],
  });
  try {
    const thrown = await program
      .parseAsync(['node', 'cai', 'aws', 'run', '--output', deployment.output, '--quiet'])
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    const out = new S3Store(deployment.output, { s3Endpoint: memory.endpoint });
    const locked = Boolean(await out.head(LOCK_KEY));
    out.close();
    return { thrown, stops, locked, polls };
  } finally {
    if (previous === undefined) delete process.env.AWS_ENDPOINT_URL_S3;
    else process.env.AWS_ENDPOINT_URL_S3 = previous;
  }
}

test('Ctrl-C of cai aws run stops its execution (StopExecution), releases the output and exits 130; SIGTERM 143', async () => {
  const { thrown, stops, locked, polls } = await interrupted('SIGINT');
  assert.ok(thrown instanceof CaiError, String(thrown));
  assert.equal(thrown.code, ErrorCodes.interrupted, thrown.message);
  assert.equal(exitCodeFor(thrown), ExitCodes.sigint);
  assert.ok(thrown.message.includes(`stopped execution ${ARN}`), thrown.message);
  assert.match(thrown.message, /run the same job again to resume/);
  assert.deepEqual(stops, [[ARN, 'cai aws run was stopped by SIGINT']]);
  assert.equal(polls, 2, 'no poll after the signal');
  assert.equal(locked, false, 'the output lock is released');
  const term = await interrupted('SIGTERM');
  assert.ok(term.thrown instanceof CaiError);
  assert.equal(exitCodeFor(term.thrown), ExitCodes.sigterm);
  assert.equal(term.stops.length, 1);
});

test('Ctrl-C whose stop Step Functions refuses: the execution runs on, exit 3, naming how to follow and stop it', async () => {
  const { thrown, stops, locked } = await interrupted('SIGINT', true);
  assert.ok(thrown instanceof CaiError, String(thrown));
  assert.equal(thrown.code, ErrorCodes.unwatched, thrown.message);
  assert.equal(exitCodeFor(thrown), ExitCodes.unwatched);
  assert.match(thrown.message, /AccessDeniedException/);
  assert.match(thrown.message, /runs on in AWS/);
  assert.ok(thrown.message.includes(`cai aws status ${ARN}`), thrown.message);
  assert.ok(
    thrown.message.includes(`aws stepfunctions stop-execution --execution-arn ${ARN}`),
    thrown.message,
  );
  assert.equal(stops.length, 1);
  assert.equal(locked, false);
});
