import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { CaiError } from '../../src/errors.js';
import { loadJob, parseInputMapping } from '../../src/job/load.js';
import { parseJobSpec, resolveJob } from '../../src/job/spec.js';

const base = { input: 'data', model: 'm.onnx', output: 'out' };

test('defaults fill in and a minimal job validates', () => {
  const spec = parseJobSpec(base);
  assert.equal(spec.batchSize, 128);
  assert.equal(spec.predictionsFormat, 'parquet');
  assert.equal(spec.maxAttempts, 3);
  assert.equal(spec.toleratedFailurePercentage, 0);
});

test('an unknown field is named, with the valid ones', () => {
  assert.throws(
    () => parseJobSpec({ ...base, batchsize: 64 }),
    (err: unknown) =>
      err instanceof CaiError &&
      err.code === 'E_OPTION' &&
      /unknown field "batchsize" \(did you mean "batchSize"\?\)/.test(err.message) &&
      /batchSize/.test(err.message),
  );
  // A nested field is named where it is, with its object's own fields and the likeliest one.
  assert.throws(
    () => parseJobSpec({ ...base, preprocess: { chanels: 'bgr' } }),
    (err: unknown) =>
      err instanceof CaiError &&
      /unknown field in "preprocess" "chanels" \(did you mean "channels"\?\); valid fields in "preprocess" are [^;]*channels/.test(
        err.message,
      ) &&
      !/valid fields in "preprocess" are input/.test(err.message),
  );
  // Nothing close: no guess.
  assert.throws(
    () => parseJobSpec({ ...base, zebra: 1 }),
    (err: unknown) =>
      err instanceof CaiError && /unknown field "zebra"; valid fields are input/.test(err.message),
  );
});

test('every problem is reported at once: missing input, wrong type', () => {
  assert.throws(
    () => parseJobSpec({ model: 'm.onnx', output: 'o', batchSize: 'big' }),
    (err: unknown) =>
      err instanceof CaiError && /"input" is missing/.test(err.message) && /"batchSize"/.test(err.message),
  );
});

test('flags win over the job file', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-job-'));
  const file = path.join(dir, 'job.json');
  await writeFile(file, JSON.stringify({ ...base, batchSize: 32, fileLimit: 4 }));
  const spec = await loadJob(file, { batchSize: 256, fileLimit: undefined });
  assert.equal(spec.batchSize, 256);
  assert.equal(spec.fileLimit, 4);
});

test('a job file that is not JSON gets a clear error naming it', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-job-'));
  const file = path.join(dir, 'job.json');
  await writeFile(file, '{ input: ');
  await assert.rejects(
    loadJob(file),
    (err: unknown) => err instanceof CaiError && err.object === file && /not valid JSON/.test(err.message),
  );
});

test('--inputs maps names to positions or column names', () => {
  assert.deepEqual(parseInputMapping('image=0,magnitude=1'), { image: 0, magnitude: 1 });
  assert.deepEqual(parseInputMapping('image=images'), { image: 'images' });
  assert.throws(() => parseInputMapping('image'), /input=column/);
});

test('workers x threads never oversubscribe the cores by default', () => {
  const spec = parseJobSpec(base);
  assert.deepEqual(pick(resolveJob(spec, { partitions: 10, cores: 2 })), [2, 1]);
  assert.deepEqual(pick(resolveJob(spec, { partitions: 1, cores: 2 })), [1, 2]);
  assert.deepEqual(
    pick(resolveJob(parseJobSpec({ ...base, threads: 2 }), { partitions: 10, cores: 2 })),
    [1, 2],
  );
  assert.deepEqual(
    pick(resolveJob(parseJobSpec({ ...base, concurrency: 4 }), { partitions: 10, cores: 8 })),
    [4, 2],
  );
});

function pick(j: { concurrency: number; threads: number }): [number, number] {
  return [j.concurrency, j.threads];
}
