// The rows of any input, in order, as chunks of columns: tensor files by row ranges, every other source
// through the same partition streams `cai run` reads (failed items are reported, not written).
import type { JobSpec } from '../../job/spec.js';
import { naturalCompare } from '../../storage/natural-sort.js';
import type { ObjectInfo, Store } from '../../storage/store.js';
import { bytesPerElement } from '../../tensor/dtype.js';
import { numel } from '../../tensor/tensor.js';
import type { ColumnSet } from '../columns.js';
import { planSource, type SourceKind } from '../source.js';
import { openTensorRows } from './tensor-ranges.js';

/** Where a stretch of rows came from: rows `[start, end)` of an object or of a source partition. */
export interface SourceRange {
  readonly key: string;
  readonly start: number;
  readonly end: number;
}

/** A chunk of consecutive rows with where they came from. */
export interface RowChunk {
  readonly set: ColumnSet;
  readonly from: readonly SourceRange[];
  /** Item ids, for sources whose items are objects or rows with ids. */
  readonly ids?: readonly string[];
}

/** An item a source could not decode: skipped, and listed in the manifest. */
export interface SkippedItem {
  readonly id: string;
  readonly reason: string;
}

/** Bytes read per ranged request of a tensor file: large enough to amortize a request, small enough to bound memory. */
export const CHUNK_BYTES = 16 * 1024 * 1024;

/**
 * Yields every row of tensor files (`.npy`, `.safetensors` by ranges; `.pt`, `.npz` whole), file after
 * file in natural order, in chunks of about `chunkBytes` ({@link CHUNK_BYTES}). `onOpen` tells, per file, whether its
 * memory stays bounded.
 *
 * @example for await (const chunk of tensorChunks(store, objects)) ...
 */
export async function* tensorChunks(
  store: Store,
  objects: readonly ObjectInfo[],
  onOpen?: (key: string, ranged: boolean, items: number) => void,
  chunkBytes = CHUNK_BYTES,
): AsyncIterable<RowChunk> {
  for (const o of [...objects].sort((a, b) => naturalCompare(a.key, b.key))) {
    const t = await openTensorRows(store, o.key, o.size);
    onOpen?.(o.key, t.ranged, t.items);
    const rowBytes = t.columns.reduce((s, c) => s + numel(c.rowShape) * bytesPerElement(c.dtype), 0);
    const step = Math.max(1, Math.floor(chunkBytes / Math.max(1, rowBytes)));
    for (let start = 0; start < t.items; start += step) {
      const end = Math.min(t.items, start + step);
      yield { set: await t.read(start, end), from: [{ key: o.key, start, end }] };
    }
  }
}

/**
 * Yields the rows of a non-tensor source (images, FITS, Parquet) by planning its partitions and reading
 * them in batches; items that fail to decode go to `onSkip` instead of the output.
 *
 * @example for await (const chunk of sourceChunks(imageFiles, store, objects, job, (s) => skipped.push(s))) ...
 */
export async function* sourceChunks(
  kind: SourceKind,
  store: Store,
  objects: readonly ObjectInfo[],
  job: JobSpec,
  onSkip: (item: SkippedItem) => void,
  batchSize = 256,
): AsyncIterable<RowChunk> {
  const sorted = [...objects].sort((a, b) => naturalCompare(a.key, b.key));
  const planned = await planSource(kind, store, sorted, job);
  for (const partition of planned) {
    const stream = await kind.open(store, { ...partition, source: kind.name }, job);
    for await (const batch of stream.batches(batchSize)) {
      for (const f of batch.failed ?? [])
        onSkip({ id: f.id ?? `${partition.key}#${f.index}`, reason: f.reason });
      if (batch.rows.items === 0) continue;
      // Items that are whole objects are named by their ids; rows of one file by their row numbers.
      const from: SourceRange[] = [];
      const offset = partition.rows?.[0] ?? 0;
      for (let i = 0; i < batch.indices.length && !partition.keys; i++) {
        const row = offset + batch.indices[i];
        const last = from[from.length - 1];
        if (last && last.end === row) from[from.length - 1] = { ...last, end: row + 1 };
        else from.push({ key: partition.key, start: row, end: row + 1 });
      }
      yield { set: batch.rows, from, ids: batch.ids };
    }
  }
}

/**
 * Yields what `source` yields, asking for the next value as soon as one is handed out, so producing the
 * next (a ranged read) overlaps consuming this one (encoding and writing). Holds at most one value ahead.
 *
 * @example for await (const chunk of readAhead(tensorChunks(store, objects))) await write(chunk);
 */
export async function* readAhead<T>(source: AsyncIterable<T>): AsyncIterable<T> {
  const it = source[Symbol.asyncIterator]();
  let next = it.next();
  try {
    for (;;) {
      const r = await next;
      if (r.done) return;
      next = it.next();
      // A consumer that stops early never awaits this one: keep its failure from going unhandled.
      next.catch(() => undefined);
      yield r.value;
    }
  } finally {
    await it.return?.();
  }
}
