// Strided gathering against a naive element-by-element reference on random layouts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ErrorCodes } from '../../src/errors.js';
import {
  denseBytes,
  extentOf,
  gatherStrided,
  isRowMajor,
  type StridedLayout,
} from '../../src/formats/strided.js';
import { assertCaiError } from './fixtures.js';

function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** Every index of a shape in row-major order, with its storage element under a layout. */
function* elements(layout: StridedLayout): Generator<number> {
  const { shape, strides, offset } = layout;
  const total = shape.reduce((a, b) => a * b, 1);
  for (let flat = 0; flat < total; flat++) {
    let rest = flat;
    let at = offset;
    for (let d = shape.length - 1; d >= 0; d--) {
      at += (rest % shape[d]) * strides[d];
      rest = Math.floor(rest / shape[d]);
    }
    yield at;
  }
}

function reference(storage: Uint8Array, size: number, layout: StridedLayout, swap: boolean): Uint8Array {
  const out: number[] = [];
  for (const e of elements(layout)) {
    const bytes = [...storage.subarray(e * size, (e + 1) * size)];
    out.push(...(swap ? bytes.reverse() : bytes));
  }
  return Uint8Array.from(out);
}

function randomLayout(random: () => number): StridedLayout {
  const ndim = Math.floor(random() * 4);
  const shape = Array.from({ length: ndim }, () => Math.floor(random() * 4) + (random() < 0.1 ? 0 : 1));
  const kind = random();
  let strides: number[];
  if (kind < 0.3) {
    // Row-major, so the fast path is taken.
    strides = shape.map(() => 1);
    for (let d = ndim - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
  } else {
    strides = shape.map(() => Math.floor(random() * 7));
  }
  return { offset: Math.floor(random() * 5), shape, strides };
}

test('gatherStrided and denseBytes match a naive gather for random layouts, sizes and alignments', () => {
  const random = lcg(42);
  for (let round = 0; round < 400; round++) {
    const layout = randomLayout(random);
    const size = [1, 2, 4, 8][round % 4];
    const extent = extentOf(layout, 'random', 'layout');
    const elementsMax = Math.max(extent, layout.offset) + 3;
    const backing = new Uint8Array(elementsMax * size + 1);
    for (let i = 0; i < backing.length; i++) backing[i] = Math.floor(random() * 256);
    // Odd rounds read from an unaligned storage view.
    const storage = backing.subarray(round % 2, (round % 2) + elementsMax * size);
    const where = JSON.stringify({ layout, size });
    assert.deepEqual(gatherStrided(storage, size, layout), reference(storage, size, layout, false), where);
    for (const swap of [false, true]) {
      assert.deepEqual(
        denseBytes(storage, size, layout, swap),
        reference(storage, size, layout, swap),
        where,
      );
    }
    const indices = [...elements(layout)];
    const max = indices.length === 0 ? 0 : Math.max(...indices) + 1;
    assert.equal(extent, max, where);
    const contiguous = indices.every((e, i) => e === layout.offset + i);
    assert.equal(isRowMajor(layout), contiguous, where);
  }
});

test('negative, fractional or mismatched layouts are corrupt', () => {
  for (const layout of [
    { offset: -1, shape: [2], strides: [1] },
    { offset: 0, shape: [2.5], strides: [1] },
    { offset: 0, shape: [2, 2], strides: [1] },
    { offset: 0, shape: [2], strides: [-1] },
  ]) {
    assertCaiError(() => extentOf(layout, 'x.pt', 'a tensor'), ErrorCodes.corrupt, 'x.pt');
  }
});
