// The chunk indexes of the data layout message version 4 (HDF5 >= 1.10, h5py's libver "v110"/"latest";
// File Format Specification 3.0, appendix C): single chunk, implicit, fixed array, extensible array and
// version 2 B-tree. Each reads only the index blocks that hold the chunks of the rows asked (the fixed
// array's pages, the extensible array's index block and the data and super blocks under those rows, the
// B-tree nodes whose keys span them), verifies each block's lookup3 checksum, and lists the stored chunks;
// unallocated chunks are left out (the caller then reads those rows through libhdf5, which fills them).
import { BTree2 } from './btree2.js';
import { ExtensibleArray, FixedArray, type Element } from './chunk-arrays.js';
import { Cursor, NotCovered, UNDEFINED, type Meta } from './meta.js';

/** One stored chunk: where it is, its stored bytes, which filters were skipped for it. */
export interface ChunkInfo {
  /** Element offsets of its first element, per dimension. */
  readonly offset: readonly number[];
  readonly address: number;
  readonly size: number;
  readonly filterMask: number;
}

/** The chunks whose first row is in `[rowStart, rowEnd)`. */
export type ChunkLister = (rowStart: number, rowEnd: number) => Promise<ChunkInfo[]>;

/** What a v4 index needs to know of its dataset. */
export interface ChunkGrid {
  readonly shape: readonly number[];
  /** Maximum dimensions ({@link UNDEFINED} for unlimited). */
  readonly max: readonly number[];
  readonly chunk: readonly number[];
  /** Bytes of an uncompressed chunk. */
  readonly chunkBytes: number;
  readonly filtered: boolean;
}

const INDEX = { single: 1, implicit: 2, fixedArray: 3, extensibleArray: 4, btree2: 5 } as const;

/**
 * Reads the index part of a v4 layout message (cursor just after the chunk dimensions; `flags` is the
 * message's flags byte) and returns the lister of the dataset's chunks.
 */
export function v4Chunks(meta: Meta, c: Cursor, flags: number, grid: ChunkGrid): ChunkLister {
  const type = c.u8();
  const n = grid.shape.length;
  const scaledRange = (rowStart: number, rowEnd: number) => {
    const first = Math.ceil(Math.max(0, rowStart) / grid.chunk[0]);
    const last = Math.ceil(Math.min(rowEnd, grid.shape[0]) / grid.chunk[0]);
    return [first, last] as const;
  };
  // Every chunk (scaled coordinates) whose first row is in the range, within the current shape.
  const wanted = (rowStart: number, rowEnd: number): number[][] => {
    const [first, last] = scaledRange(rowStart, rowEnd);
    const counts = grid.shape.map((d, i) => Math.ceil(d / grid.chunk[i]));
    const out: number[][] = [];
    const at = new Array<number>(n).fill(0);
    const rec = (d: number) => {
      if (d === n) return void out.push([...at]);
      for (let i = d === 0 ? first : 0; i < (d === 0 ? last : counts[d]); i++) {
        at[d] = i;
        rec(d + 1);
      }
    };
    if (counts.every((x) => x > 0)) rec(0);
    return out;
  };
  const offsetOf = (scaled: readonly number[]) => scaled.map((s, i) => s * grid.chunk[i]);
  // Linear index of a chunk in an array sized by the maximum dimensions (fixed array, implicit).
  const linear = (order: readonly number[]) => {
    const counts = order.map((d) => Math.ceil((grid.max[d] === UNDEFINED ? 1 : grid.max[d]) / grid.chunk[d]));
    const down = new Array<number>(n).fill(1);
    for (let i = n - 2; i >= 0; i--) down[i] = down[i + 1] * counts[i + 1];
    return (scaled: readonly number[]) => order.reduce((sum, d, i) => sum + scaled[d] * down[i], 0);
  };
  const identity = grid.shape.map((_, i) => i);

  if (type === INDEX.single) {
    const filtered = (flags & 0x02) !== 0;
    const size = filtered ? c.len() : grid.chunkBytes;
    const filterMask = filtered ? c.u32() : 0;
    const address = c.addr();
    if (filtered !== grid.filtered)
      throw new NotCovered('a single chunk whose filter flag is not its pipeline');
    if (grid.shape.some((d, i) => d > grid.chunk[i]))
      throw new NotCovered('a single chunk smaller than its dataset');
    return async (rowStart, rowEnd) =>
      address === UNDEFINED || !(rowStart <= 0 && rowEnd > 0)
        ? []
        : [{ offset: new Array<number>(n).fill(0), address: meta.base + address, size, filterMask }];
  }
  if (type === INDEX.implicit) {
    const address = c.addr();
    if (grid.filtered) throw new NotCovered('an implicit chunk index with filters');
    const index = linear(identity);
    return async (rowStart, rowEnd) =>
      address === UNDEFINED
        ? []
        : wanted(rowStart, rowEnd).map((s) => ({
            offset: offsetOf(s),
            address: meta.base + address + index(s) * grid.chunkBytes,
            size: grid.chunkBytes,
            filterMask: 0,
          }));
  }
  if (type === INDEX.fixedArray) {
    c.u8(); // page bits, also in the array's header
    const address = c.addr();
    if (address === UNDEFINED) return async () => [];
    const array = new FixedArray(meta, meta.base + address, grid.filtered, grid.chunkBytes);
    const index = linear(identity);
    return async (rowStart, rowEnd) => {
      const want = wanted(rowStart, rowEnd);
      const got = await array.get(want.map(index));
      return listed(want, got, offsetOf);
    };
  }
  if (type === INDEX.extensibleArray) {
    c.skip(5); // creation parameters, also in the array's header
    const address = c.addr();
    const unlimited = grid.max.flatMap((m, i) => (m === UNDEFINED ? [i] : []));
    if (unlimited.length !== 1)
      throw new NotCovered('an extensible array index without one unlimited dimension');
    if (address === UNDEFINED) return async () => [];
    const array = new ExtensibleArray(meta, meta.base + address, grid.filtered, grid.chunkBytes);
    // libhdf5 moves the unlimited dimension first ("swizzles") before computing the linear index.
    const index = linear([unlimited[0], ...identity.filter((d) => d !== unlimited[0])]);
    return async (rowStart, rowEnd) => {
      const want = wanted(rowStart, rowEnd);
      const got = await array.get(want.map(index));
      return listed(want, got, offsetOf);
    };
  }
  if (type === INDEX.btree2) {
    c.skip(6); // node size, split and merge percents, also in the tree's header
    const address = c.addr();
    if (address === UNDEFINED) return async () => [];
    const tree = new ChunkBTree2(meta, meta.base + address, grid.filtered, n, grid.chunkBytes);
    return async (rowStart, rowEnd) => {
      const [first, last] = scaledRange(rowStart, rowEnd);
      if (last <= first) return [];
      const counts = grid.shape.map((d, i) => Math.ceil(d / grid.chunk[i]));
      const out: ChunkInfo[] = [];
      for (const r of await tree.rows(first, last - 1)) {
        // Chunks outside the current shape (a dataset shrunk after writing) are not the dataset's.
        if (r.scaled.some((s, i) => s >= counts[i])) continue;
        out.push({ offset: offsetOf(r.scaled), address: r.address, size: r.size, filterMask: r.filterMask });
      }
      return out;
    };
  }
  throw new NotCovered(`chunk index type ${type}`);
}

function listed(
  want: readonly number[][],
  got: readonly (Element | undefined)[],
  offsetOf: (s: readonly number[]) => number[],
): ChunkInfo[] {
  const out: ChunkInfo[] = [];
  want.forEach((s, i) => {
    const e = got[i];
    if (e) out.push({ offset: offsetOf(s), ...e });
  });
  return out;
}

/** A record of a v2 B-tree of chunks (types 10 and 11). */
interface ChunkRecord {
  readonly address: number;
  readonly size: number;
  readonly filterMask: number;
  readonly scaled: readonly number[];
}

/** The v2 B-tree of a chunked dataset's chunks (record type 10 unfiltered, 11 filtered). */
class ChunkBTree2 {
  private readonly tree: BTree2<ChunkRecord>;

  constructor(meta: Meta, address: number, filtered: boolean, ndims: number, chunkBytes: number) {
    this.tree = new BTree2(meta, address, filtered ? 11 : 10, (c, recordSize) => {
      const address = c.addr();
      const sizeBytes = recordSize - meta.o - 4 - 8 * ndims;
      if (filtered ? sizeBytes < 1 || sizeBytes > 8 : sizeBytes !== -4)
        throw new NotCovered(`v2 B-tree chunk records of ${recordSize} bytes`);
      const size = filtered ? c.uint(sizeBytes) : chunkBytes;
      const filterMask = filtered ? c.u32() : 0;
      const scaled = Array.from({ length: ndims }, () => c.uint(8));
      return { address: address === UNDEFINED ? UNDEFINED : meta.base + address, size, filterMask, scaled };
    });
  }

  /** The records whose first scaled coordinate is in `[first, last]`. */
  async rows(first: number, last: number): Promise<ChunkRecord[]> {
    const out: ChunkRecord[] = [];
    await this.tree.walk(
      (r) => {
        if (r.scaled[0] >= first && r.scaled[0] <= last && r.address !== UNDEFINED) out.push(r);
      },
      (left, right) => (!left || left.scaled[0] <= last) && (!right || right.scaled[0] >= first),
    );
    return out;
  }
}
