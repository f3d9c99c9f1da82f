import { parquetWriteBuffer } from 'hyparquet-writer';
import type { ColumnSource } from 'hyparquet-writer';
import {
  cell,
  outputColumnNames,
  tableRows,
  type CarriedColumn,
  type PredictionColumn,
  type PredictionTable,
} from './table.js';
import type { PredictionFormat } from '../../storage/output-layout.js';

// The formats and their extensions are part of the output's schema (src/storage/output-layout.ts).
export { PREDICTION_EXTENSIONS, type PredictionFormat } from '../../storage/output-layout.js';

function rowValues(table: PredictionTable, row: number): unknown[] {
  const values: unknown[] = [table.partition, table.index[row]];
  if (table.ids) values.push(table.ids[row]);
  for (const c of table.carried ?? []) values.push(c.values[row]);
  for (const c of table.columns) values.push(cell(c, row));
  if (table.label) values.push(cell(table.label, row));
  if (table.errors) values.push(table.errors[row]);
  return values;
}

function jsonNumber(v: unknown): unknown {
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (Array.isArray(v)) return v.map(jsonNumber);
  return v;
}

function encodeJsonl(table: PredictionTable): string {
  const names = outputColumnNames(table);
  const lines: string[] = [];
  for (let r = 0; r < tableRows(table); r++) {
    const values = rowValues(table, r);
    const obj: Record<string, unknown> = {};
    names.forEach((n, i) => (obj[n] = jsonNumber(values[i])));
    lines.push(JSON.stringify(obj));
  }
  return lines.length ? `${lines.join('\n')}\n` : '';
}

/**
 * Text a spreadsheet would run as a formula (or a DDE command) when the cell starts with it: such a
 * string gets a leading apostrophe, which spreadsheets show as text and CAI's reader removes again.
 */
const FORMULA_START = /^['=+\-@\t\r]/;

function csvField(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : '';
  const s = Array.isArray(v) ? JSON.stringify(v.map(jsonNumber)) : String(v);
  // Quoted, a name with a newline, comma or quote stays one cell of one row; a protected formula is
  // quoted too, which tells the reader that its apostrophe is CAI's.
  if (typeof v === 'string' && FORMULA_START.test(s)) return `"'${s.replace(/"/g, '""')}"`;
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function encodeCsv(table: PredictionTable): string {
  const lines = [outputColumnNames(table).map(csvField).join(',')];
  for (let r = 0; r < tableRows(table); r++) lines.push(rowValues(table, r).map(csvField).join(','));
  return `${lines.join('\n')}\n`;
}

// Model outputs are high-entropy floats: a dictionary never pays and Snappy (in JavaScript, here) saves
// ~20% of a ResNet-50 partition's logits for 3-4x the encoding time on the worker's critical path
// (150 x 1000 logits: ~100 ms against ~30 ms). So numbers are written plain and uncompressed; the
// string columns keep the defaults.
const NUMBERS = { encoding: 'PLAIN', codec: 'UNCOMPRESSED' } as const;

function parquetColumn(c: PredictionColumn, name: string, rows: number): ColumnSource {
  if (c.width === 1) {
    return { name, data: Float64Array.from(c.data), type: 'DOUBLE', nullable: false, ...NUMBERS };
  }
  const data: number[][] = [];
  for (let r = 0; r < rows; r++) data.push(cell(c, r) as number[]);
  return { name, data, ...NUMBERS };
}

// A carried column is DOUBLE when every value is a number (or missing), else STRING.
function carriedColumn(c: CarriedColumn): ColumnSource {
  if (c.values.every((v) => typeof v !== 'string')) {
    return { name: c.name, data: c.values.map((v) => (v === null ? null : v)), type: 'DOUBLE' };
  }
  return { name: c.name, data: c.values.map((v) => (v === null ? null : String(v))), type: 'STRING' };
}

function encodeParquet(table: PredictionTable): Uint8Array {
  const rows = tableRows(table);
  const columnData: ColumnSource[] = [
    {
      name: 'partition',
      data: new Array<string>(rows).fill(table.partition),
      type: 'STRING',
      nullable: false,
    },
    { name: 'index', data: Int32Array.from(table.index), type: 'INT32', nullable: false, ...NUMBERS },
  ];
  if (table.ids) columnData.push({ name: 'id', data: [...table.ids], type: 'STRING', nullable: false });
  for (const c of table.carried ?? []) columnData.push(carriedColumn(c));
  for (const c of table.columns) columnData.push(parquetColumn(c, c.name, rows));
  if (table.label) columnData.push(parquetColumn(table.label, 'label', rows));
  if (table.errors) columnData.push({ name: 'error', data: [...table.errors], type: 'STRING' });
  return new Uint8Array(parquetWriteBuffer({ columnData, createdBy: 'cai' }));
}

/**
 * Serializes one partition's predictions. Non-finite values (an item that failed) become null in CSV
 * and JSONL, NaN in Parquet. CSV quotes every text cell and prefixes one that starts like a formula
 * (`=`, `+`, `-`, `@`, tab, CR, or an apostrophe) with an apostrophe, so no spreadsheet executes it.
 *
 * @example const bytes = encodePredictions(table, 'parquet');
 */
export function encodePredictions(table: PredictionTable, format: PredictionFormat): Uint8Array | string {
  if (format === 'csv') return encodeCsv(table);
  if (format === 'jsonl') return encodeJsonl(table);
  return encodeParquet(table);
}
