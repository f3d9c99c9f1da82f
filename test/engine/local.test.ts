import assert from 'node:assert/strict';
import { readFile, stat, truncate, copyFile, mkdtemp, readdir } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { runJob } from '../../src/run/run.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { allPredictions, freshJob, smallDemo } from '../helpers/demo-fixture.js';

test('a demo job writes every prediction once, in order, and its metrics prove the rows match', async () => {
  const demo = await smallDemo();
  const job = await freshJob(demo);
  const summary = await runJob(job, { retryBaseMs: 10 });
  assert.equal(summary.status, 'succeeded');
  assert.equal(summary.items, demo.items);
  const rows = await allPredictions(job.output);
  assert.equal(rows.length, demo.items);
  const seen = new Set(rows.map((r) => `${r.partition}:${r.index}`));
  assert.equal(seen.size, demo.items, 'no duplicate (partition, index)');
  // Labels are the model's own output plus noise of sigma 0.004 in dz: NMAD near 0.004, no outliers.
  assert.equal(summary.metrics?.kind, 'regression');
  if (summary.metrics?.kind === 'regression') {
    assert.ok(summary.metrics.nmad < 0.008 && summary.metrics.nmad > 0.001, `nmad ${summary.metrics.nmad}`);
    assert.equal(summary.metrics.outlier_fraction, 0);
  }
  for (const f of ['plan.json', 'job.json', 'combined_data.json', 'result_stats.csv', 'summary.json']) {
    assert.ok((await stat(path.join(job.output, f))).size > 0, f);
  }
  const combined = JSON.parse(
    await readFile(path.join(job.output, 'combined_data.json'), 'utf8'),
  ) as PartitionRecord[];
  assert.deepEqual(combined.map((r) => r.partition).sort(), ['1', '2', '3', '4']);
  for (const r of combined) {
    assert.equal(r.num_batches, Math.ceil(r.items / r.batch_size));
    assert.ok(
      r.timings.total >= r.timings.inference && r.sample_persec > 0 && r['total_cpu_memory (MB)'] > 50,
    );
    // A worker's first partition is not prefetched: it waits for the whole read (which is inside the wait).
    const wait = r.timings.read_wait ?? NaN;
    assert.ok(wait >= 0, `read_wait ${wait}`);
    if (r.cold)
      assert.ok(wait >= r.timings.read - 1e-3, `cold: waited ${wait} s for a ${r.timings.read} s read`);
  }
  const waited = combined.reduce((a, r) => a + (r.timings.read_wait ?? 0), 0);
  assert.ok(Math.abs(summary.stage_seconds.read_wait - waited) < 1e-9, 'the summary sums the records');
  const csv = (await readFile(path.join(job.output, 'result_stats.csv'), 'utf8')).trim().split('\n');
  assert.equal(csv.length, 2);
});

test('a worker killed mid-job costs one retry and nothing else; a second run does no work', async () => {
  const demo = await smallDemo();
  const job = await freshJob(demo, { concurrency: 1, maxAttempts: 3 });
  let killed: string | undefined;
  const summary = await runJob(job, {
    retryBaseMs: 10,
    onEvent: (e) => {
      if (e.type === 'start' && e.partition.id === '2' && !killed) {
        killed = e.partition.id;
        process.kill(e.pid, 'SIGKILL');
      }
    },
  });
  assert.equal(killed, '2');
  assert.equal(summary.status, 'succeeded');
  assert.equal(summary.run.retries, 1);
  const rows = await allPredictions(job.output);
  assert.equal(rows.length, demo.items);
  assert.equal(new Set(rows.map((r) => `${r.partition}:${r.index}`)).size, demo.items);
  const rec = JSON.parse(
    await readFile(path.join(job.output, 'results', '2.json'), 'utf8'),
  ) as PartitionRecord;
  assert.equal(rec.attempt, 2);
  const combined = JSON.parse(
    await readFile(path.join(job.output, 'combined_data.json'), 'utf8'),
  ) as PartitionRecord[];
  assert.equal(
    combined.filter((r) => r.cold).length,
    2,
    'the replacement worker loaded the model once, again',
  );

  const before = await stat(path.join(job.output, 'results', '1.json'));
  const again = await runJob(job, { retryBaseMs: 10 });
  assert.equal(again.partitions.resumed, 4);
  assert.equal(again.run.partitions, 0);
  assert.equal(again.runs.length, 2);
  assert.equal((await stat(path.join(job.output, 'results', '1.json'))).mtimeMs, before.mtimeMs);
});

test('a corrupt partition fails without retries; the error budget decides the job', async () => {
  const demo = await smallDemo();
  const input = await mkdtemp(path.join(os.tmpdir(), 'cai-bad-'));
  for (const f of await readdir(demo.data)) await copyFile(path.join(demo.data, f), path.join(input, f));
  await truncate(path.join(input, '3.pt'), 5000);

  const strict = await runJob(await freshJob(demo, { input }), { retryBaseMs: 10 });
  assert.equal(strict.status, 'failed');
  assert.equal(strict.failures[0]?.partition, '3');
  assert.equal(strict.failures[0]?.attempts, 1, 'a corrupt file is not retried');
  assert.match(strict.failures[0]?.error.message ?? '', /3\.pt/);

  const tolerant = await runJob(await freshJob(demo, { input, toleratedFailurePercentage: 25 }), {
    retryBaseMs: 10,
  });
  assert.equal(tolerant.status, 'succeeded');
  assert.equal(tolerant.partitions.completed, 3);
  assert.equal(tolerant.partitions.failed, 1);
});

test('a partition that outlives its timeout is stopped and retried, then fails the job', async () => {
  const demo = await smallDemo();
  const job = await freshJob(demo, {
    fileLimit: 1,
    partitionTimeoutSeconds: 0.001,
    maxAttempts: 2,
    concurrency: 1,
  });
  const summary = await runJob(job, { retryBaseMs: 10 });
  assert.equal(summary.status, 'failed');
  assert.equal(summary.failures[0]?.error.code, 'E_TIMEOUT');
  assert.equal(summary.failures[0]?.attempts, 2);
  assert.equal(summary.run.retries, 1);
});
