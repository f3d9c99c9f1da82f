import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { confusionCounts, confusionSection } from '../../src/report/confusion.js';
import { classificationRun, matrixCells, tableRows } from './classification.js';

/** Counts of [true, predicted] pairs, keyed "t,p". */
function countPairs(pairs: readonly [number, number][]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const [t, p] of pairs) counts.set(`${t},${p}`, (counts.get(`${t},${p}`) ?? 0) + 1);
  return counts;
}

const runs: { remove(): Promise<void> }[] = [];
after(() => Promise.all(runs.map((r) => r.remove())));

const pct = (v: number, digits = 1) => `${(v * 100).toFixed(digits)}%`;

test('report of a 5-class run: the confusion matrix under "How good", every cell the count read back from Parquet', async () => {
  const run = await classificationRun({
    classes: 5,
    partitions: 3,
    itemsPerPartition: 200,
    format: 'parquet',
    badLabelEvery: 97,
    seed: 11,
  });
  runs.push(run);
  const { html } = run;
  const good = html.indexOf('How good');
  const matrix = html.indexOf('Confusion matrix');
  assert.ok(
    good > 0 && good < matrix && matrix < html.indexOf('How fast'),
    'matrix between quality and speed',
  );

  const counted = run.pairs.filter(([t]) => t < 5);
  const outside = run.pairs.length - counted.length;
  assert.equal(outside, Math.ceil(600 / 97), 'the fixture has its wrong labels');
  const expected = countPairs(counted);
  const cells = matrixCells(html);
  assert.equal(cells.size, 25);
  for (let t = 0; t < 5; t++)
    for (let p = 0; p < 5; p++)
      assert.equal(
        cells.get(`${t},${p}`),
        String(expected.get(`${t},${p}`) ?? 0),
        `true ${t} predicted ${p}`,
      );
  // The fixture makes real mistakes, and the most common one is an even class taken for the next.
  const offDiagonal = [...expected].filter(([k]) => k.split(',')[0] !== k.split(',')[1]);
  assert.ok(offDiagonal.length > 5);
  const worst = offDiagonal
    .sort((a, b) => b[1] - a[1])[0][0]
    .split(',')
    .map(Number);
  assert.equal(worst[1], (worst[0] + 1) % 5, `most confused pair ${worst.join(' -> ')}`);

  // Per row: items and recall; last row: precision per predicted class.
  const rows = tableRows(html, 'Confusion matrix');
  assert.equal(rows.length, 6);
  for (let t = 0; t < 5; t++) {
    const items = counted.filter(([c]) => c === t).length;
    assert.deepEqual(rows[t].slice(-2), [String(items), pct((expected.get(`${t},${t}`) ?? 0) / items, 0)]);
  }
  const precision = rows[5].slice(1, 6);
  for (let p = 0; p < 5; p++) {
    const predicted = counted.filter(([, c]) => c === p).length;
    assert.equal(precision[p], pct((expected.get(`${p},${p}`) ?? 0) / predicted, 0), `precision of ${p}`);
  }
  // Shading is the share of the row: the diagonal cell of class 0 is shaded by its recall.
  const diag = new RegExp(
    `data-true="0" data-pred="0" style="background:rgba\\(31,119,180,([0-9.]+)\\)`,
  ).exec(html);
  const items0 = counted.filter(([c]) => c === 0).length;
  assert.ok(Math.abs(Number(diag![1]) - (expected.get('0,0') ?? 0) / items0) < 1e-3);
  assert.match(html, new RegExp(`${outside} labelled items have a label that is not a class of the model`));
  assert.doesNotMatch(html, /a sample of/);
  // The quality table counts the labels it left out, and the terminal's headline has the commonest mistakes.
  assert.deepEqual(tableRows(html, 'How good')[0].slice(-1), [String(outside)]);
  const [quality, mistakes, speed] = run.report.headline;
  assert.equal(quality.columns.at(-1), 'Label not a class (left out)');
  assert.match(mistakes.title ?? '', /^Most confused classes/);
  assert.deepEqual(mistakes.rows[0].slice(0, 3), [
    ...worst.map(String),
    String(expected.get(worst.join(','))),
  ]);
  assert.ok(mistakes.rows.length <= 5);
  assert.match(speed.title ?? '', /How fast/);

  // A run too large to read whole is counted over a sample, and the page says so.
  const all = await confusionCounts(run.dir);
  assert.deepEqual({ items: all?.items, sampled: all?.sampled }, { items: counted.length, sampled: false });
  const sample = await confusionCounts(run.dir, 250);
  assert.equal(sample?.items, 250);
  assert.equal(sample?.sampled, true);
  assert.equal(
    sample?.counts.flat().reduce((a, b) => a + b, 0),
    250,
  );
  assert.match(confusionSection(sample!), /counted over a sample of 250 items/);
});

test('report of a 30-class run: most confused pairs and worst classes, as computed from the JSONL files', async () => {
  const run = await classificationRun({
    classes: 30,
    partitions: 4,
    itemsPerPartition: 300,
    format: 'jsonl',
    seed: 12,
  });
  runs.push(run);
  const { html, pairs } = run;
  assert.equal(matrixCells(html).size, 0, 'no 30 x 30 matrix');
  assert.equal(pairs.length, 1200);
  const counts = countPairs(pairs);

  const top = [...counts]
    .map(([k, n]) => [...k.split(',').map(Number), n])
    .filter(([t, p]) => t !== p)
    .sort((a, b) => b[2] - a[2] || a[0] - b[0] || a[1] - b[1])
    .slice(0, 10);
  const items = (c: number) => pairs.filter(([t]) => t === c).length;
  const predicted = (c: number) => pairs.filter(([, p]) => p === c).length;
  assert.deepEqual(
    tableRows(html, 'Most confused classes'),
    top.map(([t, p, n]) => [String(t), String(p), String(n), pct(n / items(t))]),
  );

  const stats = [...Array(30).keys()]
    .filter((c) => items(c) > 0)
    .map((c) => {
      const hit = counts.get(`${c},${c}`) ?? 0;
      const precision = predicted(c) ? hit / predicted(c) : NaN;
      const recall = hit / items(c);
      const f1 = hit === 0 ? 0 : (2 * precision * recall) / (precision + recall);
      return { c, precision, recall, f1 };
    })
    .sort((a, b) => a.f1 - b.f1 || items(b.c) - items(a.c) || a.c - b.c)
    .slice(0, 10);
  const worst = tableRows(html, 'Worst classes by F1');
  assert.deepEqual(
    worst.map((r) => [Number(r[0]), r[4], r[5]]),
    stats.map((s) => [s.c, pct(s.recall), s.f1.toFixed(3)]),
  );
  // Class noise grows with the class number: the worst classes are mostly the high ones.
  assert.ok(stats.filter((s) => s.c >= 15).length >= 7, `worst: ${stats.map((s) => s.c).join(', ')}`);

  // The summary's accuracy is the diagonal's share (no ties between float logits here).
  const summary = JSON.parse(await readFile(path.join(run.dir, 'summary.json'), 'utf8')) as {
    metrics: { accuracy: number };
  };
  const diagonal = pairs.filter(([t, p]) => t === p).length;
  assert.ok(Math.abs(summary.metrics.accuracy - diagonal / pairs.length) < 1e-12);
});
