// Turning decoded Parquet rows into a batch: the image column decoded and preprocessed (encoded bytes
// through sharp, raw pixel arrays reshaped or preprocessed), features as typed columns, and a failed
// item for any row whose image or features cannot be used.
import { CaiError, ErrorCodes } from '../../errors.js';
import { allocate, type DType, type TypedArray } from '../../tensor/dtype.js';
import { numel, type Tensor } from '../../tensor/tensor.js';
import { decodeImage, toRow, type DecodeNotes } from '../image/decode.js';
import type { ResolvedPreprocess } from '../image/preprocess.js';
import { mapSettled, reasonOf } from '../partition/map-limit.js';
import { applyNanPolicy, type NanPolicy } from '../partition/nan.js';
import type { ItemRow } from '../partition/object-items.js';
import type { CarriedValue, FailedItem, SourceBatch } from '../source.js';
import type { ParquetColumn, ParquetLayout } from './layout.js';
import type { ParquetRow } from './row-reader.js';

/** What assembling batches needs to know and remembers between batches (shapes stay fixed). */
export interface BatchContext {
  readonly layout: ParquetLayout;
  readonly key: string;
  /** Preprocessing for encoded images, and for raw pixels when the job asks for any. */
  readonly preprocess: ResolvedPreprocess;
  readonly preprocessRaw: boolean;
  readonly imageShape?: readonly number[];
  readonly nan?: NanPolicy;
  /** Row shape and dtype of each output column, fixed by the first good row. */
  readonly shapes: Map<string, { dtype: DType; shape: readonly number[] }>;
  /** What decoding noticed (16-bit images), counted into the partition's stats. */
  readonly notes?: DecodeNotes;
}

function typedCopy(values: ArrayLike<number | bigint>, dtype: DType): TypedArray {
  const out = allocate(dtype, values.length);
  if (out instanceof BigInt64Array) for (let i = 0; i < values.length; i++) out[i] = BigInt(values[i]);
  else for (let i = 0; i < values.length; i++) (out as Float64Array)[i] = Number(values[i]);
  return out;
}

function rawShape(ctx: BatchContext, row: ParquetRow): number[] {
  const s = ctx.layout.shape ? (row[ctx.layout.shape.name] as ArrayLike<number> | null) : ctx.imageShape;
  if (!s) throw new Error(`shape column "${ctx.layout.shape?.name}" is null`);
  return Array.from(s, Number);
}

async function imageRow(ctx: BatchContext, row: ParquetRow, id: string): Promise<ItemRow> {
  const col = ctx.layout.image as ParquetColumn;
  const value = row[col.name];
  if (value === null || value === undefined) {
    throw new CaiError(ErrorCodes.corrupt, id, `image column "${col.name}" is null: the row has no image`);
  }
  if (col.kind !== 'list') {
    const bytes =
      col.kind === 'struct-bytes' ? (value as { bytes?: Uint8Array }).bytes : (value as Uint8Array);
    if (!(bytes instanceof Uint8Array)) throw new Error(`image column "${col.name}" holds no bytes`);
    return toRow(await decodeImage(bytes, ctx.preprocess, id, ctx.notes), ctx.preprocess);
  }
  const values = value as ArrayLike<number>;
  const shape = rawShape(ctx, row);
  if (values.length !== numel(shape)) {
    throw new CaiError(
      ErrorCodes.corrupt,
      id,
      `has ${values.length} pixel values, but its shape [${shape.join(', ')}] needs ${numel(shape)}; check imageShape / shapeColumn`,
    );
  }
  if (!ctx.preprocessRaw) {
    const data = typedCopy(values, col.dtype as DType);
    return { dtype: col.dtype as DType, shape, data: applyNanPolicy(data, ctx.nan, id) };
  }
  if (col.dtype !== 'uint8' || shape.length < 2 || shape.length > 3 || ![1, 3, 4].includes(shape[2] ?? 1)) {
    throw new CaiError(
      ErrorCodes.unsupported,
      id,
      `raw pixels of ${col.dtype} [${shape.join(', ')}] cannot be preprocessed; preprocessing takes 8-bit height x width x channels (1, 3 or 4) arrays: drop preset/preprocess to feed them as they are`,
    );
  }
  const data = values instanceof Uint8Array ? values : Uint8Array.from(values);
  const raw = { data, height: shape[0], width: shape[1], channels: shape[2] ?? 1 };
  return toRow(await decodeImage(raw, ctx.preprocess, id), ctx.preprocess);
}

function featureRow(ctx: BatchContext, col: ParquetColumn, row: ParquetRow, id: string): ItemRow {
  const v = row[col.name];
  if (v === null || v === undefined) {
    throw new CaiError(ErrorCodes.corrupt, id, `feature column "${col.name}" is null: the row has no value`);
  }
  const dtype = col.dtype as DType;
  const values =
    col.kind === 'list' ? (v as ArrayLike<number>) : [typeof v === 'boolean' ? Number(v) : (v as number)];
  const data = applyNanPolicy(typedCopy(values, dtype), ctx.nan, `${id} column "${col.name}"`);
  return { dtype, shape: col.kind === 'list' ? [values.length] : [], data };
}

function checkShape(ctx: BatchContext, name: string, r: ItemRow): void {
  const known = ctx.shapes.get(name);
  if (!known) {
    ctx.shapes.set(name, { dtype: r.dtype, shape: r.shape });
    return;
  }
  const same =
    known.dtype === r.dtype &&
    known.shape.length === r.shape.length &&
    known.shape.every((d, i) => d === r.shape[i]);
  if (!same) {
    throw new Error(
      `column "${name}" is ${r.dtype} [${r.shape.join(', ')}] here but ${known.dtype} [${known.shape.join(', ')}] in earlier rows; every row must have the same size (resize images with preprocess)`,
    );
  }
}

/**
 * Builds one batch from rows starting at partition position `first`: ids from the id column (or
 * `key#row`), the image column first, then the features, each row checked; rows that fail are
 * reported with their id and reason.
 *
 * @example const batch = await assembleBatch(ctx, rows, 0, 0);
 */
export async function assembleBatch(
  ctx: BatchContext,
  rows: readonly ParquetRow[],
  first: number,
  fileRow: number,
): Promise<SourceBatch> {
  const { layout } = ctx;
  const ids = rows.map((r, i) =>
    layout.id && r[layout.id.name] !== null && r[layout.id.name] !== undefined
      ? String(r[layout.id.name])
      : `${ctx.key}#${fileRow + i}`,
  );
  const images = layout.image ? await mapSettled(rows, 4, (r, i) => imageRow(ctx, r, ids[i])) : undefined;
  const names = [...(layout.image ? [layout.image.name] : []), ...layout.features.map((f) => f.name)];
  const good: ItemRow[][] = [];
  const indices: number[] = [];
  const goodIds: string[] = [];
  const goodRows: ParquetRow[] = [];
  const failed: FailedItem[] = [];
  rows.forEach((r, i) => {
    try {
      const cells: ItemRow[] = [];
      if (images) {
        const img = images[i];
        if (!img.ok) throw img.error;
        cells.push(img.value);
      }
      for (const f of layout.features) cells.push(featureRow(ctx, f, r, ids[i]));
      cells.forEach((c, k) => checkShape(ctx, names[k], c));
      good.push(cells);
      indices.push(first + i);
      goodIds.push(ids[i]);
      goodRows.push(r);
    } catch (err) {
      failed.push({ index: first + i, id: ids[i], reason: reasonOf(err) });
    }
  });
  const columns: Tensor[] = names.map((name, k) => {
    const { dtype, shape } = ctx.shapes.get(name) ?? { dtype: 'float32' as DType, shape: [] };
    const size = numel(shape);
    const data = allocate(dtype, good.length * size);
    good.forEach((cells, j) => (data as Float64Array).set(cells[k].data as Float64Array, j * size));
    return { dtype, shape: [good.length, ...shape], data };
  });
  return {
    rows: { names, columns, items: good.length },
    indices: Int32Array.from(indices),
    ids: goodIds,
    failed,
    ...(layout.carry
      ? {
          carried: Object.fromEntries(
            layout.carry.map((c) => [c.name, goodRows.map((r) => carriedValue(r[c.name]))]),
          ),
        }
      : {}),
  };
}

/** A carried cell as a number or a string (64-bit integers as numbers), null when missing. */
function carriedValue(v: unknown): CarriedValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'bigint') return Number(v);
  return typeof v === 'number' ? v : String(v);
}
