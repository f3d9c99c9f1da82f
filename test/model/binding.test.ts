import assert from 'node:assert/strict';
import { test } from 'node:test';
import { columnSet } from '../../src/formats/columns.js';
import { bindInputs } from '../../src/model/binding.js';
import type { ModelValueInfo } from '../../src/model/session.js';
import { tensor } from '../../src/tensor/tensor.js';

const INPUTS: ModelValueInfo[] = [
  { name: 'image', dtype: 'float32', shape: ['N', 5, 2, 2] },
  { name: 'magnitude', dtype: 'float32', shape: ['N', 5] },
];

// np.savez(f, magnitude=..., image=...) stores the arrays in the order given, not the model's order.
const swapped = columnSet(
  'p.npz',
  ['magnitude', 'image'],
  [tensor('float64', [3, 5], new Float64Array(15)), tensor('float32', [3, 5, 2, 2], new Float32Array(60))],
);

test('arrays named like every model input bind by name, whatever their order', () => {
  const b = bindInputs(swapped, INPUTS, undefined, 'p.npz');
  assert.deepEqual(
    b.map((x) => [x.input, x.column, x.columnName]),
    [
      ['image', 1, 'image'],
      ['magnitude', 0, 'magnitude'],
    ],
  );
});

test('an explicit mapping still wins over names, and other names bind by position', () => {
  assert.throws(
    () => bindInputs(swapped, INPUTS, { image: 0, magnitude: 1 }, 'p.npz'),
    /input "image" expects shape/,
  );
  const unnamed = columnSet('p.npz', ['arr_0', 'arr_1'], [swapped.columns[1], swapped.columns[0]]);
  assert.deepEqual(
    bindInputs(unnamed, INPUTS, undefined, 'p.npz').map((x) => x.column),
    [0, 1],
  );
});
