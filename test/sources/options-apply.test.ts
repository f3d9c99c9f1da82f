// Nothing ignored: an option the input's kind does not read (or that finds nothing to act on in the data)
// is an error naming the option and why, before anything is written; each case ran silently before.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { cp, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CaiError } from '../../src/errors.js';
import { parseJobSpec, type JobSpecInput } from '../../src/job/spec.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { runJob } from '../../src/run/run.js';
import { FIXTURES } from './helpers.js';

let dir = '';
let model = '';
let tensors = '';
let n = 0;

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-options-'));
  model = path.join(dir, 'mean.onnx');
  await writeFile(model, buildTrivial());
  tensors = path.join(dir, 'tensors');
  await cp(path.join(FIXTURES, 'tensors', 'float32.npy'), path.join(tensors, 'float32.npy'), {
    recursive: true,
  });
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs a job that must be refused as an option error, and checks that its output holds nothing. */
async function refused(job: Omit<JobSpecInput, 'model' | 'output'>, message: RegExp): Promise<void> {
  const output = path.join(dir, `out-${++n}`);
  await assert.rejects(runJob(parseJobSpec({ ...job, model, output, concurrency: 1 })), (err: unknown) => {
    assert.ok(err instanceof CaiError, String(err));
    assert.equal(err.code, 'E_OPTION', err.message);
    assert.match(err.message, message);
    return true;
  });
  assert.equal(existsSync(output), false, 'nothing written, not even the folder');
}

test('--preset and preprocessing flags on tensor partitions are refused, pointing to cai partition', async () => {
  await refused(
    { input: tensors, preset: 'imagenet' },
    /--preset \(preset\) does not apply to tensor input \(image, parquet, hdf5, zarr inputs read it\): tensor partitions go to the model as stored; preprocess images when making partitions \(cai partition --preset imagenet\); remove it$/,
  );
  await refused(
    { input: tensors, preprocess: { channels: 'bgr', mean: [0, 0, 0] } },
    /--mean, --channels \(preprocess\) does not apply to tensor input/,
  );
  await refused({ input: tensors, partitionItems: 10 }, /--partition-items .*cai partition --items/);
});

test('options of another source kind are refused, each named with the kinds that read it', async () => {
  await refused(
    {
      input: `${FIXTURES}parquet/ray.parquet`.replace(/ray\.parquet$/, ''),
      format: 'parquet',
      fitsHdu: 1,
      group: '/x',
    },
    /--fits-hdu \(fitsHdu\) does not apply to parquet input \(fits inputs read it\); --group \(group\) does not apply to parquet input \([^)]*\); remove them/,
  );
  await refused(
    { input: `${FIXTURES}images/photos`, idColumn: 'id', datasets: ['images'] },
    /--id-column \(idColumn\) does not apply to image input.*--datasets \(datasets\) does not apply to image input/,
  );
  await refused(
    { input: `${FIXTURES}fits/cubes`, imageShape: [8, 8, 5] },
    /--image-shape .* does not apply to fits input/,
  );
  await refused(
    {
      input: `${FIXTURES}hdf5/galaxy10.h5`.replace(/galaxy10\.h5$/, ''),
      format: 'hdf5',
      featureColumns: ['ra'],
    },
    /--feature-columns \(featureColumns\) does not apply to hdf5 input.*HDF5 datasets are chosen with --datasets/,
  );
});

test('preprocessing with no image in the data, or an image column without preprocessing, is refused', async () => {
  const hdf5 = path.join(dir, 'hdf5');
  await cp(path.join(FIXTURES, 'hdf5', 'galaxy10.h5'), path.join(hdf5, 'galaxy10.h5'));
  await refused(
    { input: hdf5, datasets: ['features', 'ra'], preset: 'imagenet' },
    /image preprocessing \(--preset or its flags\) is asked, and no column holds images/,
  );
  await refused(
    { input: hdf5, datasets: ['images'], imageColumn: 'images' },
    /--image-column "images" names the array to preprocess as images, and no preprocessing is asked/,
  );
  const parquet = path.join(dir, 'parquet');
  await cp(path.join(FIXTURES, 'parquet', 'ray.parquet'), path.join(parquet, 'ray.parquet'));
  await refused(
    { input: parquet, featureColumns: ['image'], preset: 'imagenet' },
    /image preprocessing .* the file has no image column/,
  );
  await refused(
    { input: `${FIXTURES}fits/cubes`, fitsCutouts: true, fitsBands: ['u', 'g'] },
    /--fits-cutouts reads files of many cutouts: use one of them/,
  );
});
