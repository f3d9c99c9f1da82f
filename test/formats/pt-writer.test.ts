// The .pt writer: torch.save's layout (64-byte aligned members), readable by CAI zero-copy and by
// Python's zipfile with every CRC right; torch.load itself is checked in test/sources/partition.test.ts.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';
import { decodePt } from '../../src/formats/pt/index.js';
import { encodePtDataset } from '../../src/formats/writers/pt-writer.js';
import { ZIP_ALIGNMENT } from '../../src/formats/writers/zip-writer.js';
import { listZip } from '../../src/formats/zip.js';
import type { Tensor } from '../../src/tensor/tensor.js';

function columns(n: number): Tensor[] {
  return [
    { dtype: 'float32', shape: [n, 5, 3], data: Float32Array.from({ length: n * 15 }, (_, i) => i / 7) },
    { dtype: 'float64', shape: [n, 5], data: Float64Array.from({ length: n * 5 }, (_, i) => -i * 1.5) },
    { dtype: 'uint8', shape: [n], data: Uint8Array.from({ length: n }, (_, i) => i % 251) },
    { dtype: 'int64', shape: [n], data: BigInt64Array.from({ length: n }, (_, i) => BigInt(i) - 3n) },
  ];
}

test('every member of a written .pt starts 64-byte aligned, and columns read back zero-copy and equal', () => {
  for (const n of [1, 3, 17, 1000]) {
    const tensors = columns(n);
    const bytes = encodePtDataset(tensors, 'p');
    const entries = listZip(bytes, 'p.pt');
    assert.deepEqual(
      entries.map((e) => e.name),
      ['p/data.pkl', 'p/data/0', 'p/data/1', 'p/data/2', 'p/data/3', 'p/version', 'p/byteorder'],
    );
    for (const e of entries) {
      assert.equal(e.method, 0, `${e.name} stored`);
      assert.equal(e.dataStart % ZIP_ALIGNMENT, 0, `${e.name} at ${e.dataStart}`);
    }
    const set = decodePt(bytes, 'p.pt');
    assert.equal(set.items, n);
    for (const [i, column] of set.columns.entries()) {
      assert.equal(column.data.buffer, bytes.buffer, `column ${i} is a view of the file`);
      assert.deepEqual(column.shape, tensors[i].shape);
      assert.deepEqual(
        Array.from(column.data as ArrayLike<unknown>),
        Array.from(tensors[i].data as ArrayLike<unknown>),
      );
    }
    assert.deepEqual(encodePtDataset(tensors, 'p'), bytes, 'the same tensors give the same bytes');
  }
});

const python = '/usr/bin/python3';
test(
  "Python's zipfile reads the archive and finds every CRC right",
  { skip: existsSync(python) ? false : `needs ${python}` },
  async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'cai-pt-writer-'));
    const file = path.join(dir, '1.pt');
    await writeFile(file, encodePtDataset(columns(50), '1'));
    const r = spawnSync(
      python,
      [
        '-c',
        'import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); print(z.testzip(), len(z.read("1/data/0")))',
        file,
      ],
      { encoding: 'utf8' },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), `None ${50 * 15 * 4}`);
  },
);
