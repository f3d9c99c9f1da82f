// Summarize reads a job's outputs the way it must at 100,000 partitions: one listing of results/
// instead of a HEAD per partition, records and predictions read concurrently (bounded), the combination
// built without one giant string; a damaged record is an error that names it.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { test } from 'node:test';
import { CaiError } from '../../src/errors.js';
import { DelegatingStore } from '../../src/storage/delegating-store.js';
import { FileStore } from '../../src/storage/file-store.js';
import type { GetOptions, ObjectInfo } from '../../src/storage/store.js';
import { READ_CONCURRENCY } from '../../src/storage/bounded.js';
import { combinedJson } from '../../src/summarize/records.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { summarize, type SummarizeInput } from '../../src/summarize/summarize.js';
import { syntheticPlan, writeSyntheticOutputs } from '../helpers/synthetic-records.js';

/** A store that counts calls by kind and holds each get a few ms, measuring how many overlap. */
class CountingStore extends DelegatingStore {
  readonly calls = { list: 0, get: 0, head: 0, put: 0 };
  inFlight = 0;
  maxInFlight = 0;
  override list(prefix?: string): AsyncIterable<ObjectInfo> {
    this.calls.list++;
    return super.list(prefix);
  }
  override async get(key: string, options?: GetOptions): Promise<Uint8Array> {
    this.calls.get++;
    this.maxInFlight = Math.max(this.maxInFlight, ++this.inFlight);
    try {
      await sleep(2);
      return await super.get(key, options);
    } finally {
      this.inFlight--;
    }
  }
  override head(key: string): Promise<ObjectInfo | undefined> {
    this.calls.head++;
    return super.head(key);
  }
  override put(key: string, body: Uint8Array | string): Promise<void> {
    this.calls.put++;
    return super.put(key, body);
  }
}

const N = 600;

async function withOutput(fn: (dir: string, store: CountingStore) => Promise<void>) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-summarize-scale-'));
  try {
    const plan = syntheticPlan(N);
    await writeSyntheticOutputs(new FileStore(dir), plan);
    await fn(dir, new CountingStore(new FileStore(dir)));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const input = (store: CountingStore): SummarizeInput => ({
  output: store,
  plan: syntheticPlan(N),
  format: 'jsonl',
  map: (records) => ({ records, failures: [], retries: 0, skipped: 0 }),
  resumed: 0,
  startedAt: new Date(),
  wallSeconds: () => 1,
  mapSeconds: 1,
  job: {
    input: 's3://d/x',
    model: 's3://d/m.onnx',
    output: 's3://o/x',
    engine: 'aws',
    batchSize: 4,
    concurrency: 10,
    threads: 1,
    toleratedFailurePercentage: 0,
  },
});

test('Summarize reads no record the map already holds: one GET per partition (its predictions), not two', async () => {
  await withOutput(async (dir, store) => {
    const plan = syntheticPlan(N);
    const held = await Promise.all(
      plan.map(
        async (p) =>
          JSON.parse(
            new TextDecoder().decode(await new FileStore(dir).get(`results/${p.id}.json`)),
          ) as PartitionRecord,
      ),
    );
    const summary = await summarize({
      ...input(store),
      map: { records: held, failures: [], retries: 0, skipped: 0 },
    });
    assert.equal(summary.partitions.completed, N);
    assert.equal(store.calls.get, N, 'only the predictions are read for the metrics');
    assert.equal(store.calls.list, 1);
  });
});

test('Summarize lists results/ once, reads records and predictions concurrently, never a HEAD per partition', async () => {
  await withOutput(async (_dir, store) => {
    const summary = await summarize(input(store));
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.partitions.completed, N);
    assert.equal(summary.items, N * 4);
    assert.ok(summary.metrics, 'labels give metrics');
    // Two HEADs (the earlier summary, skipped.json), one listing of results/, a get per record and per
    // predictions file.
    assert.equal(store.calls.head, 2);
    assert.equal(store.calls.list, 1);
    assert.equal(store.calls.get, 2 * N);
    assert.equal(store.maxInFlight, READ_CONCURRENCY, 'reads overlap up to the bound, not beyond');
    // The combination is the records in plan order, as JSON.stringify would write them.
    const combined = new TextDecoder().decode(await new FileStore(_dir).get('combined_data.json'));
    const records = JSON.parse(combined) as { partition: string }[];
    assert.deepEqual(
      records.map((r) => r.partition),
      syntheticPlan(N).map((p) => p.id),
    );
    assert.equal(combined, `${JSON.stringify(records, null, 2)}\n`);
  });
});

test('a truncated record stops Summarize with E_CORRUPT naming its key and what to do', async () => {
  await withOutput(async (dir, store) => {
    const files = new FileStore(dir);
    const whole = await files.get('results/417.json');
    await files.put('results/417.json', whole.subarray(0, 100));
    await assert.rejects(summarize(input(store)), (err: unknown) => {
      assert.ok(err instanceof CaiError, String(err));
      assert.equal(err.code, 'E_CORRUPT');
      assert.match(err.message, /results\/417\.json/);
      assert.match(err.message, /truncated or corrupt.*run the job again/);
      return true;
    });
  });
});

test('combinedJson is JSON.stringify(records, null, 2) for empty, one and many records', () => {
  for (const records of [[], [{ a: 1 }], [{ a: [1, 2], b: { c: 'x' } }, { a: null }]]) {
    assert.equal(Buffer.from(combinedJson(records)).toString(), `${JSON.stringify(records, null, 2)}\n`);
  }
});
