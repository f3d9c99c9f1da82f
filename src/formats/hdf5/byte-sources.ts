// Where the chunk index and the direct reads get their bytes: a local file (read in place, adjacent
// chunks in one read), or a remote object (ranged GETs: all the chunks a partition still needs from a
// dataset in one request, up to `maxFetch` bytes; fetched spans kept so nothing is fetched twice).
import { open } from 'node:fs/promises';
import type { ReadBytes } from './chunk-index.js';
import type { ByteSource, Span } from './direct-read.js';

/** Chunks closer than this are read together (the bytes between are read and dropped). */
const LOCAL_GAP = 64 * 1024;
/** For remote objects the bytes between chunks are paid for: only small gaps are bridged. */
const REMOTE_GAP = 4 * 1024;
/** The largest single local read. */
const LOCAL_RUN = 16 * 1024 * 1024;

/** Groups spans (sorted by start) into runs read at once; returns each run's first and last index. */
function runs(spans: readonly Span[], gap: number, most: number): [number, number][] {
  const out: [number, number][] = [];
  for (let i = 0; i < spans.length; i++) {
    const last = out.at(-1);
    if (
      last &&
      spans[i].start >= spans[last[1]].end &&
      spans[i].start - spans[last[1]].end <= gap &&
      spans[i].end - spans[last[0]].start <= most
    )
      last[1] = i;
    else out.push([i, i]);
  }
  return out;
}

/** Bytes `[start, end)` of a local file, through a file descriptor opened for each read (metadata). */
export function localReader(file: string): ReadBytes {
  return async (start, end) => {
    const fh = await open(file, 'r');
    try {
      const b = Buffer.allocUnsafe(end - start);
      const { bytesRead } = await fh.read(b, 0, b.length, start);
      if (bytesRead !== b.length) throw new Error(`${file}: bytes [${start}, ${end}) past its end`);
      return b;
    } finally {
      await fh.close();
    }
  };
}

/**
 * A metadata reader over `read`: reads come from `seeds` (spans already in memory) when they hold them,
 * else from aligned pages of `page` bytes (0: exactly what is asked), kept for later reads.
 *
 * @example const meta = pagedReader(size, localReader(file), 64 * 1024);
 */
export function pagedReader(
  size: number,
  read: ReadBytes,
  page: number,
  seeds: { readonly start: number; readonly data: Uint8Array }[] = [],
  /** Told of every span fetched (so chunk reads can take bytes from them too). */
  onFetch?: (start: number, data: Uint8Array) => void,
): ReadBytes {
  const pages = new Map<number, Promise<Uint8Array>>();
  const kept = [...seeds];
  const fromKept = (start: number, end: number) => {
    for (const s of kept)
      if (start >= s.start && end <= s.start + s.data.byteLength)
        return s.data.subarray(start - s.start, end - s.start);
    return undefined;
  };
  return async (start, end) => {
    const have = fromKept(start, end);
    if (have) return have;
    if (page <= 0) {
      const data = await read(start, end);
      kept.push({ start, data });
      onFetch?.(start, data);
      return data;
    }
    const first = Math.floor(start / page);
    const last = Math.floor((end - 1) / page);
    const parts: Uint8Array[] = [];
    for (let p = first; p <= last; p++) {
      let got = pages.get(p);
      if (!got) {
        const at = p * page;
        got = read(at, Math.min(size, at + page));
        pages.set(p, got);
        if (onFetch)
          void got.then(
            (data) => onFetch(at, data),
            () => undefined,
          );
      }
      parts.push(await got);
    }
    const all = parts.length === 1 ? parts[0] : Buffer.concat(parts);
    return all.subarray(start - first * page, end - first * page);
  };
}

/** Read buffers a local source keeps for its next reads (one per column read at once, about). */
const KEEP_BUFFERS = 2;

/**
 * Chunk bytes of a local file, read in place: spans close together in one read, into a buffer reused
 * once the caller releases what it got (no fresh pages to fault in for every batch). Close when done.
 *
 * @example const src = await LocalBytes.open('/data/galaxy10.h5'); await src.get([{ start: 4096, end: 9000 }], []);
 */
export class LocalBytes implements ByteSource {
  private readonly free: Buffer[] = [];
  /** The buffer each `get`'s answer lies in, until released. */
  private readonly lent = new WeakMap<readonly Uint8Array[], Buffer>();

  private constructor(private readonly fh: Awaited<ReturnType<typeof open>>) {}

  static async open(file: string): Promise<LocalBytes> {
    return new LocalBytes(await open(file, 'r'));
  }

  private take(size: number): Buffer {
    let best = -1;
    for (let i = 0; i < this.free.length; i++)
      if (
        this.free[i].byteLength >= size &&
        (best < 0 || this.free[i].byteLength < this.free[best].byteLength)
      )
        best = i;
    if (best >= 0) return this.free.splice(best, 1)[0];
    // Rounded up to 1 MiB, so batches of slightly different sizes reuse it.
    return Buffer.allocUnsafeSlow(Math.ceil(size / 2 ** 20) * 2 ** 20);
  }

  async get(spans: readonly Span[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = new Array<Uint8Array>(spans.length);
    const groups = runs(spans, LOCAL_GAP, LOCAL_RUN);
    const size = groups.reduce((n, [a, b]) => n + spans[b].end - spans[a].start, 0);
    const buf = this.take(size);
    try {
      let at = 0;
      await Promise.all(
        groups.map(async ([a, b]) => {
          const start = spans[a].start;
          const end = spans[b].end;
          const into = at;
          at += end - start;
          const { bytesRead } = await this.fh.read(buf, into, end - start, start);
          if (bytesRead !== end - start) throw new Error(`bytes [${start}, ${end}) lie past the file's end`);
          for (let i = a; i <= b; i++)
            out[i] = buf.subarray(into + spans[i].start - start, into + spans[i].end - start);
        }),
      );
    } catch (err) {
      this.giveBack(buf);
      throw err;
    }
    this.lent.set(out, buf);
    return out;
  }

  release(parts: readonly Uint8Array[]): void {
    const buf = this.lent.get(parts);
    this.lent.delete(parts);
    if (buf) this.giveBack(buf);
  }

  private giveBack(buf: Buffer): void {
    this.free.push(buf);
    if (this.free.length > KEEP_BUFFERS) this.free.sort((x, y) => y.byteLength - x.byteLength).pop();
  }

  async readInto(start: number, dst: Uint8Array): Promise<void> {
    const { bytesRead } = await this.fh.read(dst, 0, dst.byteLength, start);
    if (bytesRead !== dst.byteLength)
      throw new Error(`bytes [${start}, ${start + dst.byteLength}) lie past the file's end`);
  }

  close(): Promise<void> {
    this.free.length = 0;
    return this.fh.close();
  }
}

interface Fetched {
  readonly start: number;
  readonly end: number;
  readonly data: Promise<Uint8Array>;
}

/**
 * Chunk bytes of a remote object through `getRange` (one ranged GET each call): a span not yet fetched
 * starts a GET that also takes the spans after it the partition will need (`later`), while they follow
 * within a few KiB, up to `maxFetch` bytes; fetched spans are kept, most recent first, up to `keepBytes`.
 *
 * @example const src = new RemoteBytes((a, b) => store.getRange(key, a, b), 16 << 20, 48 << 20);
 */
export class RemoteBytes implements ByteSource {
  private fetched: Fetched[] = [];
  private kept = 0;

  constructor(
    private readonly getRange: (start: number, end: number) => Promise<Uint8Array>,
    private readonly maxFetch: number,
    private readonly keepBytes: number,
    /** Spans already in memory (what opening the object fetched): never fetched again. */
    seeds: readonly { readonly start: number; readonly data: Uint8Array }[] = [],
  ) {
    for (const s of seeds) {
      this.fetched.push({ start: s.start, end: s.start + s.data.byteLength, data: Promise.resolve(s.data) });
      this.kept += s.data.byteLength;
    }
  }

  /** The parts of `s` no fetched span holds. */
  private uncovered(s: Span): Span[] {
    let parts: Span[] = [s];
    for (const f of this.fetched) {
      const next: Span[] = [];
      for (const p of parts) {
        if (f.end <= p.start || f.start >= p.end) next.push(p);
        else {
          if (f.start > p.start) next.push({ start: p.start, end: f.start });
          if (f.end < p.end) next.push({ start: f.end, end: p.end });
        }
      }
      parts = next;
      if (!parts.length) break;
    }
    return parts;
  }

  async get(spans: readonly Span[], later: readonly Span[]): Promise<Uint8Array[]> {
    const missing = spans.flatMap((s) => this.uncovered(s));
    if (missing.length) {
      const all = [...missing, ...later.flatMap((s) => this.uncovered(s))].sort((a, b) => a.start - b.start);
      const wanted = new Set(missing);
      for (const [a, b] of runs(all, REMOTE_GAP, this.maxFetch)) {
        // A run of spans only read later waits for its own turn.
        if (!all.slice(a, b + 1).some((x) => wanted.has(x))) continue;
        const start = all[a].start;
        const end = all[b].end;
        const data = this.getRange(start, end);
        data.catch(() => undefined);
        this.fetched.unshift({ start, end, data });
        this.kept += end - start;
      }
    }
    // The pieces each span is made of (usually one).
    const from = spans.map((s) =>
      this.fetched.filter((f) => f.start < s.end && f.end > s.start).sort((x, y) => x.start - y.start),
    );
    // The oldest spans go first; those this read needs stay.
    while (this.kept > this.keepBytes && this.fetched.length > 1) {
      if (from.some((p) => p.includes(this.fetched[this.fetched.length - 1]))) break;
      const old = this.fetched.pop() as Fetched;
      this.kept -= old.end - old.start;
    }
    return Promise.all(
      spans.map(async (s, i) => {
        const pieces = from[i];
        const whole = pieces.find((f) => f.start <= s.start && f.end >= s.end);
        if (whole) return (await whole.data).subarray(s.start - whole.start, s.end - whole.start);
        const out = new Uint8Array(s.end - s.start);
        for (const f of pieces) {
          const d = await f.data;
          const a = Math.max(s.start, f.start);
          const b = Math.min(s.end, f.end);
          out.set(d.subarray(a - f.start, b - f.start), a - s.start);
        }
        return out;
      }),
    );
  }
}
