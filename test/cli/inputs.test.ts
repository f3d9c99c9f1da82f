// Inputs as users hold them: one file of a dataset format is a job's input (it was refused with "is a
// file; --input takes the folder"), read as a folder holding only it, whatever else lies beside it; the
// help texts say what the flags do for every format.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { runJob } from '../../src/run/run.js';
import { readPredictions } from '../../src/summarize/read-predictions.js';
import { FIXTURES } from '../sources/helpers.js';

const CLI = fileURLToPath(new URL('../../src/cli/main.js', import.meta.url));
let dir = '';
let model = '';

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-inputs-'));
  await copyFile(path.join(FIXTURES, 'hdf5/galaxy10.h5'), path.join(dir, 'galaxy10.h5'));
  // Beside it, files a folder input would read or trip over: a single-file input ignores them.
  await copyFile(path.join(FIXTURES, 'hdf5/contiguous.h5'), path.join(dir, 'other.h5'));
  await writeFile(path.join(dir, 'notes.txt'), 'not data');
  model = path.join(dir, 'features.onnx');
  await writeFile(model, buildTrivial({ inputName: 'features', shape: ['N', 5], dtype: 'float64' }));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('one HDF5 file is an input: its rows, in row ranges (whole chunks of 32), and nothing else of its folder', async () => {
  const output = path.join(dir, 'out-h5');
  const summary = await runJob({
    input: path.join(dir, 'galaxy10.h5'),
    model,
    output,
    datasets: { features: 'features' },
    idColumn: 'ids',
    partitionItems: 32,
    concurrency: 1,
  });
  assert.equal(summary.status, 'succeeded');
  assert.equal(summary.partitions.planned, 2);
  assert.equal(summary.items, 64);
  const rows = await readPredictions(output);
  assert.equal(rows.length, 64);
  assert.deepEqual(new Set(rows.map((r) => r.partition)), new Set(['galaxy10__0-32', 'galaxy10__32-64']));
  assert.equal(new Set(rows.map((r) => r.id)).size, 64);
});

test('the CLI runs one file given as --input, and --file-limit counts its row ranges', () => {
  const output = path.join(dir, 'out-cli');
  const r = spawnSync(
    process.execPath,
    [
      CLI,
      'run',
      '--input',
      path.join(dir, 'galaxy10.h5'),
      '--model',
      model,
      '--output',
      output,
      '--datasets',
      'features=features',
      '--id-column',
      'ids',
      '--partition-items',
      '32',
      '--file-limit',
      '1',
      '--concurrency',
      '1',
      '--json',
    ],
    { encoding: 'utf8', env: { ...process.env, CI: 'true', ORT_DISABLE_TELEMETRY: '1' } },
  );
  assert.equal(r.status, 0, r.stderr);
  const summary = JSON.parse(r.stdout) as { items: number; partitions: { planned: number } };
  assert.equal(summary.partitions.planned, 1);
  assert.equal(summary.items, 32);
});

test('help texts name every format a flag serves', () => {
  const help = spawnSync(process.execPath, [CLI, 'run', '--help'], { encoding: 'utf8' }).stdout.replace(
    /\s+/g,
    ' ',
  );
  assert.doesNotMatch(help, /--id-column <name> Parquet column/);
  assert.match(help, /--id-column <name> column \(Parquet\) or dataset \(HDF5, Zarr\)/);
  assert.doesNotMatch(help, /for folders of images or FITS/);
  assert.match(help, /--partition-items <n> items per partition: .* rows of Parquet, HDF5, Zarr/);
  assert.match(help, /--file-limit <k> .*each row range of a file .* is one partition/);
  assert.match(help, /--input <uri> .* or one file of a dataset/);
});

test('on an HDF5 file bound by position, the error says which dataset went to which input and names the flags', async () => {
  const imageModel = path.join(dir, 'image.onnx');
  await writeFile(imageModel, buildTrivial({ inputName: 'image', shape: ['N', 3, 48, 48] }));
  const run = (...more: string[]) =>
    spawnSync(
      process.execPath,
      [
        CLI,
        'run',
        '--input',
        path.join(dir, 'galaxy10.h5'),
        '--model',
        imageModel,
        '--output',
        path.join(dir, 'out-hint'),
        '-q',
        ...more,
      ],
      { encoding: 'utf8', env: { ...process.env, CI: 'true', ORT_DISABLE_TELEMETRY: '1' } },
    );
  const r = run();
  assert.equal(r.status, 2, r.stderr);
  const hint = r.stderr.split('\n').find((l) => l.startsWith('hint:')) ?? '';
  assert.match(hint, /bound by position \(image <- column 0 "ans"\)/, r.stderr);
  assert.match(hint, /--inputs image=<column>/);
  assert.match(hint, /--datasets/);
  // The images chosen, stored [N, 64, 64, 3]: the hint names the preprocessing flags.
  const images = run('--datasets', 'image=images');
  assert.equal(images.status, 2, images.stderr);
  assert.match(images.stderr, /hint: .*--preset imagenet.*--layout nchw/, images.stderr);
  // A label that is not there names --label and --datasets.
  const label = run('--datasets', 'image=images', '--center-crop', '48', '--label', 'redshift');
  assert.equal(label.status, 2, label.stderr);
  assert.match(
    label.stderr,
    /label column "redshift" does not exist.*\nhint: --label takes .*--datasets/,
    label.stderr,
  );
});
