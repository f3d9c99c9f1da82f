// A LIST<number> column (raw pixel arrays, feature vectors) read page by page into typed arrays.
// hyparquet's row assembly builds a JS array per list with one boxed number per value: for the Ray
// benchmark's 256x256x3 images that is 1.5 GB of JS arrays per 1000-row group. Here each row is a view
// of the decoded page's typed array, and pages are decoded only as batches ask for rows.
import type { DecodedArray, PageHeader } from 'hyparquet';
import type { ColumnDecoder } from 'hyparquet/src/types.js';
import { parquetHeader } from 'hyparquet/src/column.js';
import { convert } from 'hyparquet/src/convert.js';
import { decompressPage } from 'hyparquet/src/datapage.js';
import { readPlain } from 'hyparquet/src/plain.js';
import { getMaxDefinitionLevel } from 'hyparquet/src/schema.js';
import { readTypedPage } from './typed-page.js';

/** The values of one row of a list column: a view (or, across pages, a copy), or null for a null list
 *  or a list holding nulls. */
export type ListRow = ArrayLike<number> | null;

type Levels = ArrayLike<number>;

/**
 * Reads the rows of one list column chunk in order. `next(n)` decodes only the pages those rows need.
 *
 * @example const cursor = new ListCursor(chunkBytes, decoder); const rows = cursor.next(128);
 */
export class ListCursor {
  private readonly view: DataView;
  private offset = 0;
  private dictionary: DecodedArray | undefined;
  private readonly maxDef: number;
  // The current page: its levels, values and where the next row starts.
  private def: Levels = [];
  private rep: Levels = [];
  private values: ArrayLike<number> = [];
  private level = 0;
  private value = 0;
  private count = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly decoder: ColumnDecoder,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.maxDef = getMaxDefinitionLevel(decoder.schemaPath);
  }

  /** Loads the next data page; false at the end of the chunk. */
  private loadPage(): boolean {
    while (this.offset < this.bytes.length - 1) {
      const reader = { view: this.view, offset: this.offset };
      const header: PageHeader = parquetHeader(reader);
      const compressed = this.bytes.subarray(reader.offset, reader.offset + header.compressed_page_size);
      this.offset = reader.offset + header.compressed_page_size;
      const { codec, compressors } = this.decoder;
      if (header.type === 'DICTIONARY_PAGE') {
        const page = decompressPage(compressed, header.uncompressed_page_size, codec, compressors);
        const r = { view: new DataView(page.buffer, page.byteOffset, page.byteLength), offset: 0 };
        const n = header.dictionary_page_header?.num_values ?? 0;
        this.dictionary = convert(
          readPlain(r, this.decoder.type, n, this.decoder.element.type_length),
          this.decoder,
        );
        continue;
      }
      const page = readTypedPage(compressed, header, this.decoder, this.dictionary);
      if (!page) continue;
      this.values = page.values;
      this.def = page.def;
      this.rep = page.rep;
      this.count = page.count;
      this.level = 0;
      this.value = 0;
      return true;
    }
    return false;
  }

  /**
   * The next `n` rows (fewer at the end of the chunk). A row that is null, empty or holds a null is
   * `null`. A row spanning two pages (allowed in v1 pages) is joined into one array.
   */
  next(n: number): ListRow[] {
    const rows: ListRow[] = [];
    while (rows.length < n) {
      if (this.level >= this.count) {
        if (!this.loadPage()) break;
        const continues = this.rep.length > 0 && this.rep[0] !== 0;
        if (this.pending && !continues) this.flushPending(rows);
        if (rows.length >= n) break;
      }
      const start = this.level;
      const firstValue = this.value;
      let nulls = false;
      let i = start;
      do {
        const d = this.def.length ? this.def[i] : this.maxDef;
        if (d === this.maxDef) this.value++;
        else nulls = true;
        i++;
      } while (i < this.count && this.rep[i] !== 0);
      this.level = i;
      const view = sliceValues(this.values, firstValue, this.value);
      if (start === 0 && this.pending) {
        // The previous page's last row goes on here.
        this.pending = { parts: [...this.pending.parts, view], nulls: this.pending.nulls || nulls };
      } else if (this.pending) {
        this.flushPending(rows);
        this.pending = { parts: [view], nulls };
      } else {
        this.pending = { parts: [view], nulls };
      }
      // A row is complete once another row starts after it in the same page.
      if (i < this.count) this.flushPending(rows);
    }
    if (rows.length < n && this.level >= this.count && this.pending && !this.hasMorePages()) {
      this.flushPending(rows);
    }
    return rows;
  }

  private pending: { parts: ArrayLike<number>[]; nulls: boolean } | undefined;

  private flushPending(rows: ListRow[]): void {
    const p = this.pending;
    if (!p) return;
    this.pending = undefined;
    if (p.nulls) rows.push(null);
    else if (p.parts.length === 1) rows.push(p.parts[0]);
    else rows.push(p.parts.flatMap((x) => Array.from(x)));
  }

  private hasMorePages(): boolean {
    return this.offset < this.bytes.length - 1;
  }
}

function sliceValues(values: ArrayLike<number>, start: number, end: number): ArrayLike<number> {
  const v = values as ArrayLike<number> & { subarray?: (s: number, e: number) => ArrayLike<number> };
  if (typeof v.subarray === 'function') return v.subarray(start, end);
  return Array.prototype.slice.call(values, start, end) as number[];
}
