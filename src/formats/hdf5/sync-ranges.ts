// The synchronous side of a remote HDF5 file: libhdf5 (in h5wasm) reads with pread() and must have the
// bytes before it returns, so the thread running it blocks (Atomics.wait) while the main thread makes
// the ranged GET. What it asks for is chosen here, to keep requests few and bytes close to what is read:
// - small reads outside a chunked read (superblock, object headers, heaps) fetch the aligned page around
//   them, since libhdf5 makes dozens of them close together while opening a file;
// - a read while chunks are expected fetches, in one GET, as many bytes as the chunks the partition still
//   needs from this dataset, each taken to be about the size of this one (libhdf5 reads chunks in file
//   order, and h5py writes them one after the other): a partition's rows cost about one request per
//   column, bounded by `maxFetch` bytes a request (a chunk libhdf5 kept in its own cache may make the
//   count one too many: at most one chunk more);
// - fetched spans are kept (most recent first, up to `keepBytes`), so a chunk shared by two batches, or
//   fetched ahead, is not fetched again.

/** How a {@link SyncRanges} reader fetches: the page of small reads, the largest GET, what it keeps. */
export interface SyncRangeOptions {
  /** Bytes of the aligned page fetched around a small (metadata) read. */
  readonly page: number;
  /** The most bytes asked in one request. */
  readonly maxFetch: number;
  /** Bytes of fetched spans kept for later reads. */
  readonly keepBytes: number;
}

/** The defaults: 64 KiB pages, 16 MiB requests, 48 MiB kept. */
export const SYNC_RANGE_DEFAULTS: SyncRangeOptions = Object.freeze({
  page: 64 * 1024,
  maxFetch: 16 * 1024 * 1024,
  keepBytes: 48 * 1024 * 1024,
});

interface Span {
  readonly start: number;
  readonly data: Uint8Array;
}

/**
 * A file of `size` bytes read through `fetch(start, end)` (a blocking ranged GET), with the fetch policy
 * above. `expectChunks(n)` says how many chunk reads the next slice makes.
 *
 * @example const r = new SyncRanges(size, (a, b) => blockingGet(a, b)); r.read(buf, 0, 8, 0);
 */
export class SyncRanges {
  private spans: Span[] = [];
  private kept = 0;
  private expected = 0;
  private readonly o: SyncRangeOptions;

  constructor(
    readonly size: number,
    private readonly fetch: (start: number, end: number) => Uint8Array,
    options: Partial<SyncRangeOptions> = {},
  ) {
    this.o = { ...SYNC_RANGE_DEFAULTS, ...options };
  }

  /** The reads to come are `chunks` chunk reads (0: none known, a contiguous dataset or metadata). */
  expectChunks(chunks: number): void {
    this.expected = chunks;
  }

  /** Copies bytes `[position, position + length)` into `into` at `offset`; returns how many exist. */
  read(into: Uint8Array, offset: number, length: number, position: number): number {
    const end = Math.min(this.size, position + length);
    if (end <= position) return 0;
    const expected = this.expected;
    let at = position;
    while (at < end) {
      const span = this.find(at) ?? this.fill(at, end, expected);
      const from = at - span.start;
      const n = Math.min(end - at, span.data.byteLength - from);
      if (n <= 0) throw new Error(`no bytes at ${at} of ${this.size}`);
      into.set(span.data.subarray(from, from + n), offset + (at - position));
      at += n;
    }
    // One chunk read done, whether it was fetched now or earlier.
    if (this.expected > 0) this.expected--;
    return end - position;
  }

  private find(at: number): Span | undefined {
    const i = this.spans.findIndex((s) => at >= s.start && at < s.start + s.data.byteLength);
    if (i < 0) return undefined;
    const [s] = this.spans.splice(i, 1);
    this.spans.unshift(s);
    return s;
  }

  /** Fetches a span holding `at` (and as much of `[at, end)` and beyond as the policy says). */
  private fill(at: number, end: number, expected: number): Span {
    const { page, maxFetch } = this.o;
    let start: number;
    let stop: number;
    if (expected === 0 && end - at < page) {
      start = Math.floor(at / page) * page;
      stop = Math.max(end, start + page);
    } else {
      // A chunk: this one and the rest expected, taken to be of about the same size and adjacent.
      start = at;
      stop = at + (end - at) * Math.max(1, expected);
    }
    stop = Math.min(this.size, stop, start + Math.max(maxFetch, end - start));
    // Never fetch again what a kept span already holds (`at` itself is in none).
    for (const s of this.spans) {
      const sEnd = s.start + s.data.byteLength;
      if (s.start > at && s.start < stop) stop = s.start;
      if (s.start < at && sEnd > start) start = Math.min(at, sEnd);
    }
    const data = this.fetch(start, stop);
    const span = { start, data };
    this.spans.unshift(span);
    this.kept += data.byteLength;
    while (this.kept > this.o.keepBytes && this.spans.length > 1) {
      this.kept -= (this.spans.pop() as Span).data.byteLength;
    }
    return span;
  }
}
