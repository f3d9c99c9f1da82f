// Rows of an HDF5 dataset read without libhdf5, through the chunk index (chunk-index.ts): the chunks of
// the rows are fetched (coalesced, by a ByteSource), inflated with Node's native zlib in parallel,
// unshuffled and copied straight into the rows' buffer. A dataset the index does not cover is reported
// (`undefined`), and the caller reads it through libhdf5: the two paths never disagree silently.
import type { TypedArray } from '../../tensor/dtype.js';
import type { ArrayInfo } from '../arrays/layout.js';
import { CaiError } from '../../errors.js';
import { checkPipeline, copyChunk, decodeChunk, viewable, viewAs } from './chunk-decode.js';
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

  constructor(
    private readonly index: Hdf5Index,
    private readonly source: ByteSource,
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
      // Not covered after all (an unwritten chunk), a chunk that does not decode, bytes past the end of
      // a damaged file: libhdf5 reads these rows, and reports the damage if there is any. Storage errors
      // (with their codes) go to the caller as they are.
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
    const buffer = new ArrayBuffer(Math.max(0, end - start) * rowBytes);
    const out = new Uint8Array(buffer);
    if (end > start && layout.kind === 'contiguous') {
      const want = { start: layout.address + start * rowBytes, end: layout.address + end * rowBytes };
      const later = until > end ? [{ start: want.end, end: layout.address + until * rowBytes }] : [];
      const [bytes] = await this.source.get([want], later);
      out.set(bytes);
    } else if (end > start && layout.kind === 'chunked') {
      await this.readChunked(st, layout, start, end, until, out);
    }
    return widen(viewAs(layout.type.name, buffer), array) as TypedArray;
  }

  private async readChunked(
    st: State,
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
    // Each chunk is copied into the rows as soon as it is inflated (zlib works on the others meanwhile).
    await Promise.all([
      ...need
        .filter((c) => kept.has(c.address))
        .map(async (c) =>
          copyChunk((kept.get(c.address) as Decoded).data, c.offset, chunk, shape, size, out, start, end),
        ),
      ...fetch.map(async (c, i) => {
        const data = await decodeChunk(stored[i], filters, c.filterMask, chunkBytes, size);
        kept.set(c.address, { chunk: c, data });
        copyChunk(data, c.offset, chunk, shape, size, out, start, end);
      }),
    ]);
    // Chunks reaching past these rows are kept for the next batch.
    st.kept = need.filter((c) => c.offset[0] + rows > end).map((c) => kept.get(c.address) as Decoded);
  }
}

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
