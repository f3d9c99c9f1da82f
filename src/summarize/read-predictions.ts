import { parquetReadObjects } from 'hyparquet';
import { CaiError, ErrorCodes } from '../errors.js';
import type { PlannedPartition } from '../plan/plan.js';
import { naturalCompare } from '../storage/natural-sort.js';
import { readJsonIfPresent } from '../storage/json.js';
import { openStore, type StoreOptions } from '../storage/open.js';
import type { Store } from '../storage/store.js';
import {
  OUTPUT_FOLDERS,
  OUTPUT_KEYS,
  partitionOfKey,
  PREDICTION_EXTENSIONS,
  readJobDocument,
  type PredictionFormat,
} from '../storage/output-layout.js';

/** One partition's predictions read back: each named column's values per row. */
export type PredictionRows = Record<string, unknown>[];

const OWN_COLUMNS = new Set(['partition', 'index', 'id', 'label', 'error']);

/**
 * The model output's column in a predictions row: the first that is not one CAI adds itself.
 * @example outputColumn({ partition: '1', index: 0, redshift: 0.2, label: 0.21 }) // 'redshift'
 */
export function outputColumn(row: Record<string, unknown>): string | undefined {
  return Object.keys(row).find((k) => !OWN_COLUMNS.has(k));
}

/** CSV records (RFC 4180): a quoted field may hold commas, quotes and newlines. */
function parseCsv(text: string): { fields: string[]; quoted: boolean[] }[] {
  const records: { fields: string[]; quoted: boolean[] }[] = [];
  let fields: string[] = [];
  let quotedFields: boolean[] = [];
  let cur = '';
  let quoted = false;
  let wasQuoted = false;
  const endField = () => {
    fields.push(cur);
    quotedFields.push(wasQuoted);
    cur = '';
    wasQuoted = false;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (quoted) {
      if (ch === '"' && text[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') {
      quoted = true;
      wasQuoted = true;
    } else if (ch === ',') endField();
    else if (ch === '\n') {
      endField();
      records.push({ fields, quoted: quotedFields });
      fields = [];
      quotedFields = [];
    } else cur += ch;
  }
  if (cur !== '' || fields.length > 0) {
    endField();
    records.push({ fields, quoted: quotedFields });
  }
  return records;
}

function csvValue(field: string, quoted: boolean): unknown {
  if (field === '' && !quoted) return null;
  // Text that looked like a formula was written with a protective apostrophe.
  if (quoted && /^'['=+\-@\t\r]/.test(field)) return field.slice(1);
  if (quoted && !field.startsWith('[')) return field;
  if (field.startsWith('[')) return JSON.parse(field) as unknown;
  const n = Number(field);
  return Number.isNaN(n) ? field : n;
}

/** The predictions files of a job's output, in plan order, and the format they were written in. */
export interface PredictionFiles {
  readonly format: PredictionFormat;
  /** Keys of the predictions files in the output store, in plan order. */
  readonly keys: readonly string[];
}

/**
 * Finds a job's predictions files in its output (a folder, an `s3://` prefix or an open store), in plan
 * order: what {@link readPredictions} and `mergePredictions` read.
 *
 * @example const { format, keys } = await predictionFiles(await openStore('out')); // 'parquet', ['predictions/1.parquet', ...]
 */
export async function predictionFiles(output: Store): Promise<PredictionFiles> {
  const doc = await readJobDocument<{ predictionsFormat?: PredictionFormat }>(output, { read: true });
  if (!doc)
    throw new CaiError(
      ErrorCodes.notFound,
      output.describe(OUTPUT_KEYS.job),
      'is not the output of a CAI job; give the folder cai run wrote',
    );
  const format = doc.job.predictionsFormat ?? 'parquet';
  const plan = (await readJsonIfPresent<PlannedPartition[]>(output, OUTPUT_KEYS.plan)) ?? [];
  const order = new Map(plan.map((p, i) => [p.id, i]));
  const keys: string[] = [];
  for await (const o of output.list(OUTPUT_FOLDERS.predictions))
    if (o.key.endsWith(`.${PREDICTION_EXTENSIONS[format]}`)) keys.push(o.key);
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
  return { format, keys };
}

/**
 * Reads back predictions CAI wrote, as rows of plain values. Given a job's output (its folder, an `s3://`
 * prefix or an open store): every partition's predictions, in plan order, in memory at once (for a big
 * job, `mergePredictions` writes one file instead, a partition at a time). Given the bytes of one
 * predictions file and its format (Parquet, CSV or JSONL): that file's rows.
 *
 * @example
 * const rows = await readPredictions('out'); // [{ partition: '1', index: 0, redshift: 0.21, label: 0.2 }, ...]
 * const one = await readPredictions(await store.get('predictions/1.parquet'), 'parquet');
 */
export async function readPredictions(
  output: string | Store,
  options?: StoreOptions,
): Promise<PredictionRows>;
export async function readPredictions(bytes: Uint8Array, format: PredictionFormat): Promise<PredictionRows>;
export async function readPredictions(
  from: Uint8Array | string | Store,
  how?: PredictionFormat | StoreOptions,
): Promise<PredictionRows> {
  if (from instanceof Uint8Array) {
    if (typeof how !== 'string')
      throw new CaiError(
        ErrorCodes.option,
        'readPredictions',
        'give the format of the bytes (parquet, csv or jsonl), or an output folder instead of bytes',
      );
    return readPredictionBytes(from, how);
  }
  const output = typeof from === 'string' ? await openStore(from, typeof how === 'object' ? how : {}) : from;
  const { format, keys } = await predictionFiles(output);
  const rows: PredictionRows = [];
  for (const key of keys)
    for (const row of await readPredictionBytes(await output.get(key), format)) rows.push(row);
  return rows;
}

async function readPredictionBytes(bytes: Uint8Array, format: PredictionFormat): Promise<PredictionRows> {
  if (format === 'parquet') {
    const file = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    return (await parquetReadObjects({ file })) as PredictionRows;
  }
  const text = new TextDecoder().decode(bytes);
  if (format === 'jsonl') {
    const lines = text.split('\n').filter((l) => l.length > 0);
    return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  }
  const [header, ...rest] = parseCsv(text).filter((r) => r.fields.length > 1 || r.fields[0] !== '');
  if (!header) return [];
  const names = header.fields;
  return rest.map(({ fields, quoted }) => {
    const row: Record<string, unknown> = {};
    names.forEach((n, i) => (row[n] = csvValue(fields[i] ?? '', quoted[i] ?? false)));
    return row;
  });
}
