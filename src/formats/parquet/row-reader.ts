// Reads rows [a, b) of a Parquet file one row group at a time: a group's column chunks are fetched in one
// or a few ranged requests when the first batch needs them and dropped when the reader moves past it.
import type { Compressors, FileMetaData } from 'hyparquet';
import type { ColumnDecoder } from 'hyparquet/src/types.js';
import { parquetRead } from 'hyparquet';
import { DEFAULT_PARSERS } from 'hyparquet/src/convert.js';
import { getSchemaPath } from 'hyparquet/src/schema.js';
import { gunzipSync } from 'fflate';
import { coalesce, type StoreBuffer } from './async-buffer.js';
import type { ParquetColumn } from './layout.js';
import { ListCursor, type ListRow } from './list-column.js';

/** One row's values: flat columns by name (numbers, strings, bytes, structs) and list rows by name. */
export type ParquetRow = Record<string, unknown>;

/** hyparquet decodes snappy itself; gzip (Spark's and pandas' other common codec) through fflate. */
export const COMPRESSORS: Compressors = Object.freeze({
  GZIP: (input: Uint8Array) => gunzipSync(input),
});

interface GroupState {
  readonly index: number;
  readonly start: number;
  readonly end: number;
  readonly cursors: Map<string, ListCursor>;
  /** The next row each list cursor returns (they only go forward). */
  next: number;
}

/** Byte range of a column chunk: from its dictionary page (when any) through its data pages. */
function chunkRange(meta: FileMetaData, group: number, column: string): [number, number] | undefined {
  const chunk = meta.row_groups[group].columns.find((c) => c.meta_data?.path_in_schema[0] === column);
  const m = chunk?.meta_data;
  if (!m) return undefined;
  const start = Number(m.dictionary_page_offset || m.data_page_offset);
  return [start, start + Number(m.total_compressed_size)];
}

/**
 * Streams rows of one file in order. `read(a, b)` must be called with increasing, adjacent ranges;
 * flat columns go through hyparquet (which skips pages before `a`), list columns through
 * {@link ListCursor} so pixel arrays stay typed arrays.
 *
 * @example const reader = new RowReader(buffer, metadata, layout.columns); const rows = await reader.read(0, 128);
 */
export class RowReader {
  private readonly starts: number[] = [];
  private group: GroupState | undefined;

  constructor(
    private readonly file: StoreBuffer,
    private readonly metadata: FileMetaData,
    private readonly flat: readonly ParquetColumn[],
    private readonly lists: readonly ParquetColumn[],
  ) {
    let at = 0;
    for (const g of metadata.row_groups) {
      this.starts.push(at);
      at += Number(g.num_rows);
    }
    this.starts.push(at);
  }

  /** Total rows of the file. */
  get rows(): number {
    return this.starts[this.starts.length - 1];
  }

  /** Rows `[a, b)` as objects, in order. */
  async read(a: number, b: number): Promise<ParquetRow[]> {
    const out: ParquetRow[] = [];
    let at = a;
    while (at < b) {
      const g = await this.enter(at);
      const end = Math.min(b, g.end);
      const rows = await this.readInGroup(g, at, end);
      for (const r of rows) out.push(r);
      at = end;
    }
    return out;
  }

  private async enter(row: number): Promise<GroupState> {
    if (this.group && row >= this.group.start && row < this.group.end) return this.group;
    this.file.release();
    // Binary search: a file of many small row groups must not cost a scan from the first per group.
    let lo = 0;
    let hi = this.starts.length - 2;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid] <= row) lo = mid;
      else hi = mid - 1;
    }
    let index = lo;
    while (index < this.starts.length - 2 && this.starts[index + 1] <= row) index++;
    const names = [...this.flat, ...this.lists].map((c) => c.name);
    const ranges = names
      .map((n) => chunkRange(this.metadata, index, n))
      .filter((r): r is [number, number] => r !== undefined);
    await this.file.prefetch(coalesce(ranges, 8 * 1024));
    const cursors = new Map<string, ListCursor>();
    for (const c of this.lists) {
      const range = chunkRange(this.metadata, index, c.name);
      if (!range) continue;
      const bytes = new Uint8Array(await this.file.slice(range[0], range[1]));
      const meta = this.metadata.row_groups[index].columns.find(
        (x) => x.meta_data?.path_in_schema[0] === c.name,
      )?.meta_data;
      if (!meta) continue;
      const schemaPath = getSchemaPath(this.metadata.schema, meta.path_in_schema);
      const decoder: ColumnDecoder = {
        pathInSchema: meta.path_in_schema,
        type: meta.type,
        element: schemaPath[schemaPath.length - 1].element,
        schemaPath,
        codec: meta.codec,
        parsers: DEFAULT_PARSERS,
        compressors: COMPRESSORS,
        utf8: false,
      };
      cursors.set(c.name, new ListCursor(bytes, decoder));
    }
    this.group = {
      index,
      start: this.starts[index],
      end: this.starts[index + 1],
      cursors,
      next: this.starts[index],
    };
    return this.group;
  }

  private async readInGroup(g: GroupState, a: number, b: number): Promise<ParquetRow[]> {
    let rows: ParquetRow[] = Array.from({ length: b - a }, () => ({}));
    if (this.flat.length) {
      // Only this group's metadata: hyparquet would otherwise walk every row group on every call.
      const group = this.metadata.row_groups[g.index];
      await parquetRead({
        file: this.file,
        metadata: { ...this.metadata, row_groups: [group], num_rows: group.num_rows },
        rowStart: a - g.start,
        rowEnd: b - g.start,
        columns: this.flat.map((c) => c.name),
        rowFormat: 'object',
        utf8: false,
        compressors: COMPRESSORS,
        onComplete: (r) => {
          rows = r as ParquetRow[];
        },
      });
    }
    if (g.cursors.size) {
      // List cursors only go forward: skip to `a` (rows before it belong to an earlier partition).
      if (a > g.next) for (const c of g.cursors.values()) c.next(a - g.next);
      const lists = [...g.cursors.entries()].map(([name, c]) => [name, c.next(b - a)] as const);
      for (const [name, values] of lists) {
        for (let i = 0; i < b - a; i++) rows[i][name] = values[i] as ListRow;
      }
      g.next = b;
    }
    return rows;
  }
}
