import { Random } from '../tensor/random.js';

/** Bins a {@link StreamingHistogram} keeps, whatever the number of values. */
const BINS = 1024;
/** Values kept in its uniform sample, for when a few outliers make the bins too coarse for the bulk. */
const SAMPLE = 10_000;

/**
 * A histogram of any number of values in fixed memory, built in one pass without knowing the range first:
 * bins of a power-of-two width that doubles (merging pairs of bins exactly) whenever a value falls
 * outside. Counts stay exact; only the resolution coarsens. Also keeps the exact count, min, max, mean and
 * standard deviation (Welford), counts non-finite values apart, and a uniform sample (reservoir) of
 * 10,000 values: when a few far outliers make the bins too coarse for the bulk, quantiles and bars come
 * from the sample instead (and say so).
 *
 * @example const h = new StreamingHistogram(); for (const v of values) h.add(v); h.bars(40)
 */
export class StreamingHistogram {
  private counts = new Float64Array(BINS);
  private width = 0;
  private origin = 0;
  count = 0;
  nonFinite = 0;
  min = Infinity;
  max = -Infinity;
  private meanValue = 0;
  private m2 = 0;
  private readonly sample: number[] = [];
  private sorted: number[] | undefined;
  private readonly rng = new Random(7);

  add(v: number): void {
    if (!Number.isFinite(v)) {
      this.nonFinite++;
      return;
    }
    this.count++;
    if (v < this.min) this.min = v;
    if (v > this.max) this.max = v;
    const d = v - this.meanValue;
    this.meanValue += d / this.count;
    this.m2 += d * (v - this.meanValue);
    this.sorted = undefined;
    if (this.sample.length < SAMPLE) this.sample.push(v);
    else {
      const j = Math.floor(this.rng.uniform() * this.count);
      if (j < SAMPLE) this.sample[j] = v;
    }
    if (this.width === 0) {
      // A width far below the first value's magnitude: equal values share one bin, others grow it.
      const e = v === 0 ? -40 : Math.floor(Math.log2(Math.abs(v))) - 20;
      this.width = 2 ** e;
      this.origin = Math.floor(v / this.width) * this.width - (BINS / 2) * this.width;
    }
    let i = Math.floor((v - this.origin) / this.width);
    while (i < 0 || i >= BINS) {
      this.grow();
      i = Math.floor((v - this.origin) / this.width);
    }
    this.counts[i]++;
  }

  /** Doubles the bin width around the current range's centre; each old bin falls in one new bin. */
  private grow(): void {
    const wide = this.width * 2;
    const centre = this.origin + (BINS * this.width) / 2;
    const origin = Math.floor((centre - BINS * this.width) / wide) * wide;
    const counts = new Float64Array(BINS);
    for (let i = 0; i < BINS; i++) {
      if (this.counts[i] === 0) continue;
      counts[Math.floor((this.origin + i * this.width - origin) / wide)] += this.counts[i];
    }
    this.counts = counts;
    this.width = wide;
    this.origin = origin;
  }

  get mean(): number {
    return this.count ? this.meanValue : NaN;
  }

  get std(): number {
    return this.count > 1 ? Math.sqrt(this.m2 / (this.count - 1)) : 0;
  }

  /** Whether the central 98% of the values span fewer than 64 bins: then the sample tells more. */
  get coarse(): boolean {
    const lo = Math.floor((this.binQuantile(0.01) - this.origin) / this.width);
    const hi = Math.floor((this.binQuantile(0.99) - this.origin) / this.width);
    return this.count > 0 && hi - lo < 64 && this.max > this.min;
  }

  private sortedSample(): number[] {
    this.sorted ??= [...this.sample].sort((a, b) => a - b);
    return this.sorted;
  }

  /**
   * The value below which a share `q` of the values lie: interpolated within its bin, or from the sample
   * when the bins are too coarse (see {@link coarse}).
   */
  quantile(q: number): number {
    if (!this.count) return NaN;
    if (!this.coarse) return this.binQuantile(q);
    const s = this.sortedSample();
    return s[Math.min(s.length - 1, Math.max(0, Math.round(q * (s.length - 1))))];
  }

  private binQuantile(q: number): number {
    if (!this.count) return NaN;
    const target = q * this.count;
    let seen = 0;
    for (let i = 0; i < BINS; i++) {
      const c = this.counts[i];
      if (c > 0 && seen + c >= target) {
        const v = this.origin + (i + (target - seen) / c) * this.width;
        return Math.min(this.max, Math.max(this.min, v));
      }
      seen += c;
    }
    return this.max;
  }

  /**
   * About `n` display bars over the central `1 - 2 * tail` of the values, each an exact group of whole
   * bins; values beyond are counted in the end bars (their captions say so).
   */
  bars(n: number, tail = 0.005): { from: number; to: number; count: number }[] {
    if (!this.count) return [];
    if (this.coarse) return this.sampleBars(n, tail);
    const index = (v: number) => Math.min(BINS - 1, Math.max(0, Math.floor((v - this.origin) / this.width)));
    const lo = index(this.quantile(tail));
    const hi = index(this.quantile(1 - tail));
    const group = Math.max(1, Math.ceil((hi - lo + 1) / n));
    const bars: { from: number; to: number; count: number }[] = [];
    for (let start = lo; start <= hi; start += group)
      bars.push({
        from: this.origin + start * this.width,
        to: this.origin + Math.min(start + group, hi + 1) * this.width,
        count: 0,
      });
    for (let i = 0; i < BINS; i++) {
      if (this.counts[i] === 0) continue;
      const b = Math.min(bars.length - 1, Math.max(0, Math.floor((i - lo) / group)));
      bars[b].count += this.counts[i];
    }
    return bars;
  }

  /** Whether {@link bars} counts the sample rather than every value. */
  get barsFromSample(): boolean {
    return this.coarse && this.count > this.sample.length;
  }

  private sampleBars(n: number, tail: number): { from: number; to: number; count: number }[] {
    const s = this.sortedSample();
    const lo = s[Math.round(tail * (s.length - 1))];
    const hi = s[Math.round((1 - tail) * (s.length - 1))];
    const width = (hi - lo) / n || 1e-9;
    const bars = Array.from({ length: n }, (_, i) => ({
      from: lo + i * width,
      to: lo + (i + 1) * width,
      count: 0,
    }));
    for (const v of s) bars[Math.min(n - 1, Math.max(0, Math.floor((v - lo) / width)))].count++;
    return bars;
  }
}
