// Summarize on AWS takes this run's records from the Map's exported results (the records the inference
// function returns) instead of a GET per record, and only where the object listed in the output is the
// record returned: a record missing from the results (a retried child, a result without it) or one the
// output holds in another version is read from the output, and no partition is counted twice.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import type { InferenceEvent, InferenceResult, LambdaContext } from '../../src/engines/aws/protocol.js';
import { InvocationError, LAMBDA_ERRORS } from '../../src/engines/aws/lambda-errors.js';
import { readMapRecords, type ChildExecutionResult } from '../../src/engines/aws/map-results.js';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import '../../src/storage/register.js';
import { openStore } from '../../src/storage/open.js';
import { S3Store } from '../../src/storage/s3-store.js';
import type { JobSummary } from '../../src/summarize/summarize.js';
import { recordText } from '../../src/summarize/records.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { outputKeys } from '../../src/worker/run-partition.js';
import { runOfflineExecution } from '../helpers/aws-offline/executor.js';
import { CAI_HANDLERS } from '../helpers/aws-offline/handlers.js';
import type { LambdaHandler } from '../helpers/aws-offline/lambda-service.js';
import { startMemoryS3 } from '../helpers/memory-s3.js';
import { seedSyntheticJob, syntheticInference } from '../helpers/synthetic-inference.js';
import { syntheticRecord } from '../helpers/synthetic-records.js';
import { DEPLOYMENT, synthTest } from './fixture.js';

const bucket = (uri: string) => new URL(uri).host;
const readObject = async <T>(store: S3Store, key: string) =>
  JSON.parse(new TextDecoder().decode(await store.get(key))) as T;

test('Summarize reads the records the Map returned from its results, and the others from the output', async () => {
  const s3 = await startMemoryS3([bucket(DEPLOYMENT.data), bucket(DEPLOYMENT.output)]);
  try {
    const synth = await synthTest();
    const n = 120;
    const job = await seedSyntheticJob(s3, 'mr', n, 40);
    const output = new S3Store(job.output, { s3Endpoint: s3.endpoint });
    const synthetic = syntheticInference();
    // Partition 7: the first try writes its record and fails (retryable); the second skips it, so no
    // result carries it. Partition 8: returned without its record. Partition 9: the record returned
    // is not the one the output ends up with (rewritten after the return, another size).
    const tries = new Map<string, number>();
    const inference = async (event: InferenceEvent, context: LambdaContext): Promise<InferenceResult> => {
      const id = event.partition?.id ?? '';
      tries.set(id, (tries.get(id) ?? 0) + 1);
      const result = (await synthetic(event as never, context)) as InferenceResult;
      if (id === '7' && event.attempt === 1)
        throw new InvocationError(LAMBDA_ERRORS.retryable, [
          { partition: '7', attempt: 1, code: ErrorCodes.storage, message: 'a transient fault' },
        ]);
      if (id === '8') return { partitions: result.partitions.map(({ record: _r, ...p }) => p) };
      if (id === '9' && event.partition) {
        const later = { ...syntheticRecord(event.partition), items: 4, device: 'cpu (rewritten)' };
        await output.put(outputKeys('9', 'jsonl').record, recordText(later));
      }
      return result;
    };
    let before: Promise<Record<string, number>> | undefined;
    let summarizeGets: Promise<number> | undefined;
    const result = await runOfflineExecution({
      template: synth.templateFile,
      input: { job },
      s3Endpoint: s3.endpoint,
      handlers: { ...CAI_HANDLERS, 'index.handler': () => inference as LambdaHandler },
      waitScale: 0.001,
      onState: (e) => {
        if (e.name !== 'Summarize') return;
        if (e.phase === 'entered') before = s3.requestsByKind();
        else if (e.phase === 'exited')
          summarizeGets = Promise.all([before, s3.requestsByKind()]).then(
            ([a, b]) => (b.GET ?? 0) - (a?.GET ?? 0),
          );
      },
    });
    assert.equal(result.status, 'SUCCEEDED', `${result.error}: ${result.cause}`);
    assert.deepEqual(result.iamDenials, []);
    assert.equal(tries.get('7'), 2);

    const summary = await readObject<JobSummary>(output, 'summary.json');
    assert.equal(summary.status, 'succeeded');
    assert.deepEqual(summary.partitions, { planned: n, completed: n, failed: 0, resumed: 0, not_started: 0 });
    // Every record once, each as the output holds it (partition 9 as rewritten, not as returned).
    const combined = await readObject<PartitionRecord[]>(output, 'combined_data.json');
    assert.deepEqual(
      combined.map((r) => r.partition),
      Array.from({ length: n }, (_, i) => String(i + 1)),
    );
    for (const r of combined)
      assert.deepEqual(r, await readObject<PartitionRecord>(output, outputKeys(r.partition, 'jsonl').record));
    assert.equal(combined[8].device, 'cpu (rewritten)');
    // One GET per predictions file (labels: metrics), three records read (7, 8, 9), and a handful of
    // documents (plan, manifest, items, result files, the previous summary): not one per record.
    const gets = await summarizeGets;
    assert.ok(gets !== undefined && gets >= n + 3 && gets <= n + 12, `Summarize made ${gets} GETs for ${n}`);
  } finally {
    await s3.stop();
  }
});

test('the records of a result file are read in ranges, whatever falls on a range boundary', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-map-records-'));
  try {
    await rangedRecords(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

async function rangedRecords(dir: string): Promise<void> {
  const store = await openStore(dir);
  const plan = Array.from({ length: 9 }, (_, i) => ({ id: String(i + 1), key: `${i + 1}.pt`, bytes: 64 }));
  const records = plan.map((p) => ({
    ...syntheticRecord(p),
    // Braces, brackets, quotes, backslashes and multi-byte characters inside strings.
    data_path: `we{ir}d "pa[th]" \\ ${'é'.repeat(Number(p.id))} \u{1F600} ${p.id}`,
  }));
  const entry = (ids: string[], status: ChildExecutionResult['Status'], withRecords = true) => ({
    ExecutionArn: `arn:x:${ids.join('-')}`,
    Input: JSON.stringify({ Items: plan.filter((p) => ids.includes(p.id)) }),
    InputDetails: { Included: true },
    Status: status,
    ...(status === 'SUCCEEDED'
      ? {
          Output: JSON.stringify({
            partitions: ids.map((id) => ({
              id,
              status: 'ok',
              items: 4,
              seconds: 0.05,
              ...(withRecords ? { record: records[Number(id) - 1] } : {}),
            })),
          }),
        }
      : { Error: 'CaiPartitionError', Cause: '{}' }),
    StateMachineArn: 'arn:x',
    RedriveCount: 0,
    RedriveStatus: 'NOT_REDRIVABLE',
  });
  const files = {
    'map/SUCCEEDED_0.json': JSON.stringify(
      [entry(['1', '2'], 'SUCCEEDED'), entry(['3'], 'SUCCEEDED')],
      null,
      1,
    ),
    'map/SUCCEEDED_1.json': JSON.stringify([
      entry(['4', '5', '6'], 'SUCCEEDED'),
      entry(['7'], 'SUCCEEDED', false),
    ]),
    'map/FAILED_0.json': JSON.stringify([entry(['8', '9'], 'FAILED')]),
  };
  for (const [key, body] of Object.entries(files)) await store.put(key, body);
  const list = (status: string) =>
    Object.entries(files)
      .filter(([k]) => k.includes(status))
      .map(([Key, body]) => ({ Key, Size: Buffer.byteLength(body) }));
  await store.put(
    'map/manifest.json',
    JSON.stringify({
      DestinationBucket: 'b',
      MapRunArn: 'arn:x',
      ResultFiles: { SUCCEEDED: list('SUCCEEDED'), FAILED: list('FAILED'), PENDING: [] },
    }),
  );
  const expected = new Map(records.slice(0, 6).map((r) => [r.partition, r]));
  for (const chunk of [1, 2, 3, 7, 64, 1000, 1 << 20])
    assert.deepEqual(
      await readMapRecords(store, 'map/manifest.json', '', chunk),
      expected,
      `chunks of ${chunk}`,
    );

  // A file cut short is corrupt, named (Summarize then reads every record from the output instead).
  await store.put('map/SUCCEEDED_1.json', files['map/SUCCEEDED_1.json'].slice(0, -40));
  const err = await readMapRecords(store, 'map/manifest.json', '', 100).catch((e: unknown) => e);
  assert.ok(err instanceof CaiError && err.code === ErrorCodes.corrupt, String(err));
  assert.match(err.message, /SUCCEEDED_1\.json/);
}
