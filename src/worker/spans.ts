/**
 * When each stage of a partition ran, as intervals `[start, end]` in seconds from the record's
 * `started_at`. Stages overlap for real (the next batch is read while the model runs this one), so a
 * timeline can draw them as they happened instead of adding them up.
 */
export interface StageSpans {
  /** Waiting for the partition to open (its whole read for tensor files; near nothing when prefetched). */
  readonly open?: readonly (readonly [number, number])[];
  /** Reading and decoding batches (the source's `read` and `decode`), pulled while the model runs. */
  readonly load?: readonly (readonly [number, number])[];
  readonly inference?: readonly (readonly [number, number])[];
  readonly write?: readonly (readonly [number, number])[];
}

/** Intervals kept per stage: beyond it the closest neighbours are merged, so a record stays small. */
export const MAX_SPANS_PER_STAGE = 64;

/**
 * Collects one stage's intervals, merging touching ones and, past {@link MAX_SPANS_PER_STAGE}, the pair
 * with the smallest gap: the union it draws is never shorter than the stage's time, and its gaps are the
 * longest idle stretches.
 *
 * @example const s = new SpanCollector(t0); s.add(tb, performance.now()); record.spans = { inference: s.spans() };
 */
export class SpanCollector {
  private readonly list: [number, number][] = [];

  /** @param originMs the `performance.now()` the offsets count from. */
  constructor(private readonly originMs: number) {}

  /** Adds an interval given in `performance.now()` milliseconds. */
  add(startMs: number, endMs: number): void {
    const s = (startMs - this.originMs) / 1000;
    const e = Math.max(s, (endMs - this.originMs) / 1000);
    const last = this.list[this.list.length - 1];
    if (last && s <= last[1] + 1e-4) last[1] = Math.max(last[1], e);
    else this.list.push([s, e]);
    if (this.list.length > MAX_SPANS_PER_STAGE) {
      let best = 0;
      for (let i = 1; i < this.list.length - 1; i++)
        if (this.list[i + 1][0] - this.list[i][1] < this.list[best + 1][0] - this.list[best][1]) best = i;
      this.list[best][1] = this.list[best + 1][1];
      this.list.splice(best + 1, 1);
    }
  }

  /** The intervals, rounded to the millisecond. */
  spans(): [number, number][] {
    return this.list.map(([s, e]) => [Math.round(s * 1000) / 1000, Math.round(e * 1000) / 1000]);
  }
}
