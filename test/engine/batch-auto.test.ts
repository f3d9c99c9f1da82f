import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { makeGalaxies } from '../../src/demo/galaxies.js';
import { encodePtDataset } from '../../src/formats/writers/pt-writer.js';
import { runJob } from '../../src/run/run.js';
import { parseJobSpec } from '../../src/job/spec.js';
import { ASTROMAE_TINY, buildAstroMAE } from '../../src/model/zoo/astromae.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { allPredictions } from '../helpers/demo-fixture.js';

test('--batch-size auto measures candidate sizes on real batches and predicts exactly as a fixed size does', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-auto-'));
  const data = path.join(dir, 'data');
  const { mkdir } = await import('node:fs/promises');
  await mkdir(data);
  for (const [p, n] of [
    [1, 700],
    [2, 90],
  ] as const) {
    const g = makeGalaxies(n, p);
    await writeFile(path.join(data, `${p}.pt`), encodePtDataset([g.images, g.magnitudes]));
  }
  const model = path.join(dir, 'tiny.onnx');
  await writeFile(model, buildAstroMAE(ASTROMAE_TINY));
  const base = { input: data, model, concurrency: 1, threads: 1, predictionsFormat: 'jsonl' as const };

  const auto = parseJobSpec({ ...base, output: path.join(dir, 'auto'), batchSize: 'auto' });
  const fixed = parseJobSpec({ ...base, output: path.join(dir, 'fixed'), batchSize: 100 });
  assert.equal((await runJob(auto)).status, 'succeeded');
  assert.equal((await runJob(fixed)).status, 'succeeded');

  const first = JSON.parse(
    await readFile(path.join(dir, 'auto', 'results', '1.json'), 'utf8'),
  ) as PartitionRecord;
  // 700 items: 32 + 64 + 128 + 256 are tried, then the 512 batch only has 220 rows left.
  assert.deepEqual(
    Object.keys(first.batch_size_auto?.seconds_per_item ?? {})
      .map(Number)
      .sort((a, b) => a - b),
    [32, 64, 128, 256],
  );
  assert.ok([32, 64, 128, 256].includes(first.batch_size));
  const second = JSON.parse(
    await readFile(path.join(dir, 'auto', 'results', '2.json'), 'utf8'),
  ) as PartitionRecord;
  assert.equal(second.batch_size, first.batch_size, 'later partitions of the worker reuse the choice');
  assert.equal(second.num_batches, Math.ceil(90 / second.batch_size));

  const a = await allPredictions(path.join(dir, 'auto'), 'jsonl');
  const f = await allPredictions(path.join(dir, 'fixed'), 'jsonl');
  assert.equal(a.length, 790);
  const key = (r: Record<string, unknown>) => `${r.partition}:${r.index}`;
  const byKey = new Map(f.map((r) => [key(r), r.redshift as number]));
  for (const r of a) {
    const want = byKey.get(key(r)) as number;
    assert.ok(Math.abs((r.redshift as number) - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${key(r)}`);
  }
});
