// `cai run` end to end over the inputs users have: a folder of JPEGs (and other images) with the imagenet
// preset, a folder of FITS cubes, a Parquet file in the Ray benchmark's layout. The trivial model predicts
// each item's mean, so every prediction is checked against the source's own decoding; items that fail
// to decode get a row with their id and reason, and the summary counts them.
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { decodeImage, resolvePreprocess, toRow } from '../../src/formats/image/index.js';
import { runJob } from '../../src/run/run.js';
import { parseJobSpec, type JobSpecInput } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { allPredictions } from '../helpers/demo-fixture.js';
import { expectedNpy, fixture, FIXTURES } from './helpers.js';

const mean = (a: ArrayLike<number>) => Array.from(a).reduce((s, v) => s + v, 0) / a.length;

async function run(job: Omit<JobSpecInput, 'model' | 'output'>, shape: (string | number)[]) {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-run-src-'));
  const model = path.join(dir, 'trivial.onnx');
  await writeFile(model, buildTrivial({ inputName: 'image', shape }));
  const output = path.join(dir, 'out');
  const summary = await runJob(
    parseJobSpec({ ...job, model, output, concurrency: 2, threads: 1, batchSize: 4 }),
    { retryBaseMs: 10 },
  );
  const rows = await allPredictions(output);
  return { summary, byId: new Map(rows.map((r) => [String(r.id), r])) };
}

test('cai run over a folder of JPEGs and other images with the imagenet preset', async () => {
  const { summary, byId } = await run(
    { input: `${FIXTURES}images/photos`, preset: 'imagenet', partitionItems: 5 },
    ['N', 3, 224, 224],
  );
  assert.equal(summary.status, 'succeeded');
  assert.equal(summary.items, 11);
  assert.equal(summary.failed_items, 2);
  const p = resolvePreprocess({ preset: 'imagenet' });
  for (const name of ['a_landscape.jpg', 'b_portrait.jpg', 'e_gray.png', 'h_anim.gif']) {
    const row = toRow(await decodeImage(fixture(`images/photos/${name}`), p, name), p);
    const got = Number(byId.get(name)?.mean);
    assert.ok(Math.abs(got - mean(row.data as Float32Array)) < 1e-4, `${name}: ${got}`);
    assert.equal(byId.get(name)?.error ?? null, null);
  }
  for (const name of ['x_truncated.jpg', 'y_not_an_image.png']) {
    assert.match(String(byId.get(name)?.error), new RegExp(`${name.replace('.', '\\.')}: cannot be decoded`));
  }
});

test('cai run over a folder of FITS cubes: one item per cube, a NaN cube failed unless nan is set', async () => {
  const strict = await run({ input: `${FIXTURES}fits/cubes` }, ['N', 5, 8, 8]);
  assert.equal(strict.summary.items, 4);
  assert.equal(strict.summary.failed_items, 1);
  assert.match(String(strict.byId.get('c3.fits')?.error), /NaN.*--nan 0/);
  const zero = await run({ input: `${FIXTURES}fits/cubes`, nan: 0 }, ['N', 5, 8, 8]);
  assert.equal(zero.summary.failed_items, 0);
  for (const k of [0, 1, 2, 3]) {
    const cube = Array.from(expectedNpy(`fits/expected/cubes__c${k}.fits.npy`).data as Float32Array, (v) =>
      Number.isNaN(v) ? 0 : v,
    );
    const got = Number(zero.byId.get(`c${k}.fits`)?.mean);
    assert.ok(Math.abs(got - mean(cube)) < 1e-5, `c${k}: ${got} vs ${mean(cube)}`);
  }
});

test('cai run over a Parquet file in the Ray benchmark layout with the imagenet preset', async () => {
  const input = await mkdtemp(path.join(os.tmpdir(), 'cai-run-ray-'));
  await writeFile(path.join(input, 'ray.parquet'), fixture('parquet/ray.parquet'));
  const { summary, byId } = await run({ input, imageShape: [16, 20, 3], preset: 'imagenet' }, [
    'N',
    3,
    224,
    224,
  ]);
  assert.equal(summary.status, 'succeeded');
  assert.equal(summary.items, 12);
  assert.equal(summary.failed_items, 0);
  assert.deepEqual([...byId.keys()].sort(), Array.from({ length: 12 }, (_, i) => `ray.parquet#${i}`).sort());
  const pixels = expectedNpy('images/raw/ray_pixels.npy').data as Uint8Array;
  const p = resolvePreprocess({ preset: 'imagenet' });
  for (const i of [0, 7, 11]) {
    const raw = { data: pixels.subarray(i * 960, (i + 1) * 960), width: 20, height: 16, channels: 3 };
    const want = mean(toRow(await decodeImage(raw, p, `#${i}`), p).data as Float32Array);
    assert.ok(Math.abs(Number(byId.get(`ray.parquet#${i}`)?.mean) - want) < 1e-4, `row ${i}`);
  }
});

test('cai run splits a big Parquet file into row-range partitions of partitionItems, each row predicted once', async () => {
  const input = await mkdtemp(path.join(os.tmpdir(), 'cai-run-ray-split-'));
  await writeFile(path.join(input, 'ray.parquet'), fixture('parquet/ray.parquet'));
  const job = { input, imageShape: [16, 20, 3], preset: 'imagenet' as const, partitionItems: 5 };
  const whole = await run({ input, imageShape: [16, 20, 3], preset: 'imagenet' }, ['N', 3, 224, 224]);
  const { summary, byId } = await run(job, ['N', 3, 224, 224]);
  assert.equal(summary.status, 'succeeded');
  assert.equal(summary.partitions.planned, 3, '12 rows in partitions of 5, 5 and 2');
  assert.equal(summary.items, 12);
  assert.equal(byId.size, 12, 'every row once, none twice');
  for (const [id, row] of whole.byId) assert.equal(byId.get(id)?.mean, row.mean, id);
});
