// `cai aws run` that loses Step Functions while its execution runs: the execution goes on in AWS, so the
// command ends as unwatched (exit 3) naming the execution and how to follow it, not as a setup error (2)
// or a failed job (1). A stub API stands in for Step Functions here: what is tested is the watcher's
// reading of a lost connection, which no offline executor can produce.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import type { AwsApi, ExecutionState } from '../../src/engines/aws/cloud.js';
import { followExecution } from '../../src/engines/aws/run-on-aws.js';
import { CaiError, ErrorCodes, ExitCodes, exitCodeFor } from '../../src/errors.js';
import { parseJobSpec } from '../../src/job/spec.js';

const ARN = 'arn:aws:states:eu-west-1:123456789012:execution:Cai:run-1';
let dir = '';

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-unwatched-'));
});

after(async () => {
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
