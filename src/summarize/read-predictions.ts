import { parquetReadObjects } from 'hyparquet';
import type { PredictionFormat } from '../formats/predictions/writers.js';

/** One partition's predictions read back: each named column's values per row. */
export type PredictionRows = Record<string, unknown>[];

function parseCsvLine(line: string): string[] {
  const fields: string[] = [];
  let cur = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i];
    if (quoted) {
      if (ch === '"' && line[i + 1] === '"') {
        cur += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else cur += ch;
    } else if (ch === '"') quoted = true;
    else if (ch === ',') {
      fields.push(cur);
      cur = '';
    } else cur += ch;
  }
  fields.push(cur);
  return fields;
}

function csvValue(field: string): unknown {
  if (field === '') return null;
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
  const lines = text.split('\n').filter((l) => l.length > 0);
  if (format === 'jsonl') return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  const [header, ...rest] = lines;
  const names = parseCsvLine(header);
  return rest.map((line) => {
    const fields = parseCsvLine(line);
    const row: Record<string, unknown> = {};
    names.forEach((n, i) => (row[n] = csvValue(fields[i] ?? '')));
    return row;
  });
}
