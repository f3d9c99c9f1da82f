import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { test } from 'node:test';
import type { PartitionManifest } from '../../src/formats/partition/index.js';
import type { SweepRow } from '../../src/experiments/sweep-rows.js';
import { sweepData } from './sweep-run-fixture.js';
import { caiBench as runCaiBench } from './cai-bench.js';

// One galaxy of a CAI partition: a 5 x 32 x 32 float32 image, 5 float64 magnitudes, a float32 label.
const ITEM_BYTES = 5 * 32 * 32 * 4 + 5 * 8 + 4;

async function caiBench(...args: string[]): Promise<string> {
  const { printed, codes } = await runCaiBench(args);
  assert.deepEqual(codes, [], `cai bench exited ${codes.join(', ')}: ${printed}`);
  return printed;
}

test('--partition-sizes re-partitions one source per size with cai partition, sweeps each, reuses them next time', async () => {
  const data = await sweepData();
  const out = path.join(data.dir, 'bench-sizes');
  // 4 partitions x 16 galaxies re-cut into partitions of 10 and of 24 galaxies.
  const sizes = `${10 * ITEM_BYTES}B,${24 * ITEM_BYTES}B`;
  const args = [
    '--input',
    data.small,
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
    '--partition-sizes',
    sizes,
    '--batch-sizes',
    '16',
    '--runs',
    '1',
    '--predictions-format',
    'jsonl',
    '--no-report',
  ];
  const first = await caiBench(...args);
  assert.equal((first.match(/^partitioning /gm) ?? []).length, 2, first);

  const folders = (await readdir(path.join(out, 'partitions'))).sort();
  assert.deepEqual(folders, [`${10 * ITEM_BYTES}B`, `${24 * ITEM_BYTES}B`].sort());
  const manifests = await Promise.all(
    [10, 24].map(
      async (n) =>
        JSON.parse(
          await readFile(path.join(out, 'partitions', `${n * ITEM_BYTES}B`, 'manifest.json'), 'utf8'),
        ) as PartitionManifest,
    ),
  );
  assert.deepEqual(
    manifests.map((m) => m.partitions.map((p) => p.items)),
    [
      [10, 10, 10, 10, 10, 10, 4],
      [24, 24, 16],
    ],
  );

  const rows = JSON.parse(await readFile(path.join(out, 'sweep.json'), 'utf8')) as SweepRow[];
  assert.equal(rows.length, 2);
  // Each size's run saw every galaxy once, and the metrics of its predictions are those of the source.
  assert.deepEqual(
    rows.map((r) => r.items),
    [64, 64],
  );
  assert.deepEqual(rows.map((r) => r.config.partitions).sort(), [3, 7]);
  const summaries = await Promise.all(
    (await readdir(path.join(out, 'runs'))).map(
      async (d) =>
        JSON.parse(await readFile(path.join(out, 'runs', d, 'summary.json'), 'utf8')) as {
          metrics?: { mae: number };
        },
    ),
  );
  const maes = summaries.map((s) => s.metrics?.mae);
  assert.equal(maes.length, 2);
  assert.ok(maes[0] !== undefined && Math.abs(maes[0] - (maes[1] as number)) < 1e-6, `MAE ${maes}`);

  const second = await caiBench(...args);
  assert.equal((second.match(/^reusing /gm) ?? []).length, 2, second);
  assert.doesNotMatch(second, /^partitioning /m);
});
