// Summarize on AWS writes a summary even when it fails: a plan it cannot read leaves a failed
// summary.json saying what the execution knew and why the rest is unknown, and the handler still
// throws (the execution fails). Before, it threw and left no summary at all.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { HandlerConfig } from '../../src/engines/aws/config.js';
import { createSummarizeHandler, type FailedSummary } from '../../src/engines/aws/handlers/summarize.js';
import type { SummarizeEvent } from '../../src/engines/aws/protocol.js';
import { CaiError, ErrorCodes } from '../../src/errors.js';
import { parseJobSpec, resolveJob } from '../../src/job/spec.js';
import '../../src/storage/register.js';
import { S3Store } from '../../src/storage/s3-store.js';
import { startMemoryS3 } from '../helpers/memory-s3.js';

test('a Summarize that fails still writes a failed summary of what it knows, then fails', async () => {
  const memory = await startMemoryS3(['fb']);
  const output = 's3://fb/out';
  const store = new S3Store(output, { s3Endpoint: memory.endpoint });
  try {
    await store.put('plan.json', '[{"id": "1", "key": "1.pt", "bytes"');
    await store.put('aws-runs/x/items.json', '[]');
    const job = resolveJob(
      parseJobSpec({ input: 's3://fb/data', model: 's3://fb/m.onnx', output, s3Endpoint: memory.endpoint }),
      { partitions: 4 },
    );
    const startedAt = '2026-12-05T00:00:00.000Z';
    const event = {
      state: {
        init: {
          manifest: { bucket: 'b', key: 'k' },
          resultWriter: { bucket: 'b', prefix: 'p' },
          runFolder: 'aws-runs/x/',
          maxConcurrency: 4,
          toleratedFailurePercentage: 0,
          toleratedFailureCount: 0,
          task: { job, overwrite: false, startedAt },
          planned: 4,
          todo: 3,
          resumed: 1,
          mapStartedAt: startedAt,
        },
        mapError: { Error: 'States.ExceedToleratedFailureThreshold' },
      },
      executionName: 'x',
      executionStartTime: startedAt,
    } as SummarizeEvent;
    const handler = createSummarizeHandler({ crashAttempts: 3 } as HandlerConfig);
    const err = await handler(event).catch((e: unknown) => e);
    assert.ok(err instanceof CaiError, String(err));
    assert.equal(err.code, ErrorCodes.corrupt, err.message);
    const summary = JSON.parse(new TextDecoder().decode(await store.get('summary.json'))) as FailedSummary;
    assert.equal(summary.status, 'failed');
    assert.deepEqual(summary.partitions, { planned: 4, todo: 3, resumed: 1 });
    assert.equal(summary.run.started_at, startedAt);
    assert.equal(summary.summarize_error.code, ErrorCodes.corrupt);
    assert.match(summary.summarize_error.message, /plan\.json/);
    assert.equal(summary.map_error?.Error, 'States.ExceedToleratedFailureThreshold');
  } finally {
    store.close();
    await memory.stop();
  }
});
