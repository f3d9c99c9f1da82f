import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { configKey } from '../../src/experiments/sweep-rows.js';
import { pngFont, renderSvg, svgToPng } from '../../src/report/render.js';
import { allPredictions } from '../helpers/demo-fixture.js';
import { labelValue, markLabels, runOutput, sweepOutput } from './outputs.js';

const near = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

/**
 * A page that fetches nothing from elsewhere: no scripts, no external sources, only in-page references and
 * the gallery's thumbnails beside it (each of which exists).
 */
function assertSelfContained(html: string, dir: string): void {
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /<link/i);
  assert.doesNotMatch(html, /\b(?:src|href)\s*=\s*"(?!#|gallery\/[\w.-]+\.png")/i);
  for (const m of html.matchAll(/src="(gallery\/[^"]+)"/g)) assert.ok(existsSync(path.join(dir, m[1])), m[1]);
  assert.doesNotMatch(html, /url\((?!#)/i);
  assert.match(html, /Content-Security-Policy" content="default-src 'none'/);
}

test('PNG figures have text: resvg draws the axis titles with the DejaVu font', async () => {
  assert.ok(pngFont(), 'CI must install fonts-dejavu-core');
  const svg =
    '<svg xmlns="http://www.w3.org/2000/svg" width="200" height="40"><text x="10" y="28" font-family="sans-serif" font-size="20">Batch size</text></svg>';
  const { data, info } = await sharp(svgToPng(svg, 1)).raw().toBuffer({ resolveWithObject: true });
  let dark = 0;
  for (let i = 0; i < data.length; i += info.channels) if (data[i] < 128) dark++;
  assert.ok(dark > 100, `only ${dark} dark pixels: the text did not render`);
});

test('renderSvg draws one mark per data point', async () => {
  const svg = await renderSvg({
    data: { values: [1, 2, 3, 4, 5].map((x) => ({ x, y: x * x })) },
    mark: 'point',
    encoding: { x: { field: 'x', type: 'quantitative' }, y: { field: 'y', type: 'quantitative' } },
  });
  assert.equal(markLabels(svg, 'symbol').length, 5);
  assert.deepEqual(
    markLabels(svg, 'symbol').map((l) => labelValue(l, 'y')),
    [1, 4, 9, 16, 25],
  );
});

test('report of a finished run: how good and how fast first, accuracy figures, no Lambda bill, no network', async () => {
  const { dir, records, report } = await runOutput();
  assert.equal(report.html, path.join(dir, 'report.html'));
  const html = await readFile(report.html, 'utf8');
  assertSelfContained(html, dir);
  assert.deepEqual(
    report.figures.map((f) => f.id),
    [
      'redshift_histogram',
      'pred_vs_true',
      'dz_histogram',
      'timeline',
      'partition_time',
      'partition_throughput',
    ],
  );
  for (const f of report.figures) assert.ok(existsSync(f.svg) && existsSync(f.png), f.id);
  const figure = (id: string) => readFile(report.figures.find((f) => f.id === id)!.svg, 'utf8');

  // The metrics table comes before the figures and shows the summary's own numbers.
  const summary = JSON.parse(await readFile(path.join(dir, 'summary.json'), 'utf8')) as {
    items: number;
    metrics: { mae: number; nmad: number };
  };
  const good = html.indexOf('How good');
  assert.ok(
    good > 0 &&
      good < html.indexOf('How fast') &&
      html.indexOf('How fast') < html.indexOf('<h2 id="predictions">'),
  );
  assert.ok(html.includes(summary.metrics.mae.toFixed(5)) && html.includes(summary.metrics.nmad.toFixed(5)));

  // One point per item, at its prediction and label; the dz histogram counts every item once.
  const rows = await allPredictions(dir);
  const points = markLabels(await figure('pred_vs_true'), 'symbol');
  assert.equal(points.length, summary.items);
  const truth = new Set(
    rows.map((r) => `${(r.label as number).toPrecision(4)}:${(r.redshift as number).toPrecision(4)}`),
  );
  for (const l of points.slice(0, 20)) {
    const key = `${labelValue(l, 'True value (label)').toPrecision(4)}:${labelValue(l, 'Predicted (redshift)').toPrecision(4)}`;
    assert.ok(truth.has(key), `${l} is no item`);
  }
  const bins = markLabels(await figure('dz_histogram'), 'rect');
  assert.equal(bins.length, 40);
  assert.equal(
    bins.reduce((s, l) => s + labelValue(l, 'Items'), 0),
    summary.items,
  );

  const throughput = markLabels(await figure('partition_throughput'), 'rect');
  assert.equal(throughput.length, records.length);
  const byPartition = new Map(records.map((r) => [r.partition, r.sample_persec]));
  for (const label of throughput) {
    const partition = /Partition: (\w+)/.exec(label)![1];
    assert.ok(near(labelValue(label, 'Items/s'), byPartition.get(partition)!), label);
  }
  // Each stage's own time side by side with the partition's wall time, not stacked into a longer bar.
  const stages = markLabels(await figure('partition_time'), 'rect');
  assert.equal(stages.length, records.length * 5);
  for (const r of records) {
    const mine = stages.filter((l) => new RegExp(`Partition: ${r.partition}\\b`).test(l));
    const bar = (stage: string) =>
      labelValue(
        mine.find((l) => l.includes(`Stage: ${stage}`))!,
        'Seconds',
      );
    assert.ok(near(bar('wall (whole partition)'), Number(r.timings.total.toFixed(4))), r.partition);
    assert.ok(near(bar('inference'), Number(r.timings.inference.toFixed(4))), r.partition);
    assert.ok(near(bar('decode'), Number(r.timings.decode.toFixed(4))), r.partition);
  }
  assert.match(html, /summary\.json/);
  assert.match(html, /result_stats\.csv \(as written by the run\)/);
  assert.match(html, /In the seeds&#39; columns/);
  assert.match(html, /no Lambda bill/);
  assert.doesNotMatch(html, /billed as if on Lambda/);
});

test('report of a sweep: the five figures, one point per configuration at the mean of its runs', async () => {
  const { dir, rows, report } = await sweepOutput();
  const html = await readFile(path.join(dir, 'report.html'), 'utf8');
  assertSelfContained(html, dir);
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
  const configs = new Set(rows.map((r) => configKey(r.config)));
  // Throughput points are the mean items/s of each configuration's runs, computed here independently.
  const expected = [...configs].map((k) => {
    const runs = rows.filter((r) => configKey(r.config) === k);
    return runs.reduce((s, r) => s + r.items / r.mapSeconds, 0) / runs.length;
  });
  const points = markLabels(await readFile(report.figures[1].svg, 'utf8'), 'symbol');
  assert.equal(points.length, configs.size);
  const got = points.map((l) => labelValue(l, 'Throughput (items/s)')).sort((a, b) => a - b);
  expected.sort((a, b) => a - b).forEach((e, i) => assert.ok(near(got[i], e), `${got[i]} vs ${e}`));
  for (const f of report.figures)
    assert.equal(markLabels(await readFile(f.svg, 'utf8'), 'symbol').length, configs.size, f.id);
  // The sweep folder gets its result_stats.csv with mean rows; the cost table has one row per configuration.
  const csv = await readFile(path.join(dir, 'result_stats.csv'), 'utf8');
  assert.equal(
    csv
      .trim()
      .split('\n')
      .filter((l) => l.split(',')[2] === 'mean').length,
    configs.size,
  );
  assert.match(html, /Cost per configuration/);
});
