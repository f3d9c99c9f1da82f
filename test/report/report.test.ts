import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import sharp from 'sharp';
import { configKey } from '../../src/report/sweep.js';
import { pngFont, renderSvg, svgToPng } from '../../src/report/render.js';
import { labelValue, markLabels, runOutput, sweepOutput } from './outputs.js';

const near = (a: number, b: number) => Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b));

/** A page that fetches nothing: no scripts, no external sources, only in-page references. */
function assertSelfContained(html: string): void {
  assert.doesNotMatch(html, /<script/i);
  assert.doesNotMatch(html, /<link/i);
  assert.doesNotMatch(html, /\b(?:src|href)\s*=\s*"(?!#)/i);
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

test('report of a finished run: figures of its records, tables, an honest bill, no network', async () => {
  const { dir, records, report } = await runOutput();
  assert.equal(report.html, path.join(dir, 'report.html'));
  const html = await readFile(report.html, 'utf8');
  assertSelfContained(html);
  assert.deepEqual(
    report.figures.map((f) => f.id),
    ['partition_time', 'partition_throughput'],
  );
  for (const f of report.figures) assert.ok(existsSync(f.svg) && existsSync(f.png), f.id);
  const throughput = await readFile(report.figures[1].svg, 'utf8');
  const bars = markLabels(throughput, 'rect');
  assert.equal(bars.length, records.length);
  const byPartition = new Map(records.map((r) => [r.partition, r.sample_persec]));
  for (const label of bars) {
    const partition = /Partition: (\w+)/.exec(label)![1];
    assert.ok(near(labelValue(label, 'Items/s'), byPartition.get(partition)!), label);
  }
  assert.equal(markLabels(await readFile(report.figures[0].svg, 'utf8'), 'rect').length, records.length * 4);
  assert.match(html, /summary\.json/);
  assert.match(html, /result_stats\.csv \(as written by the run\)/);
  assert.match(html, /In the seeds&#39; columns/);
  assert.match(html, /billed as if on Lambda at 10240 MB x86_64/);
  assert.match(html, /Lambda compute, map \(x86_64\)/);
});

test('report of a sweep: the five figures, one point per configuration at the mean of its runs', async () => {
  const { dir, rows, report } = await sweepOutput();
  const html = await readFile(path.join(dir, 'report.html'), 'utf8');
  assertSelfContained(html);
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
