import { CaiError, ErrorCodes } from '../errors.js';
import { sliceRows, type Tensor } from '../tensor/tensor.js';

/**
 * Named tensor columns that share their first dimension: one row per item. Tuples and lists are named
 * by position (`"0"`, `"1"`, ...), dicts and safetensors by their keys.
 *
 * @example
 * const set = columnSet('1.pt', ['0', '1'], [images, magnitudes]);
 */
export interface ColumnSet {
  readonly names: readonly string[];
  readonly columns: readonly Tensor[];
  /** Items (rows) shared by every column. */
  readonly items: number;
}

/**
 * Builds a {@link ColumnSet}, checking that every column has at least one dimension and the same number
 * of rows; `source` names the file in the error.
 *
 * @example columnSet('data/1.pt', ['image'], [t])
 */
export function columnSet(source: string, names: readonly string[], columns: readonly Tensor[]): ColumnSet {
  if (columns.length === 0) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      'holds no tensors; a partition needs at least one tensor column',
    );
  }
  const items = columns[0].shape[0];
  columns.forEach((c, i) => {
    if (c.shape.length === 0) {
      throw new CaiError(
        ErrorCodes.unsupported,
        source,
        `column "${names[i]}" is a scalar; every column needs a first (items) dimension`,
      );
    }
    if (c.shape[0] !== items) {
      const sizes = columns.map((t, j) => `"${names[j]}": ${t.shape[0]}`).join(', ');
      throw new CaiError(
        ErrorCodes.corrupt,
        source,
        `columns disagree on the number of items (${sizes}); every column must have one row per item`,
      );
    }
  });
  return { names: [...names], columns: [...columns], items };
}

/** Rows `[start, end)` of every column, sharing memory. @example sliceColumns(set, 0, 128) */
export function sliceColumns(set: ColumnSet, start: number, end: number): ColumnSet {
  return { names: set.names, columns: set.columns.map((c) => sliceRows(c, start, end)), items: end - start };
}
