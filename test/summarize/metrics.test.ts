import assert from 'node:assert/strict';
import { test } from 'node:test';
import { classificationMetrics, quantile, regressionMetrics } from '../../src/summarize/metrics.js';

test('a constant dz gives that bias, zero NMAD, and outliers only past 0.15', () => {
  const truth = [0.1, 0.3, 0.5, 0.7];
  for (const c of [0.05, 0.2]) {
    const pred = truth.map((t) => t + c * (1 + t));
    const m = regressionMetrics(pred, truth);
    assert.ok(Math.abs(m.bias - c) < 1e-12);
    assert.ok(Math.abs(m.nmad) < 1e-12);
    assert.equal(m.outlier_fraction, c > 0.15 ? 1 : 0);
  }
});

test('NMAD is 1.4826 x the median absolute deviation of dz', () => {
  // truth 0 makes dz = pred: dz = [-0.3, -0.1, 0, 0.1, 0.2] -> median 0, |dev| median 0.1.
  const m = regressionMetrics([-0.3, -0.1, 0, 0.1, 0.2], [0, 0, 0, 0, 0]);
  assert.ok(Math.abs(m.nmad - 0.14826) < 1e-12);
  assert.equal(m.outlier_fraction, 2 / 5); // -0.3 and 0.2
  assert.ok(Math.abs(m.mae - 0.7 / 5) < 1e-12);
  assert.ok(Math.abs(m.mse - 0.15 / 5) < 1e-12);
});

test('perfect predictions give R2 of 1; the mean gives 0; NaN rows are left out', () => {
  const truth = [0.1, 0.2, 0.3, 0.4];
  assert.equal(regressionMetrics(truth, truth).r2, 1);
  assert.ok(Math.abs(regressionMetrics([0.25, 0.25, 0.25, 0.25], truth).r2) < 1e-12);
  assert.equal(regressionMetrics([0.1, NaN, 0.3], [0.1, 0.2, 0.3]).n, 2);
});

test('accuracy and top-5 count the rank of the true class', () => {
  // three items, 6 classes; item 0 correct, item 1 true class ranked 3rd, item 2 ranked 6th.
  const scores = [9, 1, 1, 1, 1, 1, 5, 6, 7, 1, 1, 1, 0, 1, 2, 3, 4, 5];
  const m = classificationMetrics(scores, 6, [0, 0, 0]);
  assert.equal(m.accuracy, 1 / 3);
  assert.equal(m.top5, 2 / 3);
});

test('a label that is not a class is counted apart, never scored against the next item', () => {
  // Item 1's label 3 is past the 3 classes: read as an index it would land on item 2's top score and
  // count as correct; 1.5 and -1 are not classes either.
  const scores = [5, 1, 1, 1, 1, 1, 9, 0, 0, 0, 1, 9];
  const m = classificationMetrics(scores, 3, [0, 3, 1.5, -1]);
  assert.equal(m.n, 1);
  assert.equal(m.accuracy, 1);
  assert.equal(m.not_a_class, 3);
  assert.equal(classificationMetrics(scores, 3, [0, 0, 0, 2]).not_a_class, undefined);
});

test('quantiles interpolate like NumPy', () => {
  assert.equal(quantile([1, 2, 3, 4], 0.5), 2.5);
  assert.ok(Math.abs(quantile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 0.95) - 9.55) < 1e-12);
});
