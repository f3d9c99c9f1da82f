/** One output of the model for every item of a partition: `width` values per item, flattened. */
export interface PredictionColumn {
  readonly name: string;
  /** Values per item: 1 is written as a number, more as an array. */
  readonly width: number;
  readonly data: ArrayLike<number>;
}

/**
 * Every prediction of one partition, column by column: one row per item, in the partition's order.
 *
 * @example
 * const table: PredictionTable = { partition: '1', index: Int32Array.from([0, 1]), columns: [z] };
 */
export interface PredictionTable {
  readonly partition: string;
  /** Position of each row's item within the partition. */
  readonly index: ArrayLike<number>;
  readonly columns: readonly PredictionColumn[];
  /** True values from the label column, when one is mapped. */
  readonly label?: PredictionColumn;
  /** A stable item id per row (source key), for sources with one object per item. */
  readonly ids?: readonly string[];
  /** Columns of the input copied beside the id (`--carry`): one value per row, null when unread. */
  readonly carried?: readonly CarriedColumn[];
  /** Per row: why the item has no prediction, or null. Rows with an error hold NaN outputs. */
  readonly errors?: readonly (string | null)[];
}

/** A column of the input carried into the predictions (`--carry`). */
export interface CarriedColumn {
  readonly name: string;
  readonly values: readonly (number | string | null)[];
}

/** Row count of a table. */
export function tableRows(table: PredictionTable): number {
  return table.index.length;
}

/** The value(s) of a column for one row: a number, or an array when the column is wider than 1. */
export function cell(column: PredictionColumn, row: number): number | number[] {
  if (column.width === 1) return column.data[row];
  const out = new Array<number>(column.width);
  for (let j = 0; j < column.width; j++) out[j] = column.data[row * column.width + j];
  return out;
}

/**
 * Column names of the written file, in order: partition, index, [id], [carried...], outputs...,
 * [label], [error].
 */
export function outputColumnNames(table: PredictionTable): string[] {
  const names = ['partition', 'index'];
  if (table.ids) names.push('id');
  names.push(...(table.carried ?? []).map((c) => c.name));
  names.push(...table.columns.map((c) => c.name));
  if (table.label) names.push('label');
  if (table.errors) names.push('error');
  return names;
}
