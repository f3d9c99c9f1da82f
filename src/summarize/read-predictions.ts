import { parquetReadObjects } from 'hyparquet';
import type { PredictionFormat } from '../formats/predictions/writers.js';

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

/**
 * Reads back a predictions file CAI wrote (Parquet, CSV or JSONL), as rows of plain values; used by
 * Summarize for metrics and by tests to check what landed on disk.
 *
 * @example const rows = await readPredictions(await out.get('predictions/1.parquet'), 'parquet');
 */
export async function readPredictions(bytes: Uint8Array, format: PredictionFormat): Promise<PredictionRows> {
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
