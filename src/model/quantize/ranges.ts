// Activation ranges gathered over calibration batches: the exact min and max (MinMax), and a
// deterministic sample of the values for a percentile range that ignores the rare outliers MinMax would
// stretch the 256 levels over.

/** How a calibration range is taken from the values seen. */
export type CalibrationMethod = 'minmax' | 'percentile';

/** The calibration methods, for flags and errors. */
export const CALIBRATION_METHODS: readonly CalibrationMethod[] = Object.freeze(['minmax', 'percentile']);

/** A value range. */
export interface Range {
  readonly min: number;
  readonly max: number;
}

const PER_BATCH = 16384;

/** Linear-interpolated quantile of sorted values. */
function quantileSorted(sorted: Float32Array, q: number): number {
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}
const CAP = 1 << 18;

interface Seen {
  min: number;
  max: number;
  sample: Float32Array;
  size: number;
}

/**
 * Collects the values of named tensors batch after batch; the same batches in the same order always
 * give the same ranges (the sample is strided, never random).
 *
 * @example
 * const c = new RangeCollector();
 * c.add('conv1_in', batchValues);
 * c.range('conv1_in', 'percentile') // { min, max }
 */
export class RangeCollector {
  private readonly seen = new Map<string, Seen>();

  /** Names seen so far. */
  names(): string[] {
    return [...this.seen.keys()];
  }

  /** Adds one batch of a tensor's values. */
  add(name: string, values: ArrayLike<number>): void {
    let s = this.seen.get(name);
    if (!s) {
      s = { min: Infinity, max: -Infinity, sample: new Float32Array(CAP), size: 0 };
      this.seen.set(name, s);
    }
    for (let i = 0; i < values.length; i++) {
      const v = values[i];
      if (v < s.min) s.min = v;
      if (v > s.max) s.max = v;
    }
    const step = Math.max(1, Math.floor(values.length / PER_BATCH));
    for (let i = 0; i < values.length; i += step) {
      if (s.size === CAP) {
        // Full: keep every other value, deterministically.
        for (let j = 0; j < CAP / 2; j++) s.sample[j] = s.sample[2 * j];
        s.size = CAP / 2;
      }
      s.sample[s.size++] = values[i];
    }
  }

  /**
   * The range of a tensor: its exact extremes (`minmax`) or the `percentile` (default 99.99) and its
   * mirror of the sampled values, never outside the extremes.
   */
  range(name: string, method: CalibrationMethod, percentile = 99.99): Range {
    const s = this.seen.get(name);
    if (!s) throw new RangeError(`no values were collected for ${name}`);
    if (method === 'minmax' || s.size === 0) return { min: s.min, max: s.max };
    const sorted = s.sample.slice(0, s.size).sort();
    const p = percentile / 100;
    return {
      min: Math.max(s.min, quantileSorted(sorted, 1 - p)),
      max: Math.min(s.max, quantileSorted(sorted, p)),
    };
  }
}
