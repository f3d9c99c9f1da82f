import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { BufferPool } from '../../src/storage/buffer-pool.js';

const MiB = 1 << 20;

describe('BufferPool', () => {
  test('a released buffer serves the next read of the same or a smaller size', () => {
    const pool = new BufferPool();
    const a = pool.acquire(25 * MiB);
    assert.equal(a.byteLength, 25 * MiB);
    const b = pool.acquire(25 * MiB);
    assert.notEqual(a.buffer, b.buffer);
    pool.release(a);
    const c = pool.acquire(25 * MiB - 1000); // the last, smaller partition of a dataset
    assert.equal(c.buffer, a.buffer);
    assert.equal(c.byteOffset, 0);
    assert.equal(c.byteLength, 25 * MiB - 1000);
    // A slightly bigger partition fits the headroom instead of allocating again.
    pool.release(c);
    assert.equal(pool.acquire(26 * MiB).buffer, a.buffer);
  });

  test('keeps at most `keep` free buffers, the largest', () => {
    const pool = new BufferPool(2);
    const views = [2, 8, 4].map((n) => pool.acquire(n * MiB));
    for (const v of views) pool.release(v);
    assert.equal(pool.held.buffers, 2);
    assert.ok(pool.held.bytes >= 12 * MiB && pool.held.bytes <= 14 * MiB, String(pool.held.bytes));
    assert.equal(pool.acquire(7 * MiB).buffer, views[1].buffer);
  });

  test('ignores what it did not hand out, a second release, and small or detached buffers', () => {
    const pool = new BufferPool();
    pool.release(new Uint8Array(4 * MiB));
    const small = pool.acquire(1000);
    assert.equal(small.byteLength, 1000);
    pool.release(small);
    assert.equal(pool.held.buffers, 0);

    const a = pool.acquire(4 * MiB);
    pool.release(a);
    const b = pool.acquire(4 * MiB); // the same memory, now another partition's
    assert.equal(b.buffer, a.buffer);
    pool.release(a); // a stale second release must not free b's memory
    assert.notEqual(pool.acquire(4 * MiB).buffer, b.buffer);

    const moved = pool.acquire(4 * MiB);
    structuredClone(moved.buffer, { transfer: [moved.buffer as ArrayBuffer] }); // sent to another thread: detached
    pool.release(moved);
    assert.equal(pool.held.buffers, 0);
  });
});
