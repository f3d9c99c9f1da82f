const MiB = 1 << 20;

/**
 * Reusable memory for whole-object reads (tensor partitions), so a worker that runs partition after
 * partition keeps reading into the same few buffers instead of allocating a fresh one each time.
 *
 * Why: every fresh 25 MB `ArrayBuffer` counts as V8 external memory, and V8 answers external-memory
 * growth with extra scavenges and a full mark-compact (10-30 ms each), about once a partition; the
 * worker's resident memory also crept up as freed buffers waited for collection. A worker holds at most
 * two partitions at once (the current one and the one prefetched), so two buffers cover it.
 *
 * A buffer must be released only when nothing still views it: the worker releases a partition's bytes
 * after its predictions are copied out and written, never earlier. Objects under `minBytes` are not
 * pooled; there the allocation costs nothing worth saving.
 *
 * @example
 * const pool = new BufferPool();
 * const bytes = await store.get(key, { into: (n) => pool.acquire(n) });
 * // ... decode, run, write ...
 * pool.release(bytes);
 */
export class BufferPool {
  private readonly free: ArrayBuffer[] = [];
  // The views handed out and not yet given back: a stale view of memory that went to another partition
  // since is not among them, so releasing it twice cannot free memory in use.
  private readonly leased = new WeakSet<Uint8Array>();

  constructor(
    /** Free buffers kept for reuse; more are dropped (largest kept). */
    private readonly keep = 2,
    private readonly minBytes = MiB,
  ) {}

  /** A view of exactly `size` bytes, not zero-filled, over a pooled buffer when one is big enough. */
  acquire(size: number): Uint8Array {
    if (size < this.minBytes) return allocateBytes(size);
    let pick = -1;
    for (let i = 0; i < this.free.length; i++) {
      const cap = this.free[i].byteLength;
      if (cap >= size && (pick < 0 || cap < this.free[pick].byteLength)) pick = i;
    }
    // Headroom, so partitions of a dataset (near-equal sizes, the last one smaller) share buffers.
    const buffer =
      pick >= 0 ? this.free.splice(pick, 1)[0] : allocateBytes(Math.ceil((size * 1.125) / MiB) * MiB).buffer;
    const view = new Uint8Array(buffer, 0, size);
    this.leased.add(view);
    return view;
  }

  /**
   * Gives back a view `acquire` returned; anything else (a small, unpooled view, a view already given
   * back, or one whose buffer was transferred to another thread and is now detached) is ignored.
   */
  release(view: Uint8Array): void {
    if (!this.leased.has(view)) return;
    this.leased.delete(view);
    const buffer = view.buffer as ArrayBuffer;
    if (buffer.byteLength === 0) return;
    this.free.push(buffer);
    this.free.sort((a, b) => b.byteLength - a.byteLength);
    this.free.length = Math.min(this.free.length, this.keep);
  }

  /** Free buffers held for reuse, and their bytes (for tests and diagnostics). */
  get held(): { buffers: number; bytes: number } {
    return { buffers: this.free.length, bytes: this.free.reduce((s, b) => s + b.byteLength, 0) };
  }
}

/**
 * `size` fresh bytes, not zero-filled and never a slice of Node's shared pool, so tensors can view them
 * at the file's own alignment. @example const bytes = allocateBytes(1024);
 */
export function allocateBytes(size: number): Uint8Array {
  const buf = Buffer.allocUnsafeSlow(size);
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength);
}

/**
 * Calls a `get`'s `into` (see `GetOptions` in store.ts) and checks it kept its contract (exactly `size` bytes).
 * @example const out = sized((n) => pool.acquire(n), 1024, '/data/1.pt');
 */
export function sized(into: (size: number) => Uint8Array, size: number, what: string): Uint8Array {
  const out = into(size);
  if (out.byteLength !== size) {
    throw new RangeError(`reading ${what}: asked for ${size} bytes of memory, given ${out.byteLength}`);
  }
  return out;
}
