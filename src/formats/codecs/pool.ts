// A small pool of threads that decode chunks, so a source reading compressed chunks (Zarr today; HDF5
// chunks read by byte range can use it too) is not bound to one core: the main thread fetches and copies
// while the threads decompress. Threads start on first use, are kept for the life of the process (a
// start costs ~30-50 ms) and do not keep it alive when idle.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { decodeBytes, type CodecId } from './decode.js';

/** A chunk sent to a decoding thread. */
export interface DecodeRequest {
  readonly id: number;
  readonly codec: CodecId;
  readonly bytes: Uint8Array;
}
/** A decoding thread's answer: the decoded bytes, or why they could not be decoded. */
export type DecodeReply =
  { readonly id: number; readonly out: Uint8Array } | { readonly id: number; readonly error: string };

const ENTRY = new URL('./codec-thread.js', import.meta.url);

/** Chunks smaller than this are decoded on the calling thread: a hand-off costs more than decoding them. */
export const INLINE_BELOW = 64 * 1024;

interface Lane {
  worker: Worker;
  pending: Map<number, { resolve(out: Uint8Array): void; reject(err: Error): void }>;
}

let size = Math.min(2, availableParallelism());
const lanes: Lane[] = [];
let nextId = 0;

/**
 * Sets how many decoding threads the process uses (0: decode on the calling thread); for benchmarks and
 * tests. Threads already started beyond the new size stay idle, kept for a later larger size.
 *
 * @example setDecodeThreads(0) // decode inline, as before the pool existed
 */
export function setDecodeThreads(n: number): void {
  size = Math.max(0, Math.floor(n));
}

/** How many decoding threads the process uses. */
export function decodeThreads(): number {
  return size;
}

function startLane(): Lane {
  const worker = new Worker(ENTRY);
  const lane: Lane = { worker, pending: new Map() };
  worker.unref();
  worker.on('message', (reply: DecodeReply) => {
    const p = lane.pending.get(reply.id);
    if (!p) return;
    lane.pending.delete(reply.id);
    if (lane.pending.size === 0) worker.unref();
    if ('out' in reply) p.resolve(reply.out);
    else p.reject(new Error(reply.error));
  });
  const fail = (err: Error) => {
    const i = lanes.indexOf(lane);
    if (i >= 0) lanes.splice(i, 1);
    for (const p of lane.pending.values()) p.reject(err);
    lane.pending.clear();
  };
  worker.on('error', fail);
  worker.on('exit', (code) => fail(new Error(`a chunk-decoding thread stopped (exit code ${code})`)));
  return lane;
}

/**
 * The decoded bytes of one chunk, decoded on one of the pool's threads (the least busy; a thread is
 * started while fewer than the pool's size run) or, for small chunks or a pool of 0, here. `bytes` is
 * moved to the thread when it owns its whole buffer, else copied; do not use it after the call.
 *
 * @example const raw = await decodeChunk('blosc', chunkBytes);
 */
export async function decodeChunk(codec: CodecId, bytes: Uint8Array): Promise<Uint8Array> {
  if (size === 0 || bytes.byteLength < INLINE_BELOW) return decodeBytes(codec, bytes);
  let lane = lanes.reduce<Lane | undefined>(
    (a, l) => (!a || l.pending.size < a.pending.size ? l : a),
    undefined,
  );
  if (!lane || (lane.pending.size > 0 && lanes.length < size)) {
    lane = startLane();
    lanes.push(lane);
  }
  const whole =
    bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice();
  const id = nextId++;
  const chosen = lane;
  return new Promise<Uint8Array>((resolve, reject) => {
    chosen.pending.set(id, { resolve, reject });
    chosen.worker.ref();
    const req: DecodeRequest = { id, codec, bytes: whole };
    chosen.worker.postMessage(req, [whole.buffer as ArrayBuffer]);
  });
}
