import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { digestPredictions } from '../../src/report/digest.js';
import { galleryGroups } from '../../src/report/gallery.js';
import { predictionViews } from '../../src/report/prediction-figures.js';
import { renderSvg } from '../../src/report/render.js';
import { StreamingHistogram } from '../../src/report/histogram.js';
import { timelineFigure } from '../../src/report/timeline.js';
import type { PartitionRecord } from '../../src/worker/record.js';
import { shortNames } from '../../src/report/short-names.js';
import { itemRgb, zscale } from '../../src/report/stretch.js';
import { Random } from '../../src/tensor/random.js';
import { tensor } from '../../src/tensor/tensor.js';
import { MAX_SPANS_PER_STAGE, SpanCollector } from '../../src/worker/spans.js';

test('the streaming histogram counts every value exactly, whatever the range, in fixed memory', () => {
  const rng = new Random(3);
  const values = Array.from({ length: 20_000 }, (_, i) =>
    i % 1000 === 0 ? 1e6 * rng.normal() : rng.normal() * 0.01 + 0.3,
  );
  const h = new StreamingHistogram();
  for (const v of values) h.add(v);
  h.add(NaN);
  assert.equal(h.count, values.length);
  assert.equal(h.nonFinite, 1);
  assert.equal(h.min, Math.min(...values));
  assert.equal(h.max, Math.max(...values));
  const mean = values.reduce((s, v) => s + v, 0) / values.length;
  assert.ok(Math.abs(h.mean - mean) < 1e-6 * Math.abs(mean) + 1e-9);
  // Outliers at 1e6 make the bins too coarse for the bulk at 0.3: the bars count the uniform sample.
  assert.ok(h.barsFromSample);
  const bars = h.bars(40);
  assert.equal(
    bars.reduce((s, b) => s + b.count, 0),
    10_000,
  );
  assert.ok(bars[0].from > 0.2 && bars[bars.length - 1].to < 0.4, 'the bars span the bulk');
  // Without outliers, every value is counted in the bars.
  const plain = new StreamingHistogram();
  for (const v of values.filter((_, i) => i % 1000 !== 0)) plain.add(v);
  assert.ok(!plain.barsFromSample);
  assert.equal(
    plain.bars(40).reduce((s, b) => s + b.count, 0),
    plain.count,
  );
  // The central bars cover the bulk at 0.3 despite outliers at 1e6.
  const sorted = [...values].sort((a, b) => a - b);
  const median = sorted[values.length / 2];
  assert.ok(Math.abs(h.quantile(0.5) - median) < 0.01, `${h.quantile(0.5)} vs ${median}`);
});

test('short names drop the shared prefix and suffix at separators, stay distinct, keep whole numbers', () => {
  assert.deepEqual(
    shortNames(['Galaxy10_DECals_small__rows_0-32', 'Galaxy10_DECals_small__rows_32-64']).names,
    ['0-32', '32-64'],
  );
  assert.deepEqual(shortNames(['part10', 'part11']).names, ['part10', 'part11']);
  assert.deepEqual(shortNames(['a/x.fits', 'a/y.fits']).names, ['x', 'y']);
  assert.deepEqual(shortNames(['only_one']).names, ['only_one']);
  const long = ['survey_dr10_south_brick_0001_band_grz_v2', 'survey_dr10_north_brick_0001_band_grz_v2'];
  const s = shortNames(long).names;
  assert.equal(new Set(s).size, 2);
  for (const n of s) assert.ok(n.length <= 22, n);
});

test('stage spans: touching intervals merge, at most 64 per stage, never shorter than the stage', () => {
  const s = new SpanCollector(1000);
  let busy = 0;
  for (let i = 0; i < 500; i++) {
    const start = 1000 + i * 10;
    s.add(start, start + 4);
    busy += 4;
  }
  const spans = s.spans();
  assert.ok(spans.length <= MAX_SPANS_PER_STAGE);
  assert.equal(spans[0][0], 0);
  assert.equal(spans[spans.length - 1][1], 4.994);
  assert.ok(spans.reduce((t, [a, b]) => t + b - a, 0) >= busy / 1000 - 1e-9);
  const touching = new SpanCollector(0);
  touching.add(0, 10);
  touching.add(10, 20);
  assert.deepEqual(touching.spans(), [[0, 0.02]]);
});

test('cutouts are drawn as astronomers do: Lupton RGB of i, r, g for five bands, zscale grey for one', () => {
  const [h, w] = [16, 16];
  const five = new Float32Array(5 * h * w);
  // A red source (bright in band 3 = i) on a flat sky of 10.
  for (let b = 0; b < 5; b++)
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        five[(b * h + y) * w + x] = 10 + (x === 8 && y === 8 ? (b === 3 ? 100 : 10) : 0);
  const rgb = itemRgb(tensor('float32', [1, 5, h, w], five), 0);
  assert.ok(rgb && rgb.how.includes('Lupton'));
  const centre = (8 * w + 8) * 3;
  assert.ok(
    rgb.data[centre] > rgb.data[centre + 1] && rgb.data[centre] > rgb.data[centre + 2],
    'the source is red',
  );
  assert.equal(rgb.data[0] + rgb.data[1] + rgb.data[2], 0, 'the sky is black');
  const one = Float32Array.from({ length: h * w }, (_, i) => i % 7);
  const [z1, z2] = zscale(Float64Array.from(one));
  assert.ok(z1 >= 0 && z2 <= 6 && z2 > z1);
  assert.ok(itemRgb(tensor('float32', [1, h, w], one), 0)?.how.includes('zscale'));
  assert.equal(itemRgb(tensor('float32', [1, 5], new Float32Array(5)), 0), undefined, 'a vector is no image');
});

test('the timeline marks a retried partition in red and a failed one at the time its last try ended', () => {
  const base = Date.parse('2026-01-01T00:00:00Z');
  const at = (s: number) => new Date(base + s * 1000).toISOString();
  const record = (partition: string, pid: number, from: number, to: number, attempt: number) =>
    ({
      status: 'ok',
      partition,
      attempt,
      started_at: at(from),
      finished_at: at(to),
      worker: { pid, host: 'h' },
      cold: false,
      model_load_s: 0,
      spans: { inference: [[0.1, to - from - 0.1]] },
    }) as unknown as PartitionRecord;
  const records = [record('survey_a_1', 1, 1, 3, 1), record('survey_a_2', 2, 1, 6, 2)];
  const t = timelineFigure(records, new Date(base), [
    { partition: 'survey_a_3', attempts: 3, code: 'E_CORRUPT', finished_at: at(5) },
  ]);
  assert.ok(t);
  assert.deepEqual(
    t.bars.map((b) => [b.partition, b.lane, b.start, b.end, b.attempt]),
    [
      ['survey_a_1', 'h pid 1', 1, 3, 1],
      ['survey_a_2', 'h pid 2', 1, 6, 2],
    ],
  );
  const layers = (t.figure.spec as unknown as { layer: { data: { values: Record<string, unknown>[] } }[] })
    .layer;
  assert.deepEqual(
    layers[0].data.values.map((v) => [v.partition, v.retried]),
    [
      ['1', 'first try'],
      ['2', 'retried (try 2)'],
    ],
  );
  const failed = layers[layers.length - 1].data.values;
  assert.deepEqual(failed, [
    { partition: 'survey_a_3', 'at (s)': 5, error: 'E_CORRUPT after 3 tries', mid: 2.5 },
  ]);
  assert.equal(t.figure.marks, 2 + 2, 'two bars, one inference span each');
});

test('an embedding output is summarised as vectors: per-dimension means and the norms of every item', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-digest-'));
  try {
    await mkdir(path.join(dir, 'predictions'));
    const rng = new Random(5);
    const vectors = Array.from({ length: 50 }, () => Array.from({ length: 8 }, (_, d) => d + rng.normal()));
    const lines = vectors.map((v, i) => JSON.stringify({ partition: '1', index: i, embedding: v }));
    await writeFile(path.join(dir, 'predictions', '1.jsonl'), `${lines.join('\n')}\n`);
    const d = await digestPredictions(dir);
    const o = d.outputs[0];
    assert.equal(o.kind, 'vector');
    assert.equal(o.items, 50);
    for (let j = 0; j < 8; j++) {
      const mean = vectors.reduce((s, v) => s + v[j], 0) / 50;
      assert.ok(Math.abs(o.dimMean[j] - mean) < 1e-9, `dimension ${j}`);
    }
    assert.equal(o.norm.count, 50);
    const view = predictionViews(d)[0];
    assert.deepEqual(
      view.figures.map((f) => f.id),
      ['embedding_dimensions', 'embedding_norm'],
    );
    for (const f of view.figures) assert.ok((await renderSvg(f.spec)).includes('<svg'), f.id);
    assert.deepEqual(galleryGroups(d), [], 'vectors get no gallery');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
