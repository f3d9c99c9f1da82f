// A Zarr store (v2 or v3) opened with zarrita: a single array, or a group whose arrays are the ones the
// job names, or those its consolidated metadata or a listing shows; rows read chunk-aware (only the
// chunks holding them are fetched).
import * as zarr from 'zarrita';
import { CaiError, ErrorCodes } from '../../errors.js';
import { mapBounded } from '../../storage/bounded.js';
import { allocateBytes, BufferPool } from '../../storage/buffer-pool.js';
import type { Store } from '../../storage/store.js';
import type { DType, TypedArray } from '../../tensor/dtype.js';
import type { ArrayInfo } from '../arrays/layout.js';
import { decodeChunk, decodeInto, decodesInPlace } from '../codecs/index.js';
import { defaultCodecs } from './codecs.js';
import { directChunks, type DirectChunks } from './direct.js';
import { zarrStore } from './store-adapter.js';

type ZArray = zarr.Array<zarr.DataType, zarr.AsyncReadable>;

/** A Zarr store open for reading. */
export interface ZarrDataset {
  readonly arrays: readonly ArrayInfo[];
  read(array: ArrayInfo, start: number, end: number): Promise<TypedArray | string[]>;
  /** Bytes fetched so far. */
  bytes(): number;
  /**
   * Takes back rows `read` returned, for a later read to reuse their memory: call it only once nothing
   * views them any more. Rows it did not allocate from its pool are ignored.
   */
  recycle(rows: TypedArray): void;
}

const DTYPES: Readonly<Record<string, DType>> = Object.freeze({
  int8: 'int8',
  uint8: 'uint8',
  int16: 'int16',
  uint16: 'int32',
  int32: 'int32',
  uint32: 'int64',
  int64: 'int64',
  float32: 'float32',
  float64: 'float64',
  bool: 'bool',
});

function infoOf(path: string, a: ZArray): ArrayInfo {
  const stored = String(a.dtype);
  const strings = /^(v2:)?[SU]\d*$|string/.test(stored);
  return { path, shape: a.shape, dtype: DTYPES[stored], strings, stored, chunkRows: a.chunks[0] };
}

function corrupt(source: string, what: string, err: unknown): CaiError {
  const why = err instanceof Error ? err.message : String(err);
  return new CaiError(
    ErrorCodes.corrupt,
    source,
    `${what} cannot be read (${why}); the store is damaged or incomplete: write or copy it again`,
    { cause: err },
  );
}

/** The array paths among `keys` (relative to the store's root), from their metadata objects. */
function arrayPathsOf(keys: Iterable<string>): string[] {
  const found = new Set<string>();
  for (const rel of keys) {
    const m = /^(?:(.*)\/)?(\.zarray|zarr\.json)$/.exec(rel);
    if (m) found.add(m[1] ?? '');
  }
  return [...found].sort();
}

/** The keys under `root` (relative to it), from a listing of the store. */
async function listKeys(store: Store, root: string): Promise<string[]> {
  const prefix = root ? `${root}/` : '';
  const keys: string[] = [];
  for await (const o of store.list(prefix)) keys.push(o.key.slice(prefix.length));
  return keys;
}

/** How {@link openZarr} finds a group's arrays without listing the whole store. */
export interface OpenZarrOptions {
  /**
   * The array paths (relative to the root) the caller reads: opened directly, so nothing is listed.
   * If one is missing, the store's arrays are found the other ways, for an error that names them.
   */
  readonly paths?: readonly string[];
  /**
   * The keys of the store's objects relative to its root, when the caller has listed them already (v3's
   * zarr.json are among them; a listing that skips hidden keys has no v2 .zarray, and the store is listed).
   */
  readonly keys?: readonly string[];
}

/**
 * Opens the Zarr store at `root` of `store` (v2 or v3, detected by zarrita). A root that is one array
 * gives one array named after the root (`cube.zarr` -> `cube`); a group gives its arrays, named by their
 * paths: the `paths` asked for, else every array its consolidated metadata (`.zmetadata`, or v3's
 * `consolidated_metadata`) names, else every array the given `keys` or a listing of the store shows.
 * An unknown codec (a compressor zarrita has no decoder for) is `E_UNSUPPORTED` naming the array when
 * its rows are first read.
 *
 * @example const ds = await openZarr(store, 'galaxy.zarr', { paths: ['images', 'ids'] }); await ds.read(ds.arrays[0], 0, 16);
 */
export async function openZarr(
  store: Store,
  root: string,
  options: OpenZarrOptions = {},
): Promise<ZarrDataset> {
  const ours = defaultCodecs();
  const source = store.describe(root);
  const z = zarrStore(store, root);
  let node: ZArray | zarr.Group<zarr.AsyncReadable> | undefined;
  let consolidated: Awaited<ReturnType<typeof zarr.withMaybeConsolidatedMetadata<typeof z>>>;
  let base: zarr.Location<zarr.AsyncReadable>;
  // zarrita looks for each metadata object in turn (a round trip each on S3: ~10 for a group of two
  // arrays); the ones it may ask for are fetched at once instead, missing ones included.
  const named = options.paths ?? [];
  await z.prefetch([
    ...['.zmetadata', '.zgroup', '.zattrs', '.zarray', 'zarr.json'],
    ...named.flatMap((p) => ['.zarray', '.zattrs', 'zarr.json'].map((m) => `${p}/${m}`)),
  ]);
  try {
    consolidated = await zarr.withMaybeConsolidatedMetadata(z, { format: ['v2', 'v3'] });
    base = zarr.root(consolidated);
  } catch (err) {
    throw corrupt(source, 'its consolidated metadata', err);
  }
  try {
    node = await zarr.open(base);
  } catch (err) {
    // A folder of arrays without group metadata (no .zgroup) is read as an implicit group.
    if (!(err instanceof zarr.NotFoundError)) throw corrupt(source, 'its metadata', err);
  }
  const opened = new Map<string, ZArray>();
  // Each array's metadata is a GET or two (none with consolidated metadata): fetched at once.
  const openAll = async (paths: readonly string[], strict: boolean) => {
    const arrays = await mapBounded(paths, ZARR_CHUNK_CONCURRENCY, async (path) => {
      try {
        return await zarr.open(base.resolve(path), { kind: 'array' });
      } catch (err) {
        // A subgroup's zarr.json is not an array.
        if (!(err instanceof zarr.NotFoundError)) throw corrupt(source, `array "/${path}"`, err);
        if (!strict) return undefined;
        throw err;
      }
    });
    paths.forEach((path, i) => {
      const a = arrays[i];
      if (a) opened.set(path, a);
    });
  };
  // Listings skip hidden keys (v2's .zarray): keys that show no array mean "list the store".
  const discover = async () => {
    const given = options.keys ? arrayPathsOf(options.keys) : [];
    return given.length ? given : arrayPathsOf(await listKeys(store, root));
  };
  if (node instanceof zarr.Array) {
    const name =
      (root || store.uri)
        .replace(/\/+$/, '')
        .split('/')
        .pop()
        ?.replace(/\.zarr$/i, '') || 'array';
    opened.set(name, node);
  } else {
    let found = false;
    if (options.paths?.length) {
      try {
        await openAll([...new Set(options.paths)], true);
        found = true;
      } catch (err) {
        if (!(err instanceof zarr.NotFoundError)) throw err;
        opened.clear();
      }
    }
    if (!found) {
      const paths =
        'contents' in consolidated
          ? consolidated
              .contents()
              .filter((c) => c.kind === 'array')
              .map((c) => c.path.slice(1))
          : await discover();
      await openAll(
        paths.filter((p) => p),
        false,
      );
    }
  }
  if (opened.size === 0) {
    const denied = z.denied();
    if (denied) throw denied;
    throw new CaiError(
      ErrorCodes.notFound,
      source,
      'holds no Zarr array (no .zarray or zarr.json found); point the input at a Zarr store',
    );
  }
  const arrays = [...opened.entries()].map(([path, a]) => infoOf(path, a));
  const directs = new Map<ZArray, DirectChunks | undefined>();
  const reader: RowReader = {
    caches: new Map(),
    strided: new Set(),
    store: z,
    raw: RAW_BUFFERS,
    rows: ROW_BUFFERS,
    direct(a) {
      // With zarrita's own decoders chosen (benchmarks comparing them), every chunk goes through zarrita.
      if (!directs.has(a)) directs.set(a, ours ? directChunks(a, z.metadata) : undefined);
      return directs.get(a);
    },
  };
  return {
    arrays,
    bytes: () => z.bytes(),
    recycle: (rows) => reader.rows.release(rows.buffer),
    async read(array, start, end) {
      const a = opened.get(array.path) as ZArray;
      let out: { data: unknown };
      try {
        const rows =
          rowChunked(a) && !reader.strided.has(a)
            ? await readRowChunks(a, array.path, start, end, reader)
            : undefined;
        out = rows
          ? { data: rows }
          : inCOrder(await zarr.get(a, [zarr.slice(start, end), ...array.shape.slice(1).map(() => null)]));
      } catch (err) {
        if (err instanceof zarr.UnknownCodecError) {
          throw new CaiError(
            ErrorCodes.unsupported,
            source,
            `array "/${array.path}" uses a codec CAI's Zarr reader (zarrita) has no decoder for (${err.message}); rewrite it with zlib, gzip, blosc or zstd`,
            { cause: err },
          );
        }
        throw corrupt(source, `array "/${array.path}" rows [${start}, ${end})`, err);
      }
      return widen(out.data, array);
    },
  };
}

type TypedArrayLike = {
  length: number;
  subarray(a: number, b: number): TypedArrayLike;
  set(src: TypedArrayLike, at: number): void;
} & ArrayLike<unknown>;
type TypedCtor = {
  new (buffer: ArrayBufferLike, offset?: number, length?: number): TypedArrayLike;
  BYTES_PER_ELEMENT: number;
};

// The typed array zarrita gives each numeric type (rowChunked's types).
const CTORS: Readonly<Record<string, TypedCtor>> = {
  int8: Int8Array,
  uint8: Uint8Array,
  int16: Int16Array,
  uint16: Uint16Array,
  int32: Int32Array,
  uint32: Uint32Array,
  int64: BigInt64Array,
  float32: Float32Array,
  float64: Float64Array,
} as unknown as Record<string, TypedCtor>;

/** Whether an array is chunked along its first axis only, with numbers in C order (the common case). */
function rowChunked(a: ZArray): boolean {
  const numeric = DTYPES[String(a.dtype)] !== undefined && CTORS[String(a.dtype)] !== undefined;
  return numeric && a.shape.slice(1).every((d, i) => a.chunks[i + 1] === d);
}

/** Chunk objects fetched at once for one read: enough to hide ~20-50 ms of S3 latency per GET. */
export const ZARR_CHUNK_CONCURRENCY = 8;

/** The decoded chunks of one array a reader holds: the last ones read, and those being fetched. */
type ChunkCache = Map<number, Promise<TypedArrayLike>>;

/** What `readRowChunks` needs of a dataset: its chunk caches, and its direct chunk reader when it has one. */
interface RowReader {
  readonly caches: Map<string, ChunkCache>;
  /** Arrays whose chunks zarrita gives in another order than C (F order, a v3 transpose): read by zarr.get. */
  readonly strided: Set<ZArray>;
  readonly direct: (a: ZArray) => DirectChunks | undefined;
  readonly store: ReturnType<typeof zarrStore>;
  /** Memory the compressed chunks are read into, reused from chunk to chunk. */
  readonly raw: BufferPool;
  /** Memory of the rows returned, reused once the caller gives them back (`recycle`). */
  readonly rows: RowBuffers;
}

/**
 * Buffers of rows kept for reuse, each of exactly a read's size: rows span their whole buffer, so an
 * inference thread can take a batch without a copy (model/threaded-session.ts moves whole buffers and
 * copies views). A buffer moved to another thread comes back detached and is dropped.
 */
class RowBuffers {
  private readonly free: ArrayBuffer[] = [];
  private readonly leased = new WeakSet<ArrayBufferLike>();
  constructor(private readonly keep: number) {}

  acquire(bytes: number): ArrayBuffer {
    const i = this.free.findIndex((b) => b.byteLength === bytes);
    const buffer = i >= 0 ? this.free.splice(i, 1)[0] : (allocateBytes(bytes).buffer as ArrayBuffer);
    this.leased.add(buffer);
    return buffer;
  }

  /** Gives back a buffer `acquire` returned; any other, or one given back already, is ignored. */
  release(buffer: ArrayBufferLike): void {
    if (!this.leased.has(buffer)) return;
    this.leased.delete(buffer);
    if (buffer.byteLength === 0) return;
    this.free.push(buffer as ArrayBuffer);
    if (this.free.length > this.keep) this.free.shift();
  }
}

// Memory kept for the life of the process, shared by every dataset it opens (a worker opens one per
// partition, and the next while the current runs), so partitions after the first allocate nothing:
// compressed chunks (one per chunk in flight), and rows (a worker holds two batches at once, the one the
// model runs and the one read meanwhile, the next partition's first batch a third, a reader a fourth).
const RAW_BUFFERS = new BufferPool(ZARR_CHUNK_CONCURRENCY, 64 * 1024);
const ROW_BUFFERS = new RowBuffers(4);

const bytesOf = (t: TypedArrayLike) => {
  const v = t as unknown as ArrayBufferView;
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
};

/**
 * Decodes chunk `c` of a directly read array into `dest` (exactly a chunk). With a decoder that writes
 * in place (the machine's c-blosc, liblz4, libzstd), the compressed bytes are read into pooled memory and
 * decoded on this thread; otherwise they are decoded on the decoding threads and copied. An uncompressed
 * chunk is read straight into `dest`. Returns false when the chunk is missing (the caller fills it with
 * the array's fill value, as zarrita does).
 */
async function readDirect(r: RowReader, d: DirectChunks, c: number, dest: Uint8Array): Promise<boolean> {
  const key = d.key(c);
  const sizeError = (n: number) =>
    new Error(`chunk ${key.slice(1)} holds ${n} bytes, not the ${dest.byteLength} of a chunk`);
  if (!d.codec) {
    const got = await r.store.getInto(key, (n) => {
      if (n !== dest.byteLength) throw sizeError(n);
      return dest;
    });
    return got !== undefined;
  }
  const codec = d.codec;
  const named = (err: unknown) =>
    new Error(`chunk ${key.slice(1)}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  if (decodesInPlace(codec)) {
    const raw = await r.store.getInto(key, (n) => r.raw.acquire(n));
    if (!raw) return false;
    try {
      await decodeInto(codec, raw, dest);
    } catch (err) {
      throw named(err);
    } finally {
      r.raw.release(raw);
    }
    return true;
  }
  const raw = await r.store.get(key);
  if (!raw) return false;
  let out: Uint8Array;
  try {
    out = await decodeChunk(codec, raw);
  } catch (err) {
    throw named(err);
  }
  if (out.byteLength !== dest.byteLength) throw sizeError(out.byteLength);
  dest.set(out);
  return true;
}

/** A chunk zarrita decoded in another order than C: its rows are not contiguous runs. */
class NotCOrder extends Error {}

function cStrides(shape: readonly number[]): number[] {
  const out = shape.map(() => 1);
  for (let i = shape.length - 2; i >= 0; i--) out[i] = out[i + 1] * shape[i + 1];
  return out;
}

const sameList = (a: readonly number[], b: readonly number[]) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/**
 * Rows `[start, end)` of an array chunked along its first axis only, chunk by chunk: each chunk is a
 * run of whole rows, a contiguous slab of the result. A chunk wholly inside the rows is decoded straight
 * into its slab when the array's layout allows (see direct.ts): its bytes are written once. Other chunks
 * (cut by the rows, or read through zarrita) are decoded whole and their rows copied with
 * `TypedArray.set`, skipping zarrita's general strided copy, which cost as much as decoding (measured:
 * 1.6 s against 0.8 s for 1000 128x128x3 images). Chunks are fetched `ZARR_CHUNK_CONCURRENCY` at a time
 * (ranged GETs on S3 wait on latency, not bandwidth); the last chunk decoded whole is kept, since batches
 * rarely end on a chunk boundary. The result's memory is not zero-filled: every byte is written.
 * `undefined` when zarrita gives the array's chunks in another order than C (the caller uses zarr.get).
 */
async function readRowChunks(
  a: ZArray,
  path: string,
  start: number,
  end: number,
  r: RowReader,
): Promise<unknown | undefined> {
  const rows = a.chunks[0];
  const per = a.shape.slice(1).reduce((s, d) => s * d, 1);
  const cache: ChunkCache = r.caches.get(path) ?? new Map();
  r.caches.set(path, cache);
  const direct = r.direct(a);
  const Typed = CTORS[String(a.dtype)];
  const size = Typed.BYTES_PER_ELEMENT;
  const out = new Typed(
    r.rows.acquire((end - start) * per * size),
    0,
    (end - start) * per,
  ) as TypedArrayLike & ArrayBufferView;
  const whole = () => new Typed(allocateBytes(rows * per * size).buffer, 0, rows * per);
  // A missing chunk holds the fill value (as zarrita fills it).
  const fill = (t: TypedArrayLike) => (t as unknown as { fill(v: unknown): void }).fill(a.fillValue ?? 0);
  const fetchChunk = (c: number) => {
    let p = cache.get(c);
    if (!p) {
      p = (async () => {
        if (!direct) {
          const got = await a.getChunk([c, ...a.shape.slice(1).map(() => 0)]);
          if (!sameList(got.stride, cStrides(got.shape))) throw new NotCOrder();
          return got.data as unknown as TypedArrayLike;
        }
        const data = whole();
        if (!(await readDirect(r, direct, c, bytesOf(data)))) fill(data);
        return data;
      })();
      cache.set(c, p);
      // A failed fetch is not kept: the next read tries again.
      p.catch(() => cache.delete(c));
    }
    return p;
  };
  const first = Math.floor(start / rows);
  const wanted = Array.from({ length: Math.ceil(end / rows) - first }, (_, i) => first + i);
  const kept = new Set<number>();
  const copied = mapBounded(wanted, ZARR_CHUNK_CONCURRENCY, async (c) => {
    const from = Math.max(start, c * rows);
    const to = Math.min(end, (c + 1) * rows);
    const slab = (data: TypedArrayLike) =>
      out.set(data.subarray((from - c * rows) * per, (to - c * rows) * per), (from - start) * per);
    if (direct && !cache.has(c) && from === c * rows && to === (c + 1) * rows) {
      const dest = new Typed(out.buffer, (from - start) * per * size, rows * per);
      if (!(await readDirect(r, direct, c, bytesOf(dest)))) fill(dest);
      return;
    }
    kept.add(c);
    slab(await fetchChunk(c));
  });
  try {
    await copied;
  } catch (err) {
    if (!(err instanceof NotCOrder)) throw err;
    r.strided.add(a);
    cache.clear();
    return undefined;
  }
  // Keep only the last chunk decoded whole: the next batch may start inside it.
  const last = wanted[wanted.length - 1];
  for (const k of cache.keys()) if (k !== last || !kept.has(k)) cache.delete(k);
  return out;
}

/**
 * zarrita's result in C order: it gives an F-order array (v2 `order: "F"`, a v3 transpose) in its own
 * order, with strides saying so; CAI's rows are C order. Numbers are copied element by element (such
 * arrays are rare); booleans and strings in F order are refused rather than read in the wrong order.
 */
function inCOrder(got: { data: unknown; shape: number[]; stride: number[] }): { data: unknown } {
  const { data, shape, stride } = got;
  if (sameList(stride, cStrides(shape))) return got;
  if (!ArrayBuffer.isView(data) || data instanceof DataView) {
    throw new Error(
      `its chunks are stored in F order (strides ${stride.join(', ')}), which CAI reads for numbers only`,
    );
  }
  const src = data as unknown as TypedArrayLike & { [i: number]: unknown };
  const out = new (data.constructor as new (n: number) => TypedArrayLike & { [i: number]: unknown })(
    src.length,
  );
  const c = cStrides(shape);
  for (let i = 0; i < src.length; i++) {
    let from = 0;
    for (let d = 0, rest = i; d < shape.length; d++) {
      const k = Math.floor(rest / c[d]);
      rest -= k * c[d];
      from += k * stride[d];
    }
    out[i] = src[from];
  }
  return { data: out };
}

/** zarrita's arrays as CAI's: unsigned 16/32-bit widened, booleans as bytes, strings as strings. */
function widen(data: unknown, array: ArrayInfo): TypedArray | string[] {
  if (array.strings) return Array.from(data as Iterable<unknown>, (v) => String(v));
  if (data instanceof Uint16Array && array.dtype === 'int32') return Int32Array.from(data);
  if (data instanceof Uint32Array) return BigInt64Array.from(data, (v) => BigInt(v));
  if (data instanceof zarr.BoolArray) return new Uint8Array(data.buffer);
  return data as TypedArray;
}
