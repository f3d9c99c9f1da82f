/** Regression metrics in the photo-z tradition (dz = (pred - true) / (1 + true)). */
export interface RegressionMetrics {
  readonly kind: 'regression';
  readonly n: number;
  readonly mae: number;
  readonly mse: number;
  readonly rmse: number;
  /** Mean of dz. */
  readonly bias: number;
  /** 1.4826 x median(|dz - median(dz)|). */
  readonly nmad: number;
  /** Share of items with |dz| > 0.15. */
  readonly outlier_fraction: number;
  readonly r2: number;
}

/** Class-score metrics: the label is a class index, the output one score per class. */
export interface ClassificationMetrics {
  readonly kind: 'classification';
  readonly n: number;
  readonly accuracy: number;
  readonly top5: number;
  /** Items whose label is not a class of the output (not an integer from 0 to width - 1): not in `n`. */
  readonly not_a_class?: number;
}

/** Metrics of a job with a label. */
export type Metrics = RegressionMetrics | ClassificationMetrics;

/** Median of a numeric array (sorted copy). @example median([3, 1, 2]) // 2 */
export function median(values: ArrayLike<number>): number {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile q in [0, 1] (NumPy's default). @example quantile([1, 2, 3, 4], 0.95) */
export function quantile(values: ArrayLike<number>, q: number): number {
  const sorted = Float64Array.from(values).sort();
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

/**
 * Photo-z regression metrics over pairs whose prediction and truth are both finite.
 * @example regressionMetrics([0.1, 0.2], [0.1, 0.25]).nmad
 */
export function regressionMetrics(pred: ArrayLike<number>, truth: ArrayLike<number>): RegressionMetrics {
  const p: number[] = [];
  const t: number[] = [];
  for (let i = 0; i < pred.length; i++) {
    if (Number.isFinite(pred[i]) && Number.isFinite(truth[i])) {
      p.push(pred[i]);
      t.push(truth[i]);
    }
  }
  const n = p.length;
  const dz = p.map((v, i) => (v - t[i]) / (1 + t[i]));
  let abs = 0;
  let sq = 0;
  let dzSum = 0;
  let outliers = 0;
  let tMean = 0;
  for (let i = 0; i < n; i++) {
    const r = p[i] - t[i];
    abs += Math.abs(r);
    sq += r * r;
    dzSum += dz[i];
    if (Math.abs(dz[i]) > 0.15) outliers++;
    tMean += t[i];
  }
  tMean /= n;
  let ssTot = 0;
  for (const v of t) ssTot += (v - tMean) ** 2;
  const dzMedian = median(dz);
  return {
    kind: 'regression',
    n,
    mae: abs / n,
    mse: sq / n,
    rmse: Math.sqrt(sq / n),
    bias: dzSum / n,
    nmad: 1.4826 * median(dz.map((v) => Math.abs(v - dzMedian))),
    outlier_fraction: outliers / n,
    r2: ssTot > 0 ? 1 - sq / ssTot : NaN,
  };
}

/** Whether `label` names one of `classes` classes: an integer from 0 to classes - 1. @example isClassIndex(2, 3) // true */
export function isClassIndex(label: number, classes: number): boolean {
  return Number.isInteger(label) && label >= 0 && label < classes;
}

/**
 * Accuracy and top-5 accuracy of class scores (`width` per item) against integer labels. A label that
 * is not a class index (a fraction, negative, `width` or more) is counted apart, never scored against
 * another item's scores.
 * @example classificationMetrics(scores, 1000, labels).top5
 */
export function classificationMetrics(
  scores: ArrayLike<number>,
  width: number,
  labels: ArrayLike<number>,
): ClassificationMetrics {
  let n = 0;
  let top1 = 0;
  let top5 = 0;
  let notAClass = 0;
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (!Number.isFinite(label) || !Number.isFinite(scores[i * width])) continue;
    if (!isClassIndex(label, width)) {
      notAClass++;
      continue;
    }
    n++;
    const own = scores[i * width + label];
    let higher = 0;
    for (let j = 0; j < width; j++) if (scores[i * width + j] > own) higher++;
    if (higher === 0) top1++;
    if (higher < 5) top5++;
  }
  return {
    kind: 'classification',
    n,
    accuracy: n ? top1 / n : NaN,
    top5: n ? top5 / n : NaN,
    ...(notAClass ? { not_a_class: notAClass } : {}),
  };
}
