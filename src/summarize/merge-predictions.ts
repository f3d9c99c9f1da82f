import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { once } from 'node:events';
import { ParquetWriter, fileWriter, schemaFromColumnData, type ColumnSource } from 'hyparquet-writer';
import { CaiError, ErrorCodes } from '../errors.js';
import type { PlannedPartition } from '../plan/plan.js';
import { naturalCompare } from '../storage/natural-sort.js';
import { readJsonIfPresent } from '../storage/json.js';
import type { Store } from '../storage/store.js';
import { readPredictions, type PredictionRows } from './read-predictions.js';
import {
  OUTPUT_FOLDERS,
  OUTPUT_KEYS,
  partitionOfKey,
  PREDICTION_EXTENSIONS,
  readJobDocument,
  type PredictionFormat,
} from '../storage/output-layout.js';

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
 * @example await mergePredictions(await openStore('out'), 'all.parquet')
 */
export async function mergePredictions(output: Store, to: string): Promise<MergeResult> {
  const format = mergeFormat(to);
  const doc = await readJobDocument<{ predictionsFormat?: PredictionFormat }>(output);
  if (!doc)
    throw new CaiError(
      ErrorCodes.notFound,
      output.describe(OUTPUT_KEYS.job),
      'is not the output of a CAI job; give the folder cai run wrote',
    );
  const from = doc.job.predictionsFormat ?? 'parquet';
  const plan = (await readJsonIfPresent<PlannedPartition[]>(output, OUTPUT_KEYS.plan)) ?? [];
  const order = new Map(plan.map((p, i) => [p.id, i]));
  const keys: string[] = [];
  for await (const o of output.list(OUTPUT_FOLDERS.predictions))
    if (o.key.endsWith(`.${PREDICTION_EXTENSIONS[from]}`)) keys.push(o.key);
  const id = partitionOfKey;
  keys.sort(
    (a, b) => (order.get(id(a)) ?? Infinity) - (order.get(id(b)) ?? Infinity) || naturalCompare(a, b),
  );
  if (keys.length === 0)
    throw new CaiError(
      ErrorCodes.notFound,
      output.describe(`${OUTPUT_FOLDERS.predictions}/`),
      'holds no predictions yet; run the job first',
    );

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
      const part = await readPredictions(await output.get(key), from);
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
