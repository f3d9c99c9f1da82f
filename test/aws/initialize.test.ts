// The Initialize function plans a job as `cai run` does: with every source option of the job, and
// resuming from what the output already holds.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import sharp from 'sharp';
import '../../src/storage/register.js';
import { createInitializeHandler } from '../../src/engines/aws/handlers/initialize.js';
import type { PlannedPartition } from '../../src/plan/plan.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { startS3Server, type S3TestServer } from '../helpers/s3-server.js';

let s3: S3TestServer;
before(async () => {
  s3 = await startS3Server(['cai-data', 'cai-out']);
});
after(() => s3?.stop());

// The stack every test's Initialize runs against.
const STACK = {
  data: 's3://cai-data',
  output: 's3://cai-out/runs',
  model: 's3://cai-data/model.onnx',
  maxConcurrency: 10,
  toleratedFailurePercentage: 0,
  inferenceMemoryMb: 2048,
  crashAttempts: 2,
};

test('Initialize groups images by partitionItems like the local planner, and skips finished partitions', async () => {
  const data = new S3Store('s3://cai-data/photos', { s3Endpoint: s3.endpoint });
  const out = new S3Store('s3://cai-out/runs/photos', { s3Endpoint: s3.endpoint });
  for (let i = 1; i <= 5; i++) {
    const png = await sharp({
      create: { width: 8, height: 8, channels: 3, background: { r: 40 * i, g: 0, b: 0 } },
    })
      .png()
      .toBuffer();
    await data.put(`img_${i}.png`, png);
  }
  const config = STACK;
  const job = {
    input: 's3://cai-data/photos',
    output: 's3://cai-out/runs/photos',
    model: 's3://cai-data/model.onnx',
    s3Endpoint: s3.endpoint,
    partitionItems: 2,
  };
  const initialize = createInitializeHandler(config);
  const event = (name: string) => ({
    input: { job },
    executionName: name,
    executionStartTime: new Date().toISOString(),
  });
  const first = await initialize(event('one'));
  assert.equal(first.planned, 3);
  assert.equal(first.todo, 3);
  const plan = JSON.parse(Buffer.from(await out.get('plan.json')).toString()) as PlannedPartition[];
  assert.deepEqual(
    plan.map((p) => p.keys),
    [['img_1.png', 'img_2.png'], ['img_3.png', 'img_4.png'], ['img_5.png']],
  );

  // Partition 1 finished (record and predictions), partition 2 only half (no predictions).
  const [p1, p2] = plan;
  await out.put(`results/${p1.id}.json`, '{}');
  await out.put(`predictions/${p1.id}.parquet`, 'x');
  await out.put(`results/${p2.id}.json`, '{}');
  const second = await initialize(event('two'));
  assert.equal(second.planned, 3);
  assert.equal(second.resumed, 1);
  const todo = JSON.parse(
    Buffer.from(await out.get('aws-runs/two/items.json')).toString(),
  ) as PlannedPartition[];
  assert.deepEqual(
    todo.map((p) => p.id),
    [p2.id, plan[2].id],
  );
});

/** Initialize refuses `job` with an error `refusal` accepts, and writes nothing into its output. */
async function refusedBeforeWriting(
  name: string,
  field: Record<string, unknown>,
  refusal: (err: Error & { code?: string }) => boolean,
): Promise<void> {
  const output = `s3://cai-out/runs/${name}`;
  const job = {
    input: 's3://cai-data/photos',
    output,
    model: STACK.model,
    s3Endpoint: s3.endpoint,
    ...field,
  };
  const initialize = createInitializeHandler(STACK);
  await assert.rejects(
    initialize({ input: { job }, executionName: 'x', executionStartTime: new Date().toISOString() }),
    refusal,
  );
  const written: string[] = [];
  for await (const o of new S3Store(output, { s3Endpoint: s3.endpoint }).list('')) written.push(o.key);
  assert.deepEqual(written, []);
}

test('Initialize refuses a job field the AWS engine does not use before writing anything', async () => {
  await refusedBeforeWriting(
    'timeout',
    { partitionTimeoutSeconds: 60 },
    (err) =>
      err.code === 'E_OPTION' &&
      /partition timeout|partitionTimeoutSeconds|--partition-timeout/i.test(err.message),
  );
});

test("Initialize refuses a concurrency above the stack's maximum (an execution started without the CLI) before writing anything", async () => {
  await refusedBeforeWriting(
    'over',
    { concurrency: 11 },
    (err) =>
      err.code === 'E_OPTION' &&
      /asks for 11 Lambdas at once, above the stack's maximum of 10/.test(err.message) &&
      /--max-concurrency 11/.test(err.message),
  );
});
