// Fixture paths and comparisons for the image, FITS and Parquet source tests. Expected values are .npy
// files written by PIL / astropy (scripts/fixtures/make_*_fixtures.*), read with CAI's own .npy reader.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CaiError } from '../../src/errors.js';
import { decodeNpyTensor } from '../../src/formats/npy/index.js';
import type { PartitionStream, SourceBatch } from '../../src/formats/source.js';
import type { TypedArray } from '../../src/tensor/dtype.js';
import type { Tensor } from '../../src/tensor/tensor.js';
import { DelegatingStore } from '../../src/storage/delegating-store.js';

/** test/fixtures/ (tests run from dist/test/sources). */
export const FIXTURES = fileURLToPath(new URL('../../../test/fixtures/', import.meta.url));

/** A fixture file's bytes. */
export function fixture(rel: string): Uint8Array {
  return new Uint8Array(readFileSync(`${FIXTURES}${rel}`));
}

/** An expected array saved by a fixture script. */
export function expectedNpy(rel: string): Tensor {
  return decodeNpyTensor(fixture(rel), rel);
}

/** Largest and mean absolute difference between two arrays of the same length. */
export function differences(
  got: ArrayLike<number | bigint>,
  want: ArrayLike<number | bigint>,
): { max: number; mean: number } {
  assert.equal(got.length, want.length, 'lengths differ');
  let max = 0;
  let sum = 0;
  for (let i = 0; i < want.length; i++) {
    const d = Math.abs(Number(got[i]) - Number(want[i]));
    max = Math.max(max, d);
    sum += d;
  }
  return { max, mean: sum / Math.max(1, want.length) };
}

/** Asserts two arrays hold the same values, NaN equal to NaN. */
export function assertSameValues(
  got: TypedArray | ArrayLike<number>,
  want: TypedArray | ArrayLike<number>,
  what: string,
): void {
  assert.equal(got.length, want.length, `${what}: length`);
  for (let i = 0; i < want.length; i++) {
    const a = got[i] as number | bigint;
    const b = want[i] as number | bigint;
    assert.ok(Object.is(a, b) || a === b, `${what}[${i}]: got ${a}, expected ${b}`);
  }
}

/** Every batch of a stream, read with `batchSize`. */
export async function readAll(stream: PartitionStream, batchSize = 4): Promise<SourceBatch[]> {
  const out: SourceBatch[] = [];
  for await (const b of stream.batches(batchSize)) out.push(b);
  return out;
}

/** Awaits `fn` and asserts it rejects with a CaiError of `code` whose message mentions every string. */
export async function rejectsWith(
  fn: () => Promise<unknown>,
  code: string,
  mentions: readonly string[],
): Promise<CaiError> {
  let caught: unknown;
  try {
    await fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof CaiError, `expected a CaiError ${code}, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  for (const m of mentions) assert.ok(caught.message.includes(m), `"${m}" missing from: ${caught.message}`);
  return caught;
}

/** A Store wrapper that records every ranged and whole read, to check what a reader fetches. */
export class CountingStore extends DelegatingStore {
  readonly ranges: { key: string; start: number; end: number }[] = [];
  readonly whole: string[] = [];
  override get(key: string): Promise<Uint8Array> {
    this.whole.push(key);
    return super.get(key);
  }
  override getRange(key: string, start: number, end: number): Promise<Uint8Array> {
    this.ranges.push({ key, start, end });
    return super.getRange(key, start, end);
  }
  /** Bytes fetched by ranged reads. */
  rangedBytes(): number {
    return this.ranges.reduce((s, r) => s + (r.end - r.start), 0);
  }
}

/** The mean of each row of column `name`, over every batch, in row order. @example rowMeans(await readAll(stream), "images") */
export function rowMeans(batches: readonly SourceBatch[], name: string): number[] {
  return batches.flatMap((b) => {
    const c = b.rows.columns[b.rows.names.indexOf(name)];
    const per = c.shape.slice(1).reduce((s, d) => s * d, 1);
    return Array.from({ length: b.rows.items }, (_, i) => {
      let sum = 0;
      for (let k = 0; k < per; k++) sum += Number((c.data as ArrayLike<number>)[i * per + k]);
      return sum / per;
    });
  });
}

/** Asserts two lists of numbers agree within `tol`, naming the first that does not. @example assertClose(got, want, 1e-6, "means") */
export function assertClose(
  got: readonly number[],
  want: readonly number[],
  tol: number,
  what: string,
): void {
  assert.equal(got.length, want.length, `${what}: count`);
  got.forEach((g, i) => assert.ok(Math.abs(g - want[i]) <= tol, `${what}[${i}]: ${g} vs ${want[i]}`));
}

/** One column of a partition's batches joined into one array of its type, in row order. */
export function concatColumn(batches: readonly SourceBatch[], name: string): TypedArray {
  const parts = batches.map((b) => b.rows.columns[b.rows.names.indexOf(name)].data);
  const Ctor = parts[0].constructor as new (n: number) => TypedArray;
  const out = new Ctor(parts.reduce((s, p) => s + p.length, 0));
  let at = 0;
  for (const p of parts) {
    (out as Float64Array).set(p as Float64Array, at);
    at += p.length;
  }
  return out;
}
