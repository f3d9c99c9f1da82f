import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fastestBatchSizes, runnerFor, type SweepEvent } from '../../src/experiments/sweep.js';
import { partitionsForDataSize, planSweep, sweepSchedule } from '../../src/experiments/sweep-plan.js';
import { benchDataSizes } from '../../src/cli/commands/bench.js';
import { CaiError } from '../../src/errors.js';
import { configKey, RESULT_STATS_COLUMNS, type SweepRow } from '../../src/experiments/sweep-rows.js';
import { runSweepWithReport, type SweepReportResult } from '../../src/report/sweep-report.js';
import type { JobSummary } from '../../src/summarize/summarize.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { labelValue, markLabels } from '../report/outputs.js';
import { sweepData } from './sweep-run-fixture.js';
import { caiBench as runCaiBench } from './cai-bench.js';

const MiB = 2 ** 20;
const near = (a: number, b: number, tol = 1e-3) => Math.abs(a - b) <= tol * Math.max(1, Math.abs(b));

test("a GB amount becomes the seeds' partition counts: 12.6 GB is 517/259/173/130 partitions of 25-100 MB", () => {
  const counts = [25, 50, 75, 100].map(
    (mb) => partitionsForDataSize(new Array(600).fill(mb * MiB), { gb: 12.6 }).count,
  );
  assert.deepEqual(counts, [517, 259, 173, 130]);
  // 1 GB of 25 MB partitions: 41, the seeds' file_limit for 1 GB.
  assert.equal(partitionsForDataSize(new Array(600).fill(25 * MiB), { gb: 1 }).count, 41);
  assert.deepEqual(partitionsForDataSize([10, 20, 30], { gb: 1 }), { count: 3, clamped: true });
  assert.deepEqual(partitionsForDataSize([10, 20, 30], { partitions: 2 }), { count: 2, clamped: false });
  assert.deepEqual(partitionsForDataSize([10, 20, 30], { partitions: 9 }), { count: 3, clamped: true });
  assert.deepEqual(partitionsForDataSize([10, 20, 30], { all: true }), { count: 3, clamped: false });
});

test('runs are interleaved: every configuration once per repeat, each repeat starting elsewhere', () => {
  const order = sweepSchedule(['a', 'b', 'c', 'd'], 3);
  assert.equal(order.length, 12);
  for (let run = 1; run <= 3; run++) {
    const block = order.slice((run - 1) * 4, run * 4);
    assert.ok(block.every(([, r]) => r === run));
    assert.deepEqual(block.map(([c]) => c).sort(), ['a', 'b', 'c', 'd']);
  }
  assert.deepEqual(
    order.filter((_, i) => i % 4 === 0).map(([c]) => c),
    ['a', 'b', 'c'],
  );
});

test('planning labels inputs by mean partition MB, merges data sizes of the same count, refuses twins', () => {
  const inputs = [
    { input: 'p25/', partitionBytes: new Array(8).fill(25 * MiB) },
    { input: 'p50/', partitionBytes: new Array(4).fill(50 * MiB) },
  ];
  const { configs, warnings } = planSweep(
    inputs,
    [{ partitions: 2 }, { gb: 0.1 }, { all: true }],
    [32, 512],
    'local',
  );
  // p25: 2, 5 and 8 partitions; p50: 2, 3 (0.1 GB = 102.4 MB) and 4.
  assert.deepEqual(
    configs.map((c) => c.label),
    [
      ...['n2', 'n5', 'n8'].flatMap((n) => [`p25MB-${n}-b32`, `p25MB-${n}-b512`]),
      ...['n2', 'n3', 'n4'].flatMap((n) => [`p50MB-${n}-b32`, `p50MB-${n}-b512`]),
    ],
  );
  const c = configs.find((x) => x.label === 'p50MB-n3-b512')!.config;
  assert.deepEqual(c, {
    dataGB: Number(((150 * MiB) / 2 ** 30).toPrecision(4)),
    partitionMB: 50,
    batchSize: 512,
    partitions: 3,
    engine: 'local',
  });
  assert.deepEqual(warnings, []);
  const merged = planSweep([inputs[1]], [{ partitions: 4 }, { all: true }, { gb: 9 }], [32], 'local');
  assert.equal(merged.configs.length, 1);
  assert.equal(merged.warnings.length, 3, merged.warnings.join('\n'));
  assert.throws(
    () =>
      planSweep([inputs[0], { input: 'again/', partitionBytes: [25 * MiB] }], [{ all: true }], [32], 'local'),
    (e: unknown) => e instanceof CaiError && /same mean partition size \(25 MB\)/.test(e.message),
  );
});

test('flags: data sizes from --partitions and --data; an unknown engine names the valid ones', () => {
  assert.deepEqual(benchDataSizes('1,2,all', '512MB,1.5'), [
    { partitions: 1 },
    { partitions: 2 },
    { all: true },
    { gb: 0.5 },
    { gb: 1.5 },
  ]);
  assert.equal(benchDataSizes(undefined, undefined), undefined);
  assert.throws(() => benchDataSizes('0', undefined), CaiError);
  assert.equal(typeof runnerFor('aws'), 'function');
  assert.throws(
    () => runnerFor('ray'),
    (e: unknown) => e instanceof CaiError && /unknown engine "ray"; use local or aws/.test(e.message),
  );
});

let sweep: Promise<{ result: SweepReportResult; events: SweepEvent[]; out: string }> | undefined;

/** One real sweep on the local engine: 2 data sizes x 2 batch sizes x 2 runs of tiny data. */
function realSweep() {
  sweep ??= (async () => {
    const data = await sweepData();
    const out = path.join(data.dir, 'bench-api');
    const events: SweepEvent[] = [];
    const result = await runSweepWithReport({
      job: { ...data.job, output: out },
      output: out,
      dataSizes: [{ partitions: 1 }, { partitions: 2 }],
      batchSizes: [8, 16],
      runs: 2,
      retryBaseMs: 10,
      onProgress: (e) => events.push(e),
    });
    return { result, events, out };
  })();
  return sweep;
}

test('a real sweep: 8 runs, interleaved, each a job in its own folder, rows with the right configs', async () => {
  const data = await sweepData();
  const { result, events, out } = await realSweep();
  const sizes = await Promise.all(
    [1, 2, 3, 4].map(async (p) => (await stat(path.join(data.small, `${p}.pt`))).size),
  );
  const partitionMB = Number((sizes.reduce((s, b) => s + b, 0) / 4 / MiB).toFixed(2));
  const expected = [1, 2].flatMap((k) =>
    [8, 16].map((batchSize) => ({
      dataGB: Number((sizes.slice(0, k).reduce((s, b) => s + b, 0) / 2 ** 30).toPrecision(4)),
      partitionMB,
      batchSize,
      partitions: k,
      engine: 'local',
    })),
  );
  const saved = JSON.parse(await readFile(path.join(out, 'sweep.json'), 'utf8')) as SweepRow[];
  assert.equal(saved.length, 8);
  assert.deepEqual(result.failed, []);
  const byConfig = (rows: readonly SweepRow[]) =>
    [...new Set(rows.map((r) => JSON.stringify(r.config)))]
      .map((s) => JSON.parse(s))
      .sort((a, b) => a.partitions - b.partitions || a.batchSize - b.batchSize);
  assert.deepEqual(byConfig(saved), expected);
  // Interleaved: every run 1 finishes before any run 2 starts.
  assert.deepEqual(
    saved.map((r) => r.run),
    [1, 1, 1, 1, 2, 2, 2, 2],
  );
  assert.equal(events.filter((e) => e.type === 'row').length, 8);
  for (const row of saved) {
    const { partitions, batchSize } = row.config;
    assert.equal(row.items, partitions * 16);
    assert.equal(row.records.length, partitions);
    assert.deepEqual(
      row.records.map((r: PartitionRecord) => r.batch_size),
      new Array(partitions).fill(batchSize),
    );
    assert.equal(row.records[0].num_batches, 16 / batchSize);
    assert.ok(
      row.mapSeconds > 0 && row.wallSeconds >= row.mapSeconds,
      `${row.wallSeconds} >= ${row.mapSeconds}`,
    );
    assert.ok(near(row.itemsPerSecond, row.items / row.mapSeconds, 1e-9));
    // Peak RSS is the records' (the worker processes'), not the sweep's own process.
    assert.equal(row.peakRssMB, Math.max(...row.records.map((r) => r['total_cpu_memory (MB)'])));
    const dir = path.join(out, 'runs', `p${partitionMB}MB-n${partitions}-b${batchSize}-run${row.run}`);
    const combined = JSON.parse(
      await readFile(path.join(dir, 'combined_data.json'), 'utf8'),
    ) as PartitionRecord[];
    assert.deepEqual(
      combined.map((r) => r.started_at),
      row.records.map((r) => r.started_at),
    );
    // The row's times are the job's own wall clock (plan + map + summarize) and map, as its summary says.
    const summary = JSON.parse(await readFile(path.join(dir, 'summary.json'), 'utf8')) as JobSummary;
    assert.equal(row.wallSeconds, summary.run.wall_seconds);
    assert.equal(row.mapSeconds, summary.run.map_seconds);
  }
  const bench = JSON.parse(await readFile(path.join(out, 'bench.json'), 'utf8')) as { schedule: string[] };
  assert.equal(bench.schedule.length, 8);
  const comparisons = fastestBatchSizes(saved);
  assert.equal(comparisons.length, 2);
  for (const c of comparisons) {
    const best = Math.max(...c.batches.map((b) => b.itemsPerSecond));
    assert.equal(c.batches.find((b) => b.batchSize === c.fastest)!.itemsPerSecond, best);
  }
});

test("the sweep's result_stats.csv: the seeds' columns, a row per run, a mean row per configuration", async () => {
  const { out } = await realSweep();
  const [head, ...lines] = (await readFile(path.join(out, 'result_stats.csv'), 'utf8')).trim().split('\n');
  const header = head.split(',').map((c) => c.replace(/^"|"$/g, ''));
  assert.deepEqual(header, RESULT_STATS_COLUMNS.map(String));
  assert.deepEqual(header.slice(0, 3), ['partition (MB)', 'data (GB)', 'run']);
  const col = (name: string) => header.indexOf(name);
  const body = lines.map((l) => l.split(','));
  const means = body.filter((r) => r[col('run')] === 'mean');
  const runs = body.filter((r) => r[col('run')] !== 'mean');
  assert.equal(runs.length, 8);
  assert.equal(means.length, 4);
  const key = (r: string[]) =>
    [col('partition (MB)'), col('data (GB)'), col('batch_size')].map((i) => r[i]).join('|');
  for (const m of means) {
    const mine = runs.filter((r) => key(r) === key(m));
    assert.equal(mine.length, 2, key(m));
    for (const c of [
      'wall_clock_map (s)',
      'items_per_second',
      'p95_partition (s)',
      'peak_rss (MB)',
      'items',
      'total_cpu_time (seconds)',
    ]) {
      const expected = mine.reduce((s, r) => s + Number(r[col(c)]), 0) / mine.length;
      // The CSV rounds to 4 decimals, so the mean of rounded runs may differ in the last place.
      assert.ok(
        Math.abs(Number(m[col(c)]) - expected) <= 1e-4 + 1e-9 * expected,
        `${c}: ${m[col(c)]} vs ${expected}`,
      );
    }
  }
});

test('the sweep writes the five figures and report.html with one point per configuration', async () => {
  const { result, out } = await realSweep();
  const report = result.files.report!;
  assert.equal(report.html, path.join(out, 'report.html'));
  assert.deepEqual(
    report.figures.map((f) => f.id),
    [
      'inference_time',
      'throughput',
      'batch_varying_inference_time',
      'batch_varying_throughput',
      'time_per_item',
    ],
  );
  for (const f of report.figures) {
    assert.ok(existsSync(f.svg) && existsSync(f.png), f.id);
    assert.equal(markLabels(await readFile(f.svg, 'utf8'), 'symbol').length, 4, f.id);
  }
  // Throughput points are each configuration's mean items/s, recomputed here from the rows.
  const rows = result.rows;
  const expected = [...new Set(rows.map((r) => configKey(r.config)))]
    .map((k) => {
      const mine = rows.filter((r) => configKey(r.config) === k);
      return mine.reduce((s, r) => s + r.items / r.mapSeconds, 0) / mine.length;
    })
    .sort((a, b) => a - b);
  const got = markLabels(await readFile(report.figures[3].svg, 'utf8'), 'symbol')
    .map((l) => labelValue(l, 'Throughput (items/s)'))
    .sort((a, b) => a - b);
  expected.forEach((e, i) => assert.ok(near(got[i], e), `${got[i]} vs ${e}`));
  const html = await readFile(report.html, 'utf8');
  assert.equal(html.match(/<figure /g)?.length, 5);
  assert.equal(html.match(/data-marks="4"/g)?.length, 5);
  assert.equal(markLabels(html, 'symbol').length, 20);
  assert.match(html, /A sweep of 8 runs over 4 configurations/);
});

/** Runs `cai bench <args>` in this process, returning what it printed and the exit codes it set. */
const caiBench = (...args: string[]) => runCaiBench(args);

test('cai bench over two partition sizes prints the runs as they go and the fastest batch size, exits 0', async () => {
  const data = await sweepData();
  const out = path.join(data.dir, 'bench-cli');
  const { printed, codes } = await caiBench(
    '--input-dirs',
    `${data.small},${data.large}`,
    '--model',
    data.model,
    '--output',
    out,
    '--inputs',
    'image=0,magnitude=1',
    '--label',
    '2',
    '-c',
    '1',
    '-t',
    '1',
    '--partitions',
    '2,all',
    '--batch-sizes',
    '32',
    '--runs',
    '1',
  );
  assert.deepEqual(codes, [], 'exit code 0: no failed run');
  const rows = JSON.parse(await readFile(path.join(out, 'sweep.json'), 'utf8')) as SweepRow[];
  // small: 2 and 4 partitions; large: 2 partitions ("all" is the same 2: run once, with a warning).
  assert.deepEqual(
    rows.map((r) => [r.config.partitions, r.items]).sort((a, b) => a[1] - b[1] || a[0] - b[0]),
    [
      [2, 32],
      [2, 64],
      [4, 64],
    ],
  );
  assert.equal(new Set(rows.map((r) => r.config.partitionMB)).size, 2);
  assert.match(printed, /3 configurations x 1 run = 3 jobs, interleaved/);
  assert.match(printed, /warning: .*large: all is 2 partitions, already in the sweep; run once/);
  const live = printed.split('\n').filter((l) => /^\s*\d\/3 +p[\d.]+MB-n\d-b32 /.test(l));
  assert.equal(live.length, 3, printed);
  assert.match(printed, /Fastest batch size per data size/);
  assert.match(printed, /report .*report\.html \(5 figures/);
  assert.ok(existsSync(path.join(out, 'report.html')));
});

test('cai bench: a run whose job fails is listed, left out of sweep.json, and exits 1; bad flags fail before any run', async () => {
  const data = await sweepData();
  const broken = path.join(data.dir, 'broken');
  await mkdir(broken, { recursive: true });
  await copyFile(path.join(data.small, '1.pt'), path.join(broken, '1.pt'));
  // Same size as a real partition, so the plan sees two equal partitions; the bytes are not a zip.
  await writeFile(path.join(broken, '2.pt'), Buffer.alloc((await stat(path.join(broken, '1.pt'))).size, 7));
  const out = path.join(data.dir, 'bench-broken');
  const common = [
    '--model',
    data.model,
    '--output',
    out,
    '--inputs',
    'image=0,magnitude=1',
    '-c',
    '1',
    '-t',
    '1',
  ];
  const { printed, codes } = await caiBench(
    '--input',
    broken,
    ...common,
    '--partitions',
    '1,2',
    '--batch-sizes',
    '16',
    '--runs',
    '1',
    '--max-attempts',
    '1',
    '--no-report',
  );
  assert.deepEqual(codes, [1]);
  const rows = JSON.parse(await readFile(path.join(out, 'sweep.json'), 'utf8')) as SweepRow[];
  assert.deepEqual(
    rows.map((r) => r.config.partitions),
    [1],
  );
  assert.match(printed, /\d\/2 p[\d.]+MB-n2-b16 run 1: FAILED, job failed \(2: /);
  assert.match(printed, /failed: p[\d.]+MB-n2-b16 run 1/);
  assert.ok(!existsSync(path.join(out, 'report.html')), '--no-report');
  await assert.rejects(
    caiBench('--input', data.small, ...common, '--batch-size', 'auto'),
    (e: unknown) => e instanceof CaiError && /"auto" is not one/.test(e.message),
  );
  await assert.rejects(
    caiBench('--input', data.small, '--input-dirs', data.large, ...common),
    (e: unknown) => e instanceof CaiError && /not both/.test(e.message),
  );
  await assert.rejects(
    caiBench('--input-dirs', data.large, '--partition-sizes', '1MB', ...common),
    (e: unknown) => e instanceof CaiError && /not both/.test(e.message),
  );
  // An output the sweep cannot write its report to is refused before any re-partitioning.
  const notLocal = 's3://nowhere-cai-test/sweep';
  await assert.rejects(
    caiBench('--input', data.small, '--partition-sizes', '1MB', ...common, '--output', notLocal),
    (e: unknown) => e instanceof CaiError && /local folder/.test(e.message),
  );
  await assert.rejects(
    caiBench('--input', data.small, '--partition-sizes', '25 parsecs', ...common),
    (e: unknown) => e instanceof CaiError && /"25 parsecs" is not a size/.test(e.message),
  );
});
