import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as ort from 'onnxruntime-node';
import { decodeTensorFile } from '../../src/formats/registry.js';
import { cast } from '../../src/tensor/tensor.js';

// Made by scripts/fixtures/make_parity_fixtures.py; see test/fixtures/parity/README.md.
const DIR = fileURLToPath(new URL('../../../test/fixtures/parity/', import.meta.url));
const PARTITIONS = [
  { id: '1', items: 20 },
  { id: '2', items: 20 },
  { id: '10', items: 7 },
];

test('onnxruntime-node matches the PyTorch reference on the parity partitions (rel. error < 1e-4)', async () => {
  const session = await ort.InferenceSession.create(readFileSync(`${DIR}model.onnx`), {
    intraOpNumThreads: 1,
  });
  const all: number[] = [];
  for (const { id, items } of PARTITIONS) {
    const partition = decodeTensorFile(readFileSync(`${DIR}${id}.pt`), `${id}.pt`);
    const [images, magnitudes, redshift] = partition.columns;
    assert.equal(partition.items, items);
    assert.deepEqual([images.dtype, magnitudes.dtype, redshift.dtype], ['float32', 'float64', 'float32']);
    // As in the seeds' loop: the float64 magnitudes are cast to float32 for the model.
    const mags = cast(magnitudes, 'float32');
    const out = await session.run({
      image: new ort.Tensor('float32', images.data as Float32Array, [...images.shape]),
      magnitude: new ort.Tensor('float32', mags.data, [...mags.shape]),
    });
    const expected = decodeTensorFile(readFileSync(`${DIR}expected/${id}.npy`), `${id}.npy`).columns[0];
    assert.deepEqual(expected.shape, [items, 1]);
    assert.deepEqual(out.redshift.dims, [items, 1]);
    const got = out.redshift.data as Float32Array;
    const want = expected.data as Float32Array;
    for (let i = 0; i < items; i++) {
      const rel = Math.abs(got[i] - want[i]) / Math.abs(want[i]);
      all.push(want[i]);
      assert.ok(rel < 1e-4, `partition ${id} item ${i}: onnxruntime ${got[i]}, PyTorch ${want[i]}`);
    }
  }
  // Agreement only means something if the predictions differ between items.
  assert.ok(
    Math.max(...all) - Math.min(...all) > 0.1,
    `predictions span ${Math.min(...all)}..${Math.max(...all)}`,
  );
  await session.release();
});
