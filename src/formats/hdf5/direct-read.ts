// Rows of an HDF5 dataset read without libhdf5, through the chunk index (chunk-index.ts): the chunks of
// the rows are fetched (coalesced, by a ByteSource), inflated in parallel off the main thread (libdeflate
// or Node's zlib, codecs/deflate.ts) straight into the rows' buffer when a chunk is whole rows of it
// (unshuffled straight into it when shuffled), else into a buffer of its own and copied. A dataset the
// index does not cover is reported (`undefined`), and the caller reads it through libhdf5: the two paths
// never disagree silently. A chunk that does not decode is an error naming it (E_CORRUPT).
import type { TypedArray } from '../../tensor/dtype.js';
import type { ArrayInfo } from '../arrays/layout.js';
import { CaiError, ErrorCodes } from '../../errors.js';
import {
  checkPipeline,
  ChunkDecodeError,
  copyChunk,
  decodeChunkInto,
  viewable,
  viewAs,
} from './chunk-decode.js';
import { NotCovered, type ChunkInfo, type DatasetLayout, type Hdf5Index } from './chunk-index.js';
import { widen } from './h5-file.js';

/** A byte span of the file. */
export interface Span {
  readonly start: number;
  readonly end: number;
}

/** Where chunk bytes come from: a local file, or a remote object by coalesced ranged GETs. */
export interface ByteSource {
  /**
   * The bytes of each of `spans` (sorted by start). `later` are spans the same partition will read next
   * (a remote source may fetch them in the same request).
   */
  get(spans: readonly Span[], later: readonly Span[]): Promise<Uint8Array[]>;
  /** Told that the arrays a `get` returned are no longer read (a local source reuses their memory). */
  release?(parts: readonly Uint8Array[]): void;
  /** Reads bytes from `start` straight into `dst` (a local file: no buffer in between). */
  readInto?(start: number, dst: Uint8Array): Promise<void>;
}

interface Decoded {
  readonly chunk: ChunkInfo;
  readonly data: Uint8Array;
}

/** A dataset's state: its layout, or why it is not covered; decoded chunks kept for the next batch. */
interface State {
  readonly layout?: DatasetLayout;
  readonly why?: string;
  kept: Decoded[];
}

/**
 * Reads rows of datasets through an {@link Hdf5Index} and a {@link ByteSource}.
 *
 * @example const r = new DirectReader(index, source); const rows = await r.read(array, 0, 64, 1000);
 */
export class DirectReader {
  private readonly states = new Map<string, Promise<State>>();

  /** Scratch buffers (shuffled bytes between inflating and unshuffling), reused chunk after chunk. */
  private readonly scratch: Uint8Array[] = [];

  constructor(
    private readonly index: Hdf5Index,
    private readonly source: ByteSource,
    /** The file, as errors name it. */
    private readonly name = 'HDF5 file',
  ) {}

  private state(array: ArrayInfo): Promise<State> {
    let p = this.states.get(array.path);
    if (!p) {
      p = this.index.dataset(array.path).then(
        (layout) => {
          const why = mismatch(layout, array);
          return why ? { why, kept: [] } : { layout, kept: [] };
        },
        (err: unknown) => {
          // Anything but a storage error: metadata this reader does not follow; libhdf5 reads it.
          if (!(err instanceof CaiError)) return { why: (err as Error).message, kept: [] };
          throw err;
        },
      );
      this.states.set(array.path, p);
    }
    return p;
  }

  /** Why `array` is read through libhdf5, or `undefined` when it is read here. */
  async notCovered(array: ArrayInfo): Promise<string | undefined> {
    return (await this.state(array)).why;
  }

  /**
   * Rows `[start, end)` of `array` (the partition reads up to row `until`), or `undefined` when the
   * index does not cover the dataset.
   */
  async read(array: ArrayInfo, start: number, end: number, until: number): Promise<TypedArray | undefined> {
    const st = await this.state(array);
    try {
      return await this.readRows(st, array, start, end, until);
    } catch (err) {
      // Not covered after all (an unwritten chunk), bytes past the end of a damaged file: libhdf5 reads
      // these rows, and reports the damage if there is any. Storage errors and chunks that do not decode
      // (E_CORRUPT, naming the chunk) go to the caller as they are.
      if (!(err instanceof CaiError)) {
        this.fallbacks++;
        st.kept = [];
        return undefined;
      }
      throw err;
    }
  }

  /** How many reads were handed back to libhdf5 after starting here. */
  fallbacks = 0;

  private async readRows(
    st: State,
    array: ArrayInfo,
    start: number,
    end: number,
    until: number,
  ): Promise<TypedArray | undefined> {
    const layout = st.layout;
    if (!layout) return undefined;
    const size = layout.type.size;
    const rowBytes = layout.shape.slice(1).reduce((a, b) => a * b, 1) * size;
    // Not zeroed: every byte is written below, or the read fails and the buffer is dropped.
    const out = Buffer.allocUnsafeSlow(Math.max(0, end - start) * rowBytes);
    const buffer = out.buffer;
    if (end > start && layout.kind === 'contiguous') {
      const want = { start: layout.address + start * rowBytes, end: layout.address + end * rowBytes };
      const later = until > end ? [{ start: want.end, end: layout.address + until * rowBytes }] : [];
      if (this.source.readInto) await this.source.readInto(want.start, out);
      else out.set((await this.source.get([want], later))[0]);
    } else if (end > start && layout.kind === 'chunked') {
      await this.readChunked(st, array.path, layout, start, end, until, out);
    }
    return widen(viewAs(layout.type.name, buffer), array) as TypedArray;
  }

  private async readChunked(
    st: State,
    path: string,
    layout: Extract<DatasetLayout, { kind: 'chunked' }>,
    start: number,
    end: number,
    until: number,
    out: Uint8Array,
  ): Promise<void> {
    const { chunk, shape, filters } = layout;
    const size = layout.type.size;
    const rows = chunk[0];
    const first = Math.floor(start / rows) * rows;
    const need = await layout.chunks(first, end);
    // Every chunk of the rows must be stored (an unwritten chunk reads as the fill value: libhdf5's job).
    const perRow = shape.slice(1).reduce((n, d, i) => n * Math.ceil(d / chunk[i + 1]), 1);
    const expectedCount = (Math.ceil(end / rows) - first / rows) * perRow;
    if (need.length !== expectedCount) throw new NotCovered('a chunk of these rows is not written');
    const kept = new Map(st.kept.map((k) => [k.chunk.address, k]));
    const fetch = need.filter((c) => !kept.has(c.address)).sort((a, b) => a.address - b.address);
    const later =
      until > end
        ? (await layout.chunks(Math.ceil(end / rows) * rows, until))
            .map((c) => ({ start: c.address, end: c.address + c.size }))
            .sort((a, b) => a.start - b.start)
        : [];
    const stored = await this.source.get(
      fetch.map((c) => ({ start: c.address, end: c.address + c.size })),
      later,
    );
    const chunkBytes = chunk.reduce((a, b) => a * b, 1) * size;
    // A chunk as wide as the dataset in every dimension but the first, whose rows all lie in these rows
    // (and in the dataset), is these rows' bytes at its place: it is decoded there, not copied.
    const wholeRows = chunk.every((d, i) => i === 0 || d === shape[i]);
    const rowBytes = chunkBytes / rows;
    const inPlace = (c: ChunkInfo) =>
      wholeRows && c.offset[0] >= start && c.offset[0] + rows <= Math.min(end, shape[0]);
    const decode = async (c: ChunkInfo, bytes: Uint8Array, dst: Uint8Array) => {
      let scratch: Uint8Array | undefined;
      const what = `dataset "/${path}", chunk at [${c.offset.join(', ')}] (${c.size} bytes at byte ${c.address})`;
      try {
        await decodeChunkInto(bytes, filters, c.filterMask, dst, size, what, () => {
          scratch = this.scratch.pop();
          if (scratch?.byteLength !== chunkBytes) scratch = new Uint8Array(chunkBytes);
          return scratch;
        });
      } catch (err) {
        if (!(err instanceof ChunkDecodeError)) throw err;
        throw new CaiError(
          ErrorCodes.corrupt,
          this.name,
          `${err.message}; the file is damaged: write or upload it again`,
          { cause: err },
        );
      } finally {
        if (scratch && this.scratch.length < KEEP_SCRATCH) this.scratch.push(scratch);
      }
    };
    // Chunks decode in parallel (on koffi's or libuv's threads); each not decoded in place is copied into
    // the rows as soon as it is ready. All settle before a failure is thrown: no thread still writes into
    // a buffer dropped.
    const settled = await Promise.allSettled([
      ...need
        .filter((c) => kept.has(c.address))
        .map(async (c) =>
          copyChunk((kept.get(c.address) as Decoded).data, c.offset, chunk, shape, size, out, start, end),
        ),
      ...fetch.map(async (c, i) => {
        if (inPlace(c)) {
          const at = (c.offset[0] - start) * rowBytes;
          await decode(c, stored[i], out.subarray(at, at + chunkBytes));
          return;
        }
        const data = new Uint8Array(chunkBytes);
        await decode(c, stored[i], data);
        kept.set(c.address, { chunk: c, data });
        copyChunk(data, c.offset, chunk, shape, size, out, start, end);
      }),
    ]);
    this.source.release?.(stored);
    for (const r of settled) if (r.status === 'rejected') throw r.reason;
    // Chunks reaching past these rows are kept for the next batch.
    st.kept = need.filter((c) => c.offset[0] + rows > end).map((c) => kept.get(c.address) as Decoded);
  }
}

/** Scratch buffers kept between chunks (the chunks in flight at once, about). */
const KEEP_SCRATCH = 8;

/** Why the layout read here cannot stand for what libhdf5 reports for `array`, or `undefined`. */
function mismatch(layout: DatasetLayout, array: ArrayInfo): string | undefined {
  if (array.strings || !array.dtype) return 'not a numeric dataset';
  if (layout.type.name !== array.stored) return `stored type ${layout.type.name} vs ${array.stored}`;
  if (!viewable(layout.type.name)) return `stored type ${layout.type.name}`;
  if (layout.shape.length !== array.shape.length || layout.shape.some((d, i) => d !== array.shape[i]))
    return 'shape differs';
  if (layout.shape.length === 0) return 'a scalar';
  if (layout.kind === 'chunked') {
    try {
      checkPipeline(layout.filters);
    } catch (err) {
      return (err as Error).message;
    }
  }
  return undefined;
}
