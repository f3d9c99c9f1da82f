import { CaiError, ErrorCodes } from '../errors.js';
import type { PredictionColumn } from '../formats/predictions/table.js';
import { elementAsNumber, numel, type Tensor } from '../tensor/tensor.js';

/**
 * Collects a model output batch by batch into one flat array per output, checking that every batch
 * gives one row per item with the same width.
 */
export class OutputCollector {
  private readonly columns = new Map<string, { width: number; data: Float64Array }>();

  constructor(
    private readonly items: number,
    private readonly source: string,
  ) {}

  /** Adds the outputs for rows `[start, start + rows)`. */
  add(outputs: Readonly<Record<string, Tensor>>, start: number, rows: number): void {
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
        col = { width, data: new Float64Array(this.items * width) };
        this.columns.set(name, col);
      } else if (col.width !== width) {
        throw new CaiError(
          ErrorCodes.model,
          this.source,
          `output "${name}" changed width between batches (${col.width} then ${width})`,
        );
      }
      const base = start * width;
      if (t.dtype === 'float32' || t.dtype === 'float64') col.data.set(t.data as Float32Array, base);
      else for (let i = 0; i < t.data.length; i++) col.data[base + i] = elementAsNumber(t, i);
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

/** A label column flattened to numbers, one `width`-wide row per item. @example labelColumn(t) */
export function labelColumn(t: Tensor): PredictionColumn {
  const width = numel(t.shape.slice(1));
  const data = new Float64Array(t.data.length);
  if (t.dtype === 'float32' || t.dtype === 'float64') data.set(t.data as Float32Array);
  else for (let i = 0; i < data.length; i++) data[i] = elementAsNumber(t, i);
  return { name: 'label', width, data };
}
