import assert from 'node:assert/strict';
import { test } from 'node:test';
import { PREDICTION_FORMATS } from '../../src/job/spec.js';
import type { PredictionTable } from '../../src/formats/predictions/table.js';
import { encodePredictions } from '../../src/formats/predictions/writers.js';
import { readPredictions } from '../../src/summarize/read-predictions.js';
import { parquetMetadata } from 'hyparquet';

const table: PredictionTable = {
  partition: '7',
  index: [0, 1, 2],
  columns: [
    { name: 'redshift', width: 1, data: Float32Array.from([0.125, 0.5, Math.fround(0.3)]) },
    { name: 'scores', width: 2, data: [1, 2, 3, 4, 5, 6] },
  ],
  label: { name: 'label', width: 1, data: [0.1, 0.2, 0.3] },
};

for (const format of PREDICTION_FORMATS) {
  test(`${format}: one row per item, in order, with every column`, async () => {
    const encoded = encodePredictions(table, format);
    const bytes = typeof encoded === 'string' ? new TextEncoder().encode(encoded) : encoded;
    const rows = await readPredictions(bytes, format);
    assert.equal(rows.length, 3);
    rows.forEach((row, i) => {
      assert.equal(String(row.partition), '7');
      assert.equal(Number(row.index), i);
      assert.equal(row.redshift, table.columns[0].data[i]);
      assert.deepEqual(row.scores, [2 * i + 1, 2 * i + 2]);
      assert.equal(row.label, table.label?.data[i]);
    });
  });
}

test('non-finite outputs become null in JSONL and CSV', async () => {
  const t: PredictionTable = { partition: 'x', index: [0], columns: [{ name: 'y', width: 1, data: [NaN] }] };
  const rows = await readPredictions(
    new TextEncoder().encode(encodePredictions(t, 'jsonl') as string),
    'jsonl',
  );
  assert.equal(rows[0].y, null);
  const csv = encodePredictions(t, 'csv') as string;
  assert.equal(csv.trim().split('\n')[1], 'x,0,');
});

test('Parquet: numbers plain and uncompressed (model outputs do not compress), strings as usual', () => {
  const bytes = encodePredictions(table, 'parquet') as Uint8Array;
  const meta = parquetMetadata(bytes);
  const chunks = meta.row_groups[0].columns.map((c) => c.meta_data);
  const byName = new Map(chunks.map((m) => [m?.path_in_schema.join('.'), m]));
  for (const name of ['index', 'redshift', 'scores', 'label']) {
    const m = byName.get(name);
    assert.equal(m?.codec, 'UNCOMPRESSED', name);
    assert.deepEqual(
      m?.encodings.filter((e) => e.includes('DICTIONARY')),
      [],
      name,
    );
  }
  assert.equal(byName.get('partition')?.codec, 'SNAPPY');
});
