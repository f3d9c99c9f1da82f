import type { ColumnSet } from '../formats/columns.js';
import type { FailedItem, SourceBatch } from '../formats/source.js';
import { allocate } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';

function concatTensors(parts: readonly Tensor[]): Tensor {
  if (parts.length === 1) return parts[0];
  const first = parts[0];
  const rows = parts.reduce((a, t) => a + t.shape[0], 0);
  const data = allocate(
    first.dtype,
    parts.reduce((a, t) => a + t.data.length, 0),
  );
  let at = 0;
  for (const t of parts) {
    (data as Float32Array).set(t.data as Float32Array, at);
    at += t.data.length;
  }
  return { dtype: first.dtype, shape: [rows, ...first.shape.slice(1)], data } as Tensor;
}

function concatBatches(parts: readonly SourceBatch[]): SourceBatch {
  if (parts.length === 1) return parts[0];
  const first = parts[0].rows;
  const rows: ColumnSet = {
    names: first.names,
    columns: first.columns.map((_, c) => concatTensors(parts.map((p) => p.rows.columns[c]))),
    items: parts.reduce((a, p) => a + p.rows.items, 0),
  };
  const indices = new Int32Array(rows.items);
  let at = 0;
  for (const p of parts) {
    indices.set(Array.from(p.indices), at);
    at += p.indices.length;
  }
  const ids = parts.every((p) => p.ids) ? parts.flatMap((p) => [...(p.ids ?? [])]) : undefined;
  const failed: FailedItem[] = parts.flatMap((p) => [...(p.failed ?? [])]);
  const first0 = parts[0].carried;
  const carried = first0
    ? Object.fromEntries(
        Object.keys(first0).map((k) => [k, parts.flatMap((p) => [...(p.carried?.[k] ?? [])])]),
      )
    : undefined;
  return {
    rows,
    indices,
    ...(ids ? { ids } : {}),
    ...(failed.length ? { failed } : {}),
    ...(carried ? { carried } : {}),
  };
}

/**
 * Regroups a stream of small batches into batches of `size()` rows, asking for the size anew before
 * each batch, so a batch size can be chosen while a partition is being read (`--batch-size auto`).
 * Rows are copied once when several source batches make one model batch.
 *
 * @example for await (const b of rebatch(stream.batches(32), () => chosen ?? next())) ...
 */
export async function* rebatch(
  source: AsyncIterable<SourceBatch>,
  size: () => number,
): AsyncIterable<SourceBatch> {
  let parts: SourceBatch[] = [];
  let have = 0;
  let want = size();
  for await (const batch of source) {
    if (batch.rows.items === 0) {
      if (batch.failed?.length) yield batch;
      continue;
    }
    parts.push(batch);
    have += batch.rows.items;
    while (have >= want) {
      // Split the last part when it overshoots, so every batch has exactly the size asked for.
      const merged = concatBatches(parts);
      const head = sliceBatch(merged, 0, want);
      const rest = want < merged.rows.items ? sliceBatch(merged, want, merged.rows.items) : undefined;
      yield head;
      parts = rest ? [rest] : [];
      have = rest ? rest.rows.items : 0;
      want = size();
    }
  }
  if (have > 0) yield concatBatches(parts);
}

function sliceBatch(b: SourceBatch, start: number, end: number): SourceBatch {
  const rowSize = (t: Tensor) => t.data.length / Math.max(1, t.shape[0]);
  const rows: ColumnSet = {
    names: b.rows.names,
    columns: b.rows.columns.map(
      (t) =>
        ({
          dtype: t.dtype,
          shape: [end - start, ...t.shape.slice(1)],
          data: t.data.subarray(start * rowSize(t), end * rowSize(t)),
        }) as Tensor,
    ),
    items: end - start,
  };
  const indices = Array.from(b.indices).slice(start, end);
  // Failed items travel with the first slice so each is reported once.
  return {
    rows,
    indices,
    ...(b.ids ? { ids: b.ids.slice(start, end) } : {}),
    ...(b.carried
      ? {
          carried: Object.fromEntries(Object.entries(b.carried).map(([k, v]) => [k, v.slice(start, end)])),
        }
      : {}),
    ...(start === 0 && b.failed ? { failed: b.failed } : {}),
  };
}
