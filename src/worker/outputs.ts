import { CaiError, ErrorCodes } from '../errors.js';
import type { PredictionColumn } from '../formats/predictions/table.js';
import { elementAsNumber, numel, type Tensor } from '../tensor/tensor.js';

function scatter(dst: Float64Array, width: number, t: Tensor, indices: ArrayLike<number>): void {
  const dense = t.dtype === 'float32' || t.dtype === 'float64';
  const contiguous = indices.length > 0 && indices[indices.length - 1] - indices[0] === indices.length - 1;
  if (dense && contiguous) {
    dst.set(t.data as Float32Array, indices[0] * width);
    return;
  }
  for (let r = 0; r < indices.length; r++) {
    const base = indices[r] * width;
    for (let j = 0; j < width; j++) dst[base + j] = elementAsNumber(t, r * width + j);
  }
}

/**
 * Collects model outputs batch by batch into one flat array per output, placed by item index, and
 * checks that every batch gives one row per item with the same width. Items never predicted (failed to
 * decode) stay NaN.
 */
export class OutputCollector {
  private readonly columns = new Map<string, { width: number; data: Float64Array }>();

  constructor(
    private readonly items: number,
    private readonly source: string,
  ) {}

  /** Adds the outputs of one batch whose rows are the items at `indices`. */
  add(outputs: Readonly<Record<string, Tensor>>, indices: ArrayLike<number>): void {
    const rows = indices.length;
    for (const [name, t] of Object.entries(outputs)) {
      if (t.shape.length === 0 || t.shape[0] !== rows) {
        throw new CaiError(
          ErrorCodes.model,
          this.source,
          `output "${name}" has shape [${t.shape.join(', ')}] for a batch of ${rows} items; CAI needs one row per item (first dimension = batch)`,
        );
      }
      const width = numel(t.shape.slice(1));
      let col = this.columns.get(name);
      if (!col) {
        col = { width, data: new Float64Array(this.items * width).fill(NaN) };
        this.columns.set(name, col);
      } else if (col.width !== width) {
        throw new CaiError(
          ErrorCodes.model,
          this.source,
          `output "${name}" changed width between batches (${col.width} then ${width})`,
        );
      }
      scatter(col.data, width, t, indices);
    }
  }

  /** The collected outputs, named after the model's outputs, in the given order. */
  columnsFor(names: readonly string[]): PredictionColumn[] {
    return names.map((name) => {
      const col = this.columns.get(name) ?? { width: 1, data: new Float64Array(this.items).fill(NaN) };
      return { name, width: col.width, data: col.data };
    });
  }
}

/** Collects the label column's values, placed by item index. */
export class LabelCollector {
  private data?: Float64Array;
  private width = 1;

  constructor(private readonly items: number) {}

  /** Adds the label values of the rows at `indices`. */
  add(t: Tensor, indices: ArrayLike<number>): void {
    if (!this.data) {
      this.width = numel(t.shape.slice(1));
      this.data = new Float64Array(this.items * this.width).fill(NaN);
    }
    scatter(this.data, this.width, t, indices);
  }

  /** The label column, or undefined when no row had one. */
  column(): PredictionColumn | undefined {
    return this.data ? { name: 'label', width: this.width, data: this.data } : undefined;
  }
}

/**
 * The rows of a batch whose model outputs hold a non-finite value (NaN, +-Infinity), each with the first
 * output that does. A model turns a NaN or infinite input into such an output without a word; the worker
 * makes the item a failed item instead of a silent null prediction.
 *
 * @example nonFiniteRows({ y: tensor('float32', [2, 1], Float32Array.of(1, NaN)) }, 2) // Map { 1 => 'y' }
 */
export function nonFiniteRows(outputs: Readonly<Record<string, Tensor>>, rows: number): Map<number, string> {
  const found = new Map<number, string>();
  for (const [name, t] of Object.entries(outputs)) {
    if (t.dtype !== 'float32' && t.dtype !== 'float64' && t.dtype !== 'float16') continue;
    const width = rows > 0 ? numel(t.shape) / rows : 0;
    for (let r = 0; r < rows; r++) {
      if (found.has(r)) continue;
      for (let j = 0; j < width; j++) {
        if (!Number.isFinite(elementAsNumber(t, r * width + j))) {
          found.set(r, name);
          break;
        }
      }
    }
  }
  return found;
}
