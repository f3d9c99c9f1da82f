// Job-wide mistakes the worker used to find once per partition (after the workers started, each partition
// failing alike) are found by the preflight before any work: exit 2, nothing written, the worker's own
// error. Real onnxruntime sessions of tiny models, real safetensors partitions.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { CaiError, ErrorCodes, ExitCodes, exitCodeFor } from '../../src/errors.js';
import { encodeSafetensors } from '../../src/formats/writers/safetensors-writer.js';
import { buildTrivial } from '../../src/model/zoo/trivial.js';
import { runJob } from '../../src/run/run.js';
import { tensor } from '../../src/tensor/tensor.js';
import '../../src/storage/register.js';
import { FIXTURES } from '../sources/helpers.js';

let dir = '';
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'cai-preflight-checks-'));
  await mkdir(path.join(dir, 'in'));
  // Two partitions of 6 items: a feature vector `x` and a per-item column named like the model's output.
  for (const k of [1, 2]) {
    const x = tensor(
      'float32',
      [6, 5],
      Float32Array.from({ length: 30 }, (_, i) => k * 100 + i),
    );
    const mean = tensor(
      'float32',
      [6],
      Float32Array.from({ length: 6 }, (_, i) => i),
    );
    await writeFile(path.join(dir, 'in', `${k}.safetensors`), encodeSafetensors({ x, mean }));
  }
});
after(() => rm(dir, { recursive: true, force: true }));

async function refused(
  name: string,
  shape: (string | number)[],
  fields: Record<string, unknown>,
  inputName = 'x',
) {
  const model = path.join(dir, `${name}.onnx`);
  await writeFile(model, buildTrivial({ inputName, shape, outputName: 'mean' }));
  const output = path.join(dir, `out-${name}`);
  const err = await runJob({
    input: path.join(dir, 'in'),
    model,
    output,
    inputs: { [inputName]: inputName },
    concurrency: 1,
    threads: 1,
    ...fields,
  }).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.ok(err instanceof CaiError, String(err));
  assert.equal(exitCodeFor(err), ExitCodes.usage, err.message);
  await assert.rejects(stat(output), 'nothing written, not even the folder');
  return err;
}

test('a --carry column named like a model output is refused before any work, naming the partition', async () => {
  const err = await refused('clash', ['N', 5], { carry: ['mean'] });
  assert.equal(err.code, ErrorCodes.option);
  assert.ok(err.object.endsWith('1.safetensors'), err.object);
  assert.match(err.message, /--carry "mean" would write a second predictions column of that name/);
});

test('a batch size a fixed batch dimension cannot take is refused before any work, naming the size to use', async () => {
  const err = await refused('fixed', [4, 5], { batchSize: 8 });
  assert.equal(err.code, ErrorCodes.binding);
  assert.match(err.message, /input "x" has a fixed batch dimension of 4; run with --batch-size 4/);
});

test('an HDF5 dataset or id column the file lacks (--datasets, --id-column) is refused before any work, listing those it has', async () => {
  const input = `${FIXTURES}hdf5/galaxy10.h5`;
  const datasets = await refused('datasets', ['N', 5], { input, datasets: ['featurez'] }, 'featurez');
  assert.equal(datasets.code, ErrorCodes.option);
  assert.ok(datasets.object.endsWith('galaxy10.h5'), datasets.object);
  assert.match(
    datasets.message,
    /has no dataset "\/featurez" \(datasets\); its datasets are .*\/features float64 \[64, 5\]/,
  );
  const id = await refused('id', ['N', 5], { input, datasets: ['features'], idColumn: 'objid' }, 'features');
  assert.equal(id.code, ErrorCodes.option);
  assert.match(id.message, /has no dataset "\/objid" \(idColumn\)/);
});
