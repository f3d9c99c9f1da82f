import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  billRecords,
  priceUsage,
  roundCents,
  SEEDS_COST_TABLE,
  SEEDS_COST_VARIANT,
  seedsComparison,
  seedsFormulaCost,
  TRANSITIONS_PER_RETRY,
  usageForPartitions,
} from '../../src/experiments/cost.js';
import { PRICES } from '../../src/experiments/prices.js';
import { CaiError } from '../../src/errors.js';
import { makeRecord } from './records.js';

const close = (a: number, b: number, eps = 1e-12) => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);
const item = (bill: { lines: readonly { item: string; usd: number; quantity: number }[] }, prefix: string) =>
  bill.lines.filter((l) => l.item.startsWith(prefix));

test("the seeds' formula reproduces the seeds' cost table to the cent", () => {
  // Seed 004's table and seed 001's 100 MB variant, as printed.
  const expected = [0.16, 0.2, 0.3, 0.38];
  SEEDS_COST_TABLE.forEach((row, i) => {
    assert.equal(roundCents(seedsFormulaCost(row.requests, row.durationS, row.memoryGB)), expected[i]);
    assert.equal(row.publishedUSD, expected[i]);
  });
  assert.equal(roundCents(seedsFormulaCost(SEEDS_COST_VARIANT.requests, 26.9, 7.0)), 0.41);
  // Independent arithmetic of the first row: 517 x 6.55 x 2.8 = 9481.78 GB-s.
  close(seedsFormulaCost(517, 6.55, 2.8), 9481.78 * 0.00001667, 1e-12);
});

test('seedsComparison keeps the seeds numbers and bills the configured 10 GB', () => {
  const rows = seedsComparison();
  assert.deepEqual(
    rows.map((r) => r.seedsUSD),
    [0.16, 0.2, 0.3, 0.38],
  );
  const r25 = rows[0];
  // 517 invocations x 6550 ms x 10 GB = 33,863.5 GB-s at $0.0000166667.
  close(r25.honest.mapGbSeconds, 33863.5, 1e-9);
  close(item(r25.honest, 'Lambda compute')[0].usd, 33863.5 * 0.0000166667, 1e-12);
  // Standard: Initialize, Map, Summarize + one parent transition per child + one state in each child.
  assert.equal(item(r25.honest, 'Step Functions')[0].quantity, 3 + 517 + 517);
  assert.ok(r25.honest.totalUSD > 3 * r25.seedsUSD, 'configured memory costs far more than memory used');
});

test('honest bill of 1,000 Lambda invocations x 10,240 MB x 1.2345 s billed', () => {
  const records = Array.from({ length: 1000 }, (_, i) =>
    makeRecord({
      partition: String(i),
      lambda: {
        memory_mb: 10240,
        billed_duration_ms: 1234.5,
        cold_start: false,
        architecture: 'x86_64',
        request_id: `r${i}`,
      },
      storage: {
        read: { requests: 1, retries: 0, bytes: 1, seconds: 0.1 },
        write: { requests: 2, retries: 0, bytes: 1, seconds: 0.1 },
      },
    }),
  );
  const bill = billRecords(records);
  // Billed duration is rounded up to 1 ms: 1235 ms. 1000 x 10 GB x 1.235 s = 12,350 GB-s.
  close(bill.mapGbSeconds, 12350, 1e-9);
  const compute = 12350 * 0.0000166667; // $0.205833745
  close(item(bill, 'Lambda compute')[0].usd, compute);
  close(item(bill, 'Lambda requests')[0].usd, 1000 * 0.0000002);
  // 1000 GETs by the partitions + 1000 by Summarize; 2000 PUTs + plan + 3 summary files; 1 LIST page.
  assert.equal(item(bill, 'S3 GET')[0].quantity, 2000);
  assert.equal(item(bill, 'S3 PUT')[0].quantity, 2004);
  assert.equal(item(bill, 'S3 LIST')[0].quantity, 1);
  const sfn = (3 + 1000 + 1000) * 0.000025;
  const s3 = 2000 * 0.0000004 + 2004 * 0.000005 + 0.000005;
  close(bill.totalUSD, compute + 1000 * 0.0000002 + sfn + s3, 1e-12);

  // The same invocations on arm64 cost 0.0000133334 per GB-s.
  const arm = billRecords(records.map((r) => ({ ...r, lambda: { ...r.lambda!, architecture: 'arm64' } })));
  close(item(arm, 'Lambda compute')[0].usd, 12350 * 0.0000133334);
});

test('local records are billed for wall time plus cold model load, and the bill says so', () => {
  const records = [
    makeRecord({
      partition: '1',
      items: 100,
      secondsPerItem: 0.01,
      readS: 0.2345,
      cold: true,
      modelLoadS: 0.5,
    }),
    makeRecord({ partition: '2', items: 100, secondsPerItem: 0.01, readS: 0.2345 }),
  ];
  const bill = billRecords(records, { memoryMB: 2048 });
  // 1.2345 s + 0.5 s cold = 1735 ms; 1.2345 s -> 1235 ms; at 2 GB.
  close(bill.mapGbSeconds, ((1735 + 1235) / 1000) * 2, 1e-9);
  assert.match(bill.notes.join('\n'), /billed as if on Lambda at 2048 MB/);
  assert.match(bill.notes.join('\n'), /1 S3 GET/);
});

test('ephemeral storage above 512 MB, Express children and retries are billed', () => {
  const usage = usageForPartitions(
    { partitions: 10, billedMs: 2000 },
    { ephemeralMB: 1536, childWorkflow: 'express' },
  );
  const bill = priceUsage(usage);
  // 1 GB extra x 20 s.
  close(item(bill, 'Lambda ephemeral')[0].usd, 1 * 20 * PRICES.lambda.ephemeralGbSecond);
  close(item(bill, 'Step Functions Express child executions')[0].usd, 10 * 0.000001);
  // 10 x 2.0 s x 64 MB = 1.25 GB-s at $0.06 per GB-hour.
  close(item(bill, 'Step Functions Express duration')[0].usd, ((10 * 2 * 64) / 1024) * (0.06 / 3600));
  assert.equal(item(bill, 'Step Functions Standard transitions (parent)')[0].quantity, 3 + 10);

  const retried = billRecords([makeRecord({ partition: '1', attempt: 3 })]);
  assert.equal(item(retried, 'Lambda requests')[0].quantity, 3);
  // 3 parent transitions, the child's start, its first Task, and TryAgain, NextTry, Backoff, Infer a retry.
  assert.equal(item(retried, 'Step Functions')[0].quantity, 3 + 1 + 1 + 2 * TRANSITIONS_PER_RETRY);
  assert.match(retried.notes.join('\n'), /2 earlier attempts/);
});

test('bad options fail loudly with the valid values', () => {
  assert.throws(
    () => billRecords([], { memoryMB: 20000 }),
    (e: unknown) => e instanceof CaiError && /128 to 10240/.test(e.message),
  );
  assert.throws(
    () => billRecords([], { arch: 'sparc' as 'arm64' }),
    (e: unknown) => e instanceof CaiError && /x86_64 or arm64/.test(e.message),
  );
});
