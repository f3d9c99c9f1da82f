// Nothing silent: every input object is either planned or named in the summary with its reason; files
// whose names hold `.tmp-`, newlines or live behind symbolic links are planned like any other; a link
// loop or a broken link is named in skipped.json; a NaN input is a failed item; a torn predictions file is redone on resume;
// --overwrite leaves no file of the old job; CSV cells cannot run as spreadsheet formulas.
import assert from 'node:assert/strict';
import {
  copyFile,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  symlink,
  truncate,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { encodePredictions } from '../../src/formats/predictions/writers.js';
import { listZip } from '../../src/formats/zip.js';
import { runJob } from '../../src/run/run.js';
import { readPredictions } from '../../src/summarize/read-predictions.js';
import { allPredictions, freshJob, smallDemo } from '../helpers/demo-fixture.js';

async function tempDir(name: string): Promise<string> {
  return mkdtemp(path.join(os.tmpdir(), `cai-${name}-`));
}

test('odd names, links and hidden files: every object planned or named in the summary', async () => {
  const demo = await smallDemo();
  const input = await tempDir('odd-in');
  const elsewhere = await tempDir('odd-real');
  try {
    await copyFile(path.join(demo.data, '1.pt'), path.join(input, '1.pt'));
    await copyFile(path.join(demo.data, '2.pt'), path.join(input, '2.tmp-77.pt'));
    await mkdir(path.join(elsewhere, 'folder'));
    await copyFile(path.join(demo.data, '3.pt'), path.join(elsewhere, 'folder', '3.pt'));
    await symlink(path.join(elsewhere, 'folder'), path.join(input, 'linked'));
    await copyFile(path.join(demo.data, '4.pt'), path.join(elsewhere, '4.pt'));
    await symlink(path.join(elsewhere, '4.pt'), path.join(input, '4.pt'));
    await copyFile(path.join(demo.data, '1.pt'), path.join(input, '5\nx.pt'));
    await copyFile(path.join(demo.data, '1.pt'), path.join(input, '.hidden.pt'));
    await writeFile(path.join(input, 'notes.txt'), 'not data');
    const job = await freshJob(demo, { input, predictionsFormat: 'csv' });
    const summary = await runJob(job, { retryBaseMs: 10 });
    assert.equal(summary.status, 'succeeded', JSON.stringify(summary.failures));
    assert.equal(summary.partitions.planned, 5);
    assert.equal(summary.items, 5 * 60);
    const rows = await allPredictions(job.output, 'csv');
    assert.equal(rows.length, 5 * 60, 'every row of every file read back, the newline name included');
    assert.ok(rows.some((r) => r.partition === '5\nx'));
    assert.equal(summary.metrics?.n, 5 * 60, 'metrics over every item');
    assert.equal(summary.skipped?.total, 2);
    assert.deepEqual(summary.skipped?.keys.map((k) => k.key).sort(), ['.hidden.pt', 'notes.txt']);
    assert.ok(summary.skipped?.keys.every((k) => k.reason.length > 0));
    // No temporary file is left, and none could be mistaken for the user's.
    const left = await readdir(path.join(job.output, 'predictions'));
    assert.equal(left.filter((n) => n.startsWith('.cai-tmp-')).length, 0);
    await rm(job.output, { recursive: true, force: true });
  } finally {
    await rm(input, { recursive: true, force: true });
    await rm(elsewhere, { recursive: true, force: true });
  }
});

test('symbolic links: what resolves is read; a loop and a broken link are named in skipped.json, not fatal', async () => {
  const demo = await smallDemo();
  const input = await tempDir('loop');
  try {
    await copyFile(path.join(demo.data, '1.pt'), path.join(input, '1.pt'));
    await copyFile(path.join(demo.data, '2.pt'), path.join(input, 'night.tmp-2024.pt'));
    await symlink(input, path.join(input, 'loop'));
    await symlink(path.join(input, 'self'), path.join(input, 'self'));
    await symlink(path.join(input, 'gone.pt'), path.join(input, 'dangling.pt'));
    // A user's file shaped like CAI's own temporary names is data too: named among the skipped (hidden).
    await copyFile(path.join(demo.data, '3.pt'), path.join(input, '.cai-tmp-123-0123456789abcdef'));
    const job = await freshJob(demo, { input });
    const summary = await runJob(job, { retryBaseMs: 10 });
    assert.equal(summary.status, 'succeeded');
    assert.equal(summary.partitions.planned, 2, 'the real partition and night.tmp-2024.pt');
    assert.equal(summary.items, 2 * 60);
    const skipped = JSON.parse(await readFile(path.join(job.output, 'skipped.json'), 'utf8')) as {
      key: string;
      reason: string;
    }[];
    const reason = new Map(skipped.map((s) => [s.key, s.reason]));
    assert.deepEqual([...reason.keys()].sort(), [
      '.cai-tmp-123-0123456789abcdef',
      'dangling.pt',
      'loop',
      'self',
    ]);
    assert.match(reason.get('loop') ?? '', /loop/);
    assert.match(reason.get('self') ?? '', /loop/);
    assert.match(reason.get('dangling.pt') ?? '', /broken symbolic link/);
    await rm(job.output, { recursive: true, force: true });
  } finally {
    await rm(input, { recursive: true, force: true });
  }
});

test('a NaN input is a failed item with its reason, not a silent null prediction', async () => {
  const demo = await smallDemo();
  const input = await tempDir('nan');
  try {
    const bytes = new Uint8Array(await readFile(path.join(demo.data, '1.pt')));
    const images = listZip(bytes, '1.pt').find((e) => e.name.endsWith('/data/0'));
    assert.ok(images, 'the images storage');
    new DataView(bytes.buffer).setFloat32(images.dataStart + 4 * 7, NaN, true);
    await writeFile(path.join(input, '1.pt'), bytes);
    const job = await freshJob(demo, { input, predictionsFormat: 'jsonl' });
    const summary = await runJob(job, { retryBaseMs: 10 });
    assert.equal(summary.failed_items, 1);
    const rows = await allPredictions(job.output, 'jsonl');
    const failed = rows.filter((r) => r.error);
    assert.equal(failed.length, 1);
    assert.equal(failed[0].index, 0);
    assert.match(String(failed[0].error), /not finite/);
    await rm(job.output, { recursive: true, force: true });
  } finally {
    await rm(input, { recursive: true, force: true });
  }
});

test('resume redoes a partition whose predictions file is torn; --overwrite leaves no old outputs', async () => {
  const demo = await smallDemo();
  const job = await freshJob(demo);
  try {
    const first = await runJob(job, { retryBaseMs: 10 });
    assert.equal(first.status, 'succeeded');
    const torn = path.join(job.output, 'predictions', '2.parquet');
    await truncate(torn, 100);
    const second = await runJob(job, { retryBaseMs: 10 });
    assert.equal(second.run.partitions, 1, 'only the torn partition is done again');
    assert.equal((await allPredictions(job.output)).length, demo.items);
    const smaller = await runJob({ ...job, fileLimit: 2 }, { retryBaseMs: 10, overwrite: true });
    assert.equal(smaller.partitions.planned, 2);
    assert.deepEqual((await readdir(path.join(job.output, 'predictions'))).sort(), [
      '1.parquet',
      '2.parquet',
    ]);
    assert.deepEqual((await readdir(path.join(job.output, 'results'))).sort(), ['1.json', '2.json']);
    assert.equal(smaller.skipped?.reasons['past fileLimit 2'], 2);
  } finally {
    await rm(job.output, { recursive: true, force: true });
  }
});

test('CSV cells that start like formulas are written as text and read back unchanged', async () => {
  const hostile = ['=HYPERLINK("http://x","y")', '+1+1', '-2+3', '@SUM(A1)', "'quoted", 'a,b\nc"d'];
  const csv = encodePredictions(
    {
      partition: 'p',
      index: hostile.map((_, i) => i),
      ids: hostile,
      columns: [{ name: 'y', width: 1, data: hostile.map(() => -1.5) }],
    },
    'csv',
  ) as string;
  for (const line of csv.split('\n').slice(1)) {
    const idCell = line.split(',')[2] ?? '';
    assert.ok(!/^[=+\-@]/.test(idCell), `a cell starts like a formula: ${line}`);
  }
  const rows = await readPredictions(new TextEncoder().encode(csv), 'csv');
  assert.deepEqual(
    rows.map((r) => r.id),
    hostile,
  );
  assert.deepEqual(
    rows.map((r) => r.y),
    hostile.map(() => -1.5),
  );
});

test('a partition name too long for the file system is a clear error, not a raw ENAMETOOLONG', async () => {
  const demo = await smallDemo();
  const input = await tempDir('long');
  try {
    const long = `${'n'.repeat(250)}.pt`;
    await copyFile(path.join(demo.data, '1.pt'), path.join(input, long));
    await copyFile(path.join(demo.data, '2.pt'), path.join(input, '2.pt'));
    const job = await freshJob(demo, { input, maxAttempts: 1, toleratedFailurePercentage: 50 });
    const summary = await runJob(job, { retryBaseMs: 10 });
    assert.equal(summary.partitions.completed, 1, 'the other partition is done');
    assert.equal(summary.failures.length, 1);
    assert.equal(summary.failures[0].error.code, 'E_OPTION');
    assert.match(summary.failures[0].error.message, /name too long for the file system/);
    await rm(job.output, { recursive: true, force: true });
  } finally {
    await rm(input, { recursive: true, force: true });
  }
});
