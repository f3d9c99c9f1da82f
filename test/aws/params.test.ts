import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CaiError } from '../../src/errors.js';
import { ephemeralStorageFor, parseStackParams } from '../../src/engines/aws/params.js';

const base = { data: 's3://cai-data/galaxies', model: 's3://cai-data/models/m.onnx' };

test('a whole bucket as output is refused unless the user says they mean it', () => {
  assert.throws(
    () => parseStackParams({ ...base, output: 's3://cai-out' }),
    (e: unknown) =>
      e instanceof CaiError && /s3:\/\/cai-out is a whole bucket.*--whole-bucket-output/.test(e.message),
  );
  assert.throws(() => parseStackParams({ ...base, output: 's3://cai-out/' }), CaiError);
  assert.equal(
    parseStackParams({ ...base, output: 's3://cai-out', wholeBucketOutput: true }).output,
    's3://cai-out',
  );
  assert.equal(parseStackParams({ ...base, output: 's3://cai-out/runs' }).wholeBucketOutput, false);
});

test('/tmp is sized from the model: 512 MB for a small one, the model plus headroom above', () => {
  assert.equal(ephemeralStorageFor(50 * 2 ** 20), 512);
  assert.equal(ephemeralStorageFor(900 * 2 ** 20), Math.ceil(900 * 1.1 + 128));
  assert.equal(ephemeralStorageFor(50 * 2 ** 20, 2048), 2048, "the user's setting stands when it fits");
});

test('a /tmp setting too small for the model, or a model above 10 GB, is an error that says what to set', () => {
  assert.throws(
    () => ephemeralStorageFor(900 * 2 ** 20, 512),
    (e: unknown) =>
      e instanceof CaiError &&
      /512 MB of \/tmp cannot hold the 900 MB model.*--ephemeral-storage 1118/.test(e.message),
  );
  assert.throws(() => ephemeralStorageFor(10_000 * 2 ** 20), /does not fit in Lambda's largest \/tmp/);
});
