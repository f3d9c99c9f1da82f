import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  quantile,
  RESULT_STATS_COLUMNS,
  resultStatsCsv,
  resultStatsRows,
  sweepRowFromRecords,
} from '../../src/experiments/sweep-rows.js';
import { makeRecord, makeSweep } from './records.js';

test('quantile interpolates like numpy', () => {
  assert.equal(quantile([4, 1, 3, 2], 0.5), 2.5);
  assert.equal(quantile([1, 2, 3, 4, 5], 0.95), 4.8);
  assert.ok(Number.isNaN(quantile([], 0.5)));
});

test('a sweep row from records: wall clock from the records, quantiles of partition times', () => {
  // Three partitions of 1, 2 and 3 s back to back: the map spans 6 s.
  const recs = [1, 2, 3].map((s, i) =>
    makeRecord({
      partition: String(i + 1),
      items: 100,
      secondsPerItem: s / 100,
      readS: 0,
      startS: [0, 1, 3][i],
    }),
  );
  const row = sweepRowFromRecords(
    { dataGB: 1, partitionMB: 25, batchSize: 64, partitions: 3, engine: 'local' },
    1,
    recs,
  );
  assert.equal(row.mapSeconds, 6);
  assert.equal(row.itemsPerSecond, 50);
  assert.equal(row.p50PartitionSeconds, 2);
  assert.ok(Math.abs(row.p95PartitionSeconds - 2.9) < 1e-12);
  assert.equal(row.bytes, 300 * 20000);
});

test("result_stats.csv has the seeds' columns first, ours after, and a mean row per configuration", () => {
  const rows = makeSweep();
  const csv = resultStatsCsv(rows).trim().split('\n');
  const header = csv[0].split(',');
  assert.deepEqual(header.slice(0, 11), [
    'partition (MB)',
    'data (GB)',
    'run',
    'total_cpu_time (seconds)',
    'total_cpu_memory (MB)',
    'throughput_bps',
    'total_bits',
    's3_total_time',
    's3_avg_time',
    's3_min_time',
    's3_max_time',
  ]);
  for (const c of [
    'wall_clock_map (s)',
    'items_per_second',
    'p50_partition (s)',
    'p95_partition (s)',
    'peak_rss (MB)',
  ])
    assert.ok(header.includes(c), c);
  assert.equal(header.length, RESULT_STATS_COLUMNS.length);
  // 8 configurations x 2 runs + 8 mean rows.
  assert.equal(csv.length, 1 + 16 + 8);
  const col = (name: string) => header.indexOf(name);
  const body = csv.slice(1).map((l) => l.split(','));
  const means = body.filter((r) => r[col('run')] === 'mean');
  assert.equal(means.length, 8);
  // Each mean row follows its runs and averages them.
  for (let i = 0; i < body.length; i += 3) {
    const [r1, r2, m] = body.slice(i, i + 3);
    assert.deepEqual([r1[col('run')], r2[col('run')], m[col('run')]], ['1', '2', 'mean']);
    for (const c of ['wall_clock_map (s)', 'items_per_second', 'total_cpu_time (seconds)']) {
      const expected = (Number(r1[col(c)]) + Number(r2[col(c)])) / 2;
      assert.ok(Math.abs(Number(m[col(c)]) - expected) < 1e-3, `${c}: ${m[col(c)]} vs ${expected}`);
    }
    assert.equal(m[col('batch_size')], r1[col('batch_size')]);
  }
  // Sorted by partition size then data size, as the seeds sort.
  const keys = means.map((r) => [Number(r[0]), Number(r[1])]);
  assert.deepEqual(
    keys,
    [...keys].sort((a, b) => a[0] - b[0] || a[1] - b[1]),
  );
});

test("seeds' columns keep the seeds' aggregation: mean CPU time, summed memory and bps, bits of the bytes", () => {
  const rows = makeSweep().slice(0, 1);
  const recs = rows[0].records;
  const r = resultStatsRows(rows)[0];
  const meanCpu = recs.reduce((s, x) => s + x['total_cpu_time (seconds)'], 0) / recs.length;
  assert.equal(r['total_cpu_time (seconds)'], meanCpu);
  assert.equal(r['total_cpu_memory (MB)'], recs.length * recs[0]['total_cpu_memory (MB)']);
  assert.equal(r.total_bits, rows[0].bytes * 8);
  const s3 = resultStatsRows([
    {
      ...rows[0],
      records: [
        makeRecord({
          partition: '1',
          storage: {
            read: { requests: 1, retries: 0, bytes: 9, seconds: 0.25 },
            write: { requests: 2, retries: 0, bytes: 1, seconds: 0.5 },
          },
        }),
      ],
    },
  ])[0];
  assert.equal(s3.s3_total_time, 0.75);
  assert.equal(s3.s3_max_time, 0.75);
});
