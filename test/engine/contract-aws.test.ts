// The engine contract on the aws engine: every job is an execution of the synthesized state machine,
// started as `cai aws run` and `cai bench --engine aws` start it (awsJobRunner), carried out by the
// offline executor (CAI's real handlers, each function's IAM enforced on its S3 requests) against
// s3rver on loopback, which holds the demo's partitions, its model and every output.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import type { Synthesized } from '../../src/engines/aws/app.js';
import type { Demo } from '../../src/demo/demo.js';
import { awsJobRunner } from '../../src/experiments/aws-runner.js';
import type { JobRunner } from '../../src/run/run.js';
import type { JobSpec } from '../../src/job/spec.js';
import '../../src/storage/register.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { synthTest } from '../aws/fixture.js';
import { offlineAwsApi, type OfflineAwsApi } from '../helpers/offline-aws-api.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';
import { uploadDir } from '../helpers/s3-upload.js';
import { engineContract, type EngineStorage } from './contract.js';

// One vCPU per function (1,769 MB) and one onnxruntime thread, as the reference runs.
const STACK = Object.freeze({
  stackName: 'CaiContract',
  data: 's3://cai-data/contract',
  output: 's3://cai-out/contract',
  model: 's3://cai-data/models/astromae.onnx',
  memoryMb: 1769,
  maxConcurrency: 2,
});

let s3: S3TestServer;
let synth: Synthesized;
let api: OfflineAwsApi;
let runner: JobRunner;
// Partitions whose next inference invocation dies as a killed Lambda runtime does.
const crashes = new Set<string>();

before(async () => {
  s3 = await startS3Server(['cai-data', 'cai-out']);
  synth = await synthTest(STACK);
  api = offlineAwsApi(synth, s3.endpoint, {
    crash: (fn, event) => {
      const id = (event as { partition?: { id?: string } }).partition?.id;
      return fn.handler === 'index.handler' && id !== undefined && crashes.delete(id);
    },
  });
  runner = awsJobRunner({ session: { stackName: STACK.stackName }, connect: async () => api, pollMs: 20 });
});

const stores = new Map<string, S3Store>();
const open = (uri: string): S3Store => {
  let store = stores.get(uri);
  if (!store) {
    store = new S3Store(uri, { s3Endpoint: s3.endpoint });
    stores.set(uri, store);
  }
  return store;
};

after(async () => {
  await api?.settled();
  for (const store of stores.values()) store.close();
  await s3?.stop();
});

let named = 0;
/** Uploads a folder of partitions under a fresh prefix of the stack's data; returns its URI. */
async function stage(dir: string): Promise<string> {
  const name = `input-${++named}`;
  await uploadDir(dir, open(STACK.data), name);
  return `${STACK.data}/${name}`;
}

const uploaded = new Map<Demo, Promise<string>>();
const S3_STORAGE: EngineStorage = {
  async job(demo: Demo, fields: Partial<JobSpec>): Promise<JobSpec> {
    if (!uploaded.has(demo))
      uploaded.set(
        demo,
        (async () => {
          await open('s3://cai-data').put('models/astromae.onnx', await readFile(demo.model));
          return stage(demo.data);
        })(),
      );
    const input = await uploaded.get(demo);
    return {
      ...demo.job,
      input: input as string,
      model: STACK.model,
      output: `${STACK.output}/run-${++named}`,
      s3Endpoint: s3.endpoint,
      concurrency: 2,
      threads: 1,
      ...fields,
    };
  },
  stage,
  open,
  async remove(location) {
    const store = open(location);
    for await (const o of store.list()) await store.delete(o.key);
  },
};

engineContract({
  name: 'aws',
  storage: S3_STORAGE,
  run: (spec, options) => runner(spec, options),
  crashOnce(partition) {
    crashes.add(partition);
    return {};
  },
});

test('aws: the contract ran as executions that stayed within their roles, with the one crash it asked for', async () => {
  await api.settled();
  const results = [...api.executions.values()].map((e) => e.result);
  // One run each for predictions and crash, two for the budget and for resume.
  assert.equal(results.length, 6);
  assert.deepEqual(
    results.flatMap((r) => r?.iamDenials ?? []),
    [],
    'no S3 request outside a role',
  );
  const crashed = results.flatMap((r) => r?.invocations ?? []).filter((i) => i.error === 'Runtime.ExitError');
  assert.equal(crashed.length, 1);
  assert.equal(crashes.size, 0);
});
