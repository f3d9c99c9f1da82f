// A failure's data_path is computed without opening the input (a crashed worker, the AWS Summarize
// function has no read permission on it); it must say what the input's store says for a record.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { inputObjectPath, openInput } from '../../src/storage/open.js';
import '../../src/storage/register.js';

test("inputObjectPath is what the input's store describes: folders, one-file inputs, S3 prefixes", async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-input-path-'));
  try {
    await mkdir(path.join(dir, 'parts', 'sdss'), { recursive: true });
    await writeFile(path.join(dir, 'parts', 'sdss', '12.pt'), 'x');
    await writeFile(path.join(dir, 'cube.h5'), 'x');
    const rel = path.relative(process.cwd(), path.join(dir, 'parts'));
    const cases: [string, string][] = [
      [path.join(dir, 'parts'), 'sdss/12.pt'],
      [`${path.join(dir, 'parts')}/`, 'sdss/12.pt'],
      [rel, 'sdss/12.pt'],
      [path.join(dir, 'cube.h5'), 'cube.h5'],
      ['s3://bucket/parts', 'sdss/12.pt'],
      ['s3://bucket/parts/', 'sdss/12.pt'],
      ['s3://bucket', '12.pt'],
    ];
    for (const [input, key] of cases) {
      const store = await openInput(input, { s3Endpoint: 'http://127.0.0.1:9' });
      assert.equal(inputObjectPath(input, key), store.describe(key), input);
    }
    // A one-file input on S3 lists its object under its own name: that is the input.
    assert.equal(inputObjectPath('s3://bucket/d/cube.h5', 'cube.h5'), 's3://bucket/d/cube.h5');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
