// An HDF5 file, local (read in place) or in a remote store (S3, by byte ranges, never copied whole).
// CAI's own metadata reader (chunk-index.ts) lists its datasets and reads the rows it covers directly
// (direct-read.ts: chunks fetched, inflated off the main thread by libdeflate or Node's zlib). What it
// does not cover goes to libhdf5 in a worker thread (h5-thread.ts), loaded only then, whose reads of a
// remote object this side serves with ranged GETs. Opening reads only metadata (the superblock, object headers);
// a row read fetches the chunks of those rows, about one GET per column and partition. Rows of the batch
// after the one asked are read ahead while the caller works on this one (bounded: one batch per column,
// never past the partition's last row).
import { stat } from 'node:fs/promises';
import { Worker } from 'node:worker_threads';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { Store } from '../../storage/store.js';
import type { TypedArray } from '../../tensor/dtype.js';
import type { ArrayInfo } from '../arrays/layout.js';
import { LocalBytes, localReader, pagedReader, RemoteBytes } from './byte-sources.js';
import { Hdf5Index, type ReadBytes } from './chunk-index.js';
import { arrayInfoOf } from './h5-file.js';
import { DirectReader, type ByteSource } from './direct-read.js';
import { SYNC_RANGE_DEFAULTS, type SyncRangeOptions } from './sync-ranges.js';
import type { ThreadData, ThreadFile, ThreadReply, ThreadRequest } from './thread-protocol.js';

const ENTRY = new URL('./h5-thread.js', import.meta.url);

/** An HDF5 file open for reading, wherever it is. */
export interface Hdf5Reader {
  readonly arrays: readonly ArrayInfo[];
  /** Rows `[start, end)` of a dataset. */
  read(array: ArrayInfo, start: number, end: number): Promise<TypedArray | string[]>;
  /** What was fetched from storage so far: bytes and requests (0 for a file read in place). */
  fetched(): { readonly bytes: number; readonly requests: number };
  close(): Promise<void>;
}

/** Options of {@link openRemoteHdf5}. */
export interface RemoteHdf5Options {
  /** The object's size, when known (a listing): saves a HEAD. */
  readonly size?: number;
  /** The rows that will be read (a partition's), which bound the read-ahead; none without it. */
  readonly rows?: readonly [number, number];
  /** How ranges are fetched (page of metadata reads, largest GET, bytes kept). */
  readonly ranges?: Partial<SyncRangeOptions>;
  /**
   * Read datasets the chunk index covers directly (libdeflate or Node's zlib, no libhdf5); default true.
   * `false` reads everything through libhdf5 (the benchmark's and tests' baseline).
   */
  readonly direct?: boolean;
  /**
   * When the object was last written (ms), if known: the chunk index read from its metadata is then kept
   * for the next open of the same object (same size and time), so later partitions skip the metadata.
   */
  readonly modified?: number;
  /**
   * The object's entity tag (S3's ETag), if known: names the object's content better than its size and
   * time (S3 gives LastModified to the whole second), so the kept index is looked up by it when given.
   */
  readonly etag?: string;
}

/** Chunk indexes of remote objects, by store, key, size and time written (or ETag); each open sets the reader. */
const remoteIndexes = new Map<
  string,
  { readonly index: Hdf5Index; via: { read: ReadBytes; fetched: (start: number, data: Uint8Array) => void } }
>();

/**
 * Chunk indexes of local files, kept between partitions of the same file (by path, size and modification
 * time) so each open does not read the metadata again.
 */
const localIndexes = new Map<string, Hdf5Index>();
const KEEP_INDEXES = 8;

async function localIndex(file: string): Promise<Hdf5Index> {
  const st = await stat(file);
  const id = `${file}\0${st.size}\0${st.mtimeMs}`;
  let index = localIndexes.get(id);
  if (!index) {
    index = new Hdf5Index(st.size, pagedReader(st.size, localReader(file), 64 * 1024), file);
    localIndexes.set(id, index);
    while (localIndexes.size > KEEP_INDEXES) localIndexes.delete(localIndexes.keys().next().value as string);
  }
  return index;
}

interface Job {
  readonly req: ThreadRequest;
  readonly speculative: boolean;
  resolve(reply: ThreadReply & { t: 'reply'; ok: true }): void;
  reject(err: unknown): void;
}

/** A reading thread, and where its messages go while an object is open on it. */
class H5Thread {
  readonly worker: Worker;
  readonly ctrl: Int32Array;
  readonly shared: Uint8Array;
  onMessage: (m: ThreadReply) => void = () => undefined;
  onFail: (err: Error) => void = () => undefined;
  broken = false;

  constructor(readonly capacity: number) {
    const data: ThreadData = { control: new SharedArrayBuffer(8), buffer: new SharedArrayBuffer(capacity) };
    this.ctrl = new Int32Array(data.control);
    this.shared = new Uint8Array(data.buffer);
    this.worker = new Worker(ENTRY, { workerData: data });
    this.worker.on('message', (m: ThreadReply) => this.onMessage(m));
    this.worker.on('error', (err) => ((this.broken = true), this.onFail(err)));
    this.worker.on('exit', (code) => ((this.broken = true), this.onFail(new Error(`it exited (${code})`))));
  }
}

/** Threads kept for the next object (a worker reads partition after partition): at most this many. */
const KEEP_IDLE = 2;
const idle: H5Thread[] = [];

function takeThread(capacity: number): H5Thread {
  const i = idle.findIndex((t) => t.capacity === capacity && !t.broken);
  return i >= 0 ? idle.splice(i, 1)[0] : new H5Thread(capacity);
}

async function giveBack(t: H5Thread): Promise<void> {
  t.onMessage = () => undefined;
  t.onFail = () => undefined;
  if (t.broken || idle.length >= KEEP_IDLE) {
    t.worker.removeAllListeners('exit');
    await t.worker.terminate();
    return;
  }
  // An idle thread does not keep the process alive.
  t.worker.unref();
  idle.push(t);
}

/**
 * Opens an HDF5 object of `store` by byte ranges. Throws `E_NOT_FOUND` when it does not exist and
 * `E_CORRUPT` when it is not HDF5, as a local file would.
 *
 * @example const f = await openRemoteHdf5(store, 'galaxy10.h5', { rows: [0, 512] }); await f.read(f.arrays[0], 0, 64); await f.close();
 */
export async function openRemoteHdf5(
  store: Store,
  key: string,
  options: RemoteHdf5Options = {},
): Promise<Hdf5Reader> {
  const source = store.describe(key);
  const info = options.size === undefined ? await store.head(key) : undefined;
  const size = options.size ?? info?.size;
  if (size === undefined) {
    throw new CaiError(ErrorCodes.notFound, source, 'does not exist; check the input and plan the job again');
  }
  const modified = options.modified ?? info?.modified;
  const etag = options.etag ?? info?.etag;
  return openOnThread(
    store,
    key,
    { path: `/cai-remote/${key}`, source, size },
    { ...options, modified, etag },
  );
}

/**
 * Opens a local HDF5 file on a reading thread, in place: chunk decompression runs on that thread, and
 * the next batch of every column is read while the caller works on this one. `source` names it in errors.
 *
 * @example const f = await openThreadedHdf5('/data/galaxy10.h5', 'galaxy10.h5', { rows: [0, 1000] });
 */
export function openThreadedHdf5(
  file: string,
  source: string,
  options: Pick<RemoteHdf5Options, 'rows' | 'direct'> = {},
): Promise<Hdf5Reader> {
  return openOnThread(undefined, file, { path: file, source, size: 0, local: true }, options);
}

/** libhdf5 (h5wasm) on a reading thread, with the object open: its datasets, row reads, close. */
interface ThreadSide {
  readonly arrays: readonly ArrayInfo[];
  read(
    path: string,
    start: number,
    end: number,
    until: number,
    speculative: boolean,
  ): Promise<TypedArray | string[]>;
  /** Drops reads queued and not started, closes the object, keeps the thread for the next. */
  close(): Promise<void>;
}

async function openThreadSide(
  target: Omit<ThreadFile, 'options'>,
  ranges: SyncRangeOptions,
  getRange: ((start: number, end: number) => Promise<Uint8Array>) | undefined,
  /** Where the spans fetched while opening go (the chunk index reads metadata from them). */
  seeds: { start: number; data: Uint8Array }[],
): Promise<ThreadSide> {
  const { source } = target;
  const thread = takeThread(ranges.maxFetch);
  const { worker, ctrl, shared } = thread;
  let storageError: unknown;
  let failed: unknown;
  let opening = true;
  let nextId = 1;
  const queue: Job[] = [];
  let current: Job | undefined;

  const answer = (state: 1 | 2, length = 0) => {
    ctrl[1] = length;
    Atomics.store(ctrl, 0, state);
    Atomics.notify(ctrl, 0);
  };
  const serveRange = async (start: number, end: number) => {
    try {
      if (!getRange) throw new Error('a local file asked for a range');
      const got = await getRange(start, end);
      shared.set(got);
      if (opening) seeds.push({ start, data: got });
      answer(1, got.byteLength);
    } catch (err) {
      storageError = err;
      answer(2);
    }
  };
  const pump = () => {
    if (current || failed) return;
    const i = queue.findIndex((j) => !j.speculative);
    const job = i >= 0 ? queue.splice(i, 1)[0] : queue.shift();
    if (!job) {
      worker.unref();
      return;
    }
    current = job;
    worker.ref();
    worker.postMessage(job.req);
  };
  const fail = (err: unknown) => {
    failed ??= err;
    for (const j of [...(current ? [current] : []), ...queue.splice(0)]) j.reject(err);
    current = undefined;
  };
  thread.onMessage = (m: ThreadReply) => {
    if (m.t === 'range') {
      void serveRange(m.start, m.end);
      return;
    }
    const job = current;
    current = undefined;
    if (job && m.ok) job.resolve(m);
    else if (job && !m.ok) {
      const e = m.error;
      // A failed GET is the cause of what libhdf5 then reports: that error, with its code, is the one to see.
      const err =
        storageError ??
        (e.code && e.object
          ? new CaiError(e.code, e.object, e.message.slice(e.object.length + 2))
          : new CaiError(
              ErrorCodes.corrupt,
              source,
              `cannot be read (${e.message}); write or upload it again`,
            ));
      storageError = undefined;
      job.reject(err);
    }
    pump();
  };
  thread.onFail = (err) =>
    fail(
      new CaiError(ErrorCodes.corrupt, source, `its HDF5 reading thread failed (${err.message})`, {
        cause: err,
      }),
    );

  const send = (req: Omit<ThreadRequest, 'id'>, speculative = false) =>
    new Promise<ThreadReply & { t: 'reply'; ok: true }>((resolve, reject) => {
      if (failed) return reject(failed);
      queue.push({ req: { ...req, id: nextId++ } as ThreadRequest, speculative, resolve, reject });
      pump();
    });

  let arrays: readonly ArrayInfo[];
  try {
    const file: ThreadFile = { ...target, options: ranges };
    arrays = (await send({ op: 'open', file } as Omit<ThreadRequest, 'id'>)).arrays ?? [];
  } catch (err) {
    await send({ op: 'close' }).catch(() => (thread.broken = true));
    await giveBack(thread);
    throw err;
  }
  opening = false;

  return {
    arrays,
    read: (path, start, end, until, speculative) =>
      send({ op: 'read', path, start, end, until } as Omit<ThreadRequest, 'id'>, speculative).then(
        (r) => r.rows as TypedArray | string[],
      ),
    async close() {
      queue.splice(0).forEach((j) => j.reject(new CaiError(ErrorCodes.corrupt, source, 'was closed')));
      await send({ op: 'close' }).catch(() => (thread.broken = true));
      await giveBack(thread);
    },
  };
}

/** An error of the storage (with its code) rather than of the file's contents. */
const isStorageError = (err: unknown) => err instanceof CaiError;

async function openOnThread(
  store: Store | undefined,
  key: string,
  target: Omit<ThreadFile, 'options'>,
  options: RemoteHdf5Options,
): Promise<Hdf5Reader> {
  const { source } = target;
  const ranges = { ...SYNC_RANGE_DEFAULTS, ...options.ranges };
  let bytes = 0;
  let requests = 0;
  const getCounted = async (start: number, end: number) => {
    requests++;
    const got = await (store as Store).getRange(key, start, end);
    bytes += got.byteLength;
    if (got.byteLength !== end - start) {
      throw new CaiError(
        ErrorCodes.corrupt,
        source,
        `a read of bytes [${start}, ${end}) returned ${got.byteLength}; the object changed since it was planned: plan the job again`,
      );
    }
    return got;
  };
  // Spans already fetched (metadata pages): the chunk index and chunk reads take bytes from them first.
  const seeds: { start: number; data: Uint8Array }[] = [];

  // A remote object's index reads through this open's counted GETs; it is kept for the next open of the
  // same object when the time it was written is known.
  const remoteIndex = (st: Store, k: string, size: number): Hdf5Index => {
    const version = options.etag ?? (options.modified === undefined ? undefined : String(options.modified));
    const id = version === undefined ? undefined : `${st.uri}\0${k}\0${size}\0${version}`;
    let entry = id === undefined ? undefined : remoteIndexes.get(id);
    if (!entry) {
      const via = { read: getCounted, fetched: (_s: number, _d: Uint8Array) => undefined as void };
      const index = new Hdf5Index(
        size,
        pagedReader(
          size,
          (a, b) => via.read(a, b),
          ranges.page,
          [],
          (a, d) => via.fetched(a, d),
        ),
        source,
      );
      entry = { index, via };
      if (id !== undefined) {
        remoteIndexes.set(id, entry);
        while (remoteIndexes.size > KEEP_INDEXES)
          remoteIndexes.delete(remoteIndexes.keys().next().value as string);
      }
    }
    entry.via.read = getCounted;
    entry.via.fetched = (start, data) => void seeds.push({ start, data });
    return entry.index;
  };

  // The datasets, listed by CAI's own metadata reader when it reads the whole file's structure, so
  // libhdf5 is not loaded at all; otherwise by libhdf5, on a reading thread.
  let index: Hdf5Index | undefined;
  let arrays: readonly ArrayInfo[] | undefined;
  if (options.direct !== false) {
    index = target.local ? await localIndex(target.path) : remoteIndex(store as Store, key, target.size);
    try {
      arrays = (await index.list()).map((d) =>
        arrayInfoOf(d.path, { ...d.type, shape: d.shape, chunks: d.chunks }),
      );
    } catch (err) {
      // Storage errors are the storage's; anything else in the file is libhdf5's to read or report.
      if (isStorageError(err)) throw err;
      arrays = undefined;
    }
  }
  let thread: Promise<ThreadSide> | undefined;
  const threadSide = () => (thread ??= openThreadSide(target, ranges, store ? getCounted : undefined, seeds));
  if (!arrays) arrays = (await threadSide()).arrays;

  // Datasets the chunk index covers are read on this side: chunks fetched directly and inflated by
  // libdeflate or Node's zlib off the main thread. Set up at the first read (planning reads none).
  const byPath = new Map(arrays.map((a) => [a.path, a]));
  let local: LocalBytes | undefined;
  let direct: Promise<DirectReader> | undefined;
  const directReader = (): Promise<DirectReader> =>
    (direct ??= (async () => {
      let bytesOf: ByteSource;
      if (target.local) bytesOf = local = await LocalBytes.open(target.path);
      else bytesOf = new RemoteBytes(getCounted, ranges.maxFetch, ranges.keepBytes, seeds);
      const i = index ?? new Hdf5Index(target.size, pagedReader(target.size, getCounted, 0, seeds), source);
      return new DirectReader(i, bytesOf, source);
    })());

  let failed: unknown;
  // Read-ahead: per array, the next batch, started once the caller has the current one.
  const ahead = new Map<string, { readonly rows: string; readonly out: Promise<TypedArray | string[]> }>();
  const threadRows = async (path: string, start: number, end: number, speculative: boolean) =>
    (await threadSide()).read(path, start, end, options.rows?.[1] ?? end, speculative);
  const readRows = async (path: string, start: number, end: number, speculative: boolean) => {
    const array = byPath.get(path);
    if (options.direct === false || !array) return threadRows(path, start, end, speculative);
    const until = Math.max(end, options.rows?.[1] ?? end);
    const rows = await (await directReader()).read(array, start, end, until);
    return rows ?? threadRows(path, start, end, speculative);
  };
  const readAhead = (path: string, start: number, end: number) => {
    const last = options.rows?.[1];
    if (last === undefined || end >= last || failed) return;
    const next = Math.min(last, end + (end - start));
    const out = readRows(path, end, next, true);
    out.catch((err: unknown) => void (failed ??= err)); // seen by the caller that asks for these rows, or by nobody
    ahead.set(path, { rows: `${end}-${next}`, out });
  };
  let closed = false;
  return {
    arrays,
    fetched: () => ({ bytes, requests }),
    async read(array, start, end) {
      const early = ahead.get(array.path);
      ahead.delete(array.path);
      const out = await (early?.rows === `${start}-${end}`
        ? early.out
        : readRows(array.path, start, end, false));
      readAhead(array.path, start, end);
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      // Reads read ahead and not wanted are dropped (one running finishes first); the file is closed and
      // the thread kept for the next object.
      if (thread) await (await thread.catch(() => undefined))?.close();
      await local?.close();
    },
  };
}
