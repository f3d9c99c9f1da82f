// A worker thread that runs libhdf5 (h5wasm) over a remote object read by byte ranges. libhdf5 reads
// through pread(); h5wasm's Node build passes that to Node's fs.readSync. In this thread (which has its
// own `fs` module object) the file calls for one virtual path are answered by a SyncRanges reader, whose
// fetches block on Atomics.wait while the main thread makes the ranged GET and writes the bytes into
// shared memory. Chunk decompression (deflate, shuffle) runs here, off the main thread.
import fs from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { CaiError } from '../../errors.js';
import type { ArrayInfo } from '../arrays/layout.js';
import { openHdf5, type Hdf5File } from './h5-file.js';
import type { ThreadData, ThreadFile, ThreadReply, ThreadRequest } from './thread-protocol.js';
import { SyncRanges } from './sync-ranges.js';

const data = workerData as ThreadData;
const port = parentPort as NonNullable<typeof parentPort>;
const ctrl = new Int32Array(data.control);
const shared = new Uint8Array(data.buffer);

/** Bytes `[start, end)` of the object, fetched by the main thread piece by piece (each fits the buffer). */
function blockingGet(start: number, end: number): Uint8Array {
  const out = new Uint8Array(end - start);
  for (let at = start; at < end; at += shared.byteLength) {
    const stop = Math.min(end, at + shared.byteLength);
    Atomics.store(ctrl, 0, 0);
    port.postMessage({ t: 'range', start: at, end: stop } satisfies ThreadReply);
    Atomics.wait(ctrl, 0, 0);
    // The main thread keeps the error (a storage error with its code) and reports it for the command.
    if (Atomics.load(ctrl, 0) !== 1 || ctrl[1] !== stop - at)
      throw new Error(`ranged read [${at}, ${stop}) failed`);
    out.set(shared.subarray(0, stop - at), at - start);
  }
  return out;
}

/** The object open now, and its reader. */
let object: { readonly file: ThreadFile; readonly ranges: SyncRanges } | undefined;

// The virtual file: a path no real file has, and a descriptor number no real file gets.
const VIRTUAL_FD = 0x3fff_0001;
const real = {
  openSync: fs.openSync,
  readSync: fs.readSync,
  fstatSync: fs.fstatSync,
  lstatSync: fs.lstatSync,
  statSync: fs.statSync,
  closeSync: fs.closeSync,
};
function virtualStat(): fs.Stats {
  const base = real.statSync(process.execPath);
  const size = object?.file.size ?? 0;
  return Object.assign(Object.create(Object.getPrototypeOf(base) as object) as fs.Stats, base, {
    size,
    ino: 1,
    mode: 0o100444,
    blocks: Math.ceil(size / 512),
  });
}
const isVirtual = (p: unknown) => p === object?.file.path;
type Fn = (...args: unknown[]) => unknown;
const patch = (name: keyof typeof real, fn: Fn) => Object.assign(fs, { [name]: fn });
patch('openSync', (p, ...rest) => (isVirtual(p) ? VIRTUAL_FD : (real.openSync as Fn)(p, ...rest)));
patch('fstatSync', (fd, ...rest) =>
  fd === VIRTUAL_FD ? virtualStat() : (real.fstatSync as Fn)(fd, ...rest),
);
patch('lstatSync', (p, ...rest) => (isVirtual(p) ? virtualStat() : (real.lstatSync as Fn)(p, ...rest)));
patch('statSync', (p, ...rest) => (isVirtual(p) ? virtualStat() : (real.statSync as Fn)(p, ...rest)));
patch('closeSync', (fd) => (fd === VIRTUAL_FD ? undefined : (real.closeSync as Fn)(fd)));
patch('readSync', (fd, buffer, offset, length, position) => {
  if (fd !== VIRTUAL_FD) return (real.readSync as Fn)(fd, buffer, offset, length, position);
  const b = buffer as Uint8Array;
  const r = (object as NonNullable<typeof object>).ranges;
  return r.read(b, Number(offset ?? 0), Number(length ?? b.byteLength), Number(position ?? 0));
});

let file: Hdf5File | undefined;
const arrays = new Map<string, ArrayInfo>();

async function handle(req: ThreadRequest): Promise<ThreadReply> {
  if (req.op === 'open') {
    file?.close();
    arrays.clear();
    object = req.file.local
      ? undefined
      : { file: req.file, ranges: new SyncRanges(req.file.size, blockingGet, req.file.options) };
    file = await openHdf5(req.file.path, req.file.source);
    for (const a of file.arrays) arrays.set(a.path, a);
    return { t: 'reply', id: req.id, ok: true, arrays: file.arrays };
  }
  if (req.op === 'close') {
    file?.close();
    file = undefined;
    object = undefined;
    arrays.clear();
    return { t: 'reply', id: req.id, ok: true };
  }
  const f = file as Hdf5File;
  const array = arrays.get(req.path) as ArrayInfo;
  // The chunks the partition still needs from this dataset (they are fetched together).
  const ranges = object?.ranges;
  ranges?.expectChunks(f.chunksSpanned(array, req.start, Math.max(req.end, req.until)));
  const out = f.read(array, req.start, req.end);
  ranges?.expectChunks(0);
  return { t: 'reply', id: req.id, ok: true, rows: out };
}

// Requests come one at a time (the main thread waits for each reply), so reads never interleave; a
// thread serves one object after another (opening h5wasm costs ~0.3 s of WebAssembly compilation).
port.on('message', (req: ThreadRequest) => {
  handle(req).then(
    (reply) => {
      const rows = reply.t === 'reply' && reply.ok ? reply.rows : undefined;
      const transfer = rows && !Array.isArray(rows) ? [rows.buffer as ArrayBuffer] : [];
      port.postMessage(reply, transfer);
    },
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      const code = err instanceof CaiError ? err.code : undefined;
      const object = err instanceof CaiError ? err.object : undefined;
      port.postMessage({ t: 'reply', id: req.id, ok: false, error: { message: e.message, code, object } });
    },
  );
});
