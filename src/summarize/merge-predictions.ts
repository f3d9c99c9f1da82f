import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { ParquetWriter, fileWriter, schemaFromColumnData, type ColumnSource } from 'hyparquet-writer';
import { CaiError, ErrorCodes } from '../errors.js';
import { openStore, type StoreOptions } from '../storage/open.js';
import type { Store } from '../storage/store.js';
import { predictionFiles, readPredictions, type PredictionRows } from './read-predictions.js';
import { PREDICTION_EXTENSIONS, type PredictionFormat } from '../formats/predictions/writers.js';

/** What {@link mergePredictions} wrote. */
export interface MergeResult {
  readonly partitions: number;
  readonly rows: number;
  readonly columns: readonly string[];
}

/** The format a merged file is written in, from its extension. */
export function mergeFormat(file: string): PredictionFormat {
  const ext = file.slice(file.lastIndexOf('.') + 1).toLowerCase();
  const found = (Object.keys(PREDICTION_EXTENSIONS) as PredictionFormat[]).find(
    (f) => PREDICTION_EXTENSIONS[f] === ext,
  );
  if (!found)
    throw new CaiError(
      ErrorCodes.option,
      file,
      'name the merged file .parquet, .csv or .jsonl (--to all.parquet)',
    );
  return found;
}

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  const s = Array.isArray(v) ? JSON.stringify(v) : String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

// Text whatever the values look like: a CSV reader turns partition "1" or an id "0042" into numbers.
const TEXT_COLUMNS = new Set(['partition', 'id', 'error']);

/** A merged column's Parquet type: CAI's own columns by name, model outputs and labels by their values. */
function parquetColumn(name: string, rows: PredictionRows): ColumnSource {
  const values = rows.map((r) => r[name] ?? null);
  if (name === 'index')
    return { name, data: Int32Array.from(values as number[]), type: 'INT32', nullable: false };
  if (TEXT_COLUMNS.has(name))
    return {
      name,
      data: values.map((v) => (v === null ? null : String(v))),
      type: 'STRING',
      nullable: name !== 'partition',
    };
  if (values.some((v) => Array.isArray(v))) return { name, data: values };
  return { name, data: values.map((v) => (v === null ? null : Number(v))), type: 'DOUBLE' };
}

/**
 * Merges a job's per-partition predictions into one Parquet, CSV or JSONL file, in plan order, one
 * partition in memory at a time (each becomes a Parquet row group). Columns are those of the first
 * partition, plus `error` (empty where every item succeeded) so that partitions with failed items fit.
 *
 * @example await mergePredictions('out', 'all.parquet') // or an open store: mergePredictions(await openStore('s3://b/out'), ...)
 */
export async function mergePredictions(
  output: Store | string,
  to: string,
  options: StoreOptions = {},
): Promise<MergeResult> {
  const format = mergeFormat(to);
  const store = typeof output === 'string' ? await openStore(output, options) : output;
  const { format: from, keys } = await predictionFiles(store);

  // Written beside the target and renamed at the end: a merge that fails leaves no half file.
  const partial = `${to}.partial`;
  let columns: string[] = [];
  let rows = 0;
  let parquet: ParquetWriter | undefined;
  const text = format === 'parquet' ? undefined : createWriteStream(partial);
  const put = async (s: string) => {
    if (text && !text.write(s)) await once(text, 'drain');
  };
  try {
    for (const key of keys) {
      const part = await readPredictions(await store.get(key), from);
      if (columns.length === 0) {
        columns = Object.keys(part[0] ?? { partition: '', index: 0 });
        if (!columns.includes('error')) columns.push('error');
        if (format === 'csv') await put(`${columns.map(csvField).join(',')}\n`);
      }
      rows += part.length;
      if (format === 'parquet') {
        if (part.length === 0) continue;
        const columnData = columns.map((c) => parquetColumn(c, part));
        parquet ??= new ParquetWriter({
          writer: fileWriter(partial),
          schema: schemaFromColumnData({ columnData }),
          createdBy: 'cai',
        });
        await parquet.write({ columnData, rowGroupSize: part.length });
      } else if (format === 'csv') {
        await put(part.map((r) => `${columns.map((c) => csvField(r[c])).join(',')}\n`).join(''));
      } else {
        await put(
          part
            .map((r) => `${JSON.stringify(Object.fromEntries(columns.map((c) => [c, r[c] ?? null])))}\n`)
            .join(''),
        );
      }
    }
    if (parquet) parquet.finish();
    if (text) {
      text.end();
      await once(text, 'finish');
    }
    await rename(partial, to);
  } catch (err) {
    text?.destroy();
    await rm(partial, { force: true });
    throw err;
  }
  return { partitions: keys.length, rows, columns };
}
