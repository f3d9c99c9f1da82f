// A Parquet footer is a claim about the file: how many rows it holds and where each column chunk lies.
// A few bytes of footer can claim a billion rows (a worker would allocate per-item arrays for all of
// them) or a hundred thousand row groups that all point at one chunk (each read again, a hang). The
// claims are checked against the bytes the file holds before anything is allocated for them.
import type { FileMetaData } from 'hyparquet';
import { CaiError, ErrorCodes } from '../../errors.js';

/**
 * Rows a file may declare per byte of column data. Dictionary and run-length encoding store a repeated
 * value in far less than a byte, but a file of items to infer on has at least one varying column (the
 * image, an id, features); 64 rows a byte is already beyond any such file.
 */
export const MAX_ROWS_PER_BYTE = 64;

function damaged(source: string, what: string): CaiError {
  return new CaiError(
    ErrorCodes.corrupt,
    source,
    `has a Parquet footer that ${what}; the footer is damaged or forged: write the file again`,
  );
}

/**
 * Checks a footer against the file's size: row counts are non-negative and add up, every column chunk
 * lies inside the file, no two chunks share bytes, and the rows declared are at most
 * {@link MAX_ROWS_PER_BYTE} per byte of column data. Throws `E_CORRUPT` naming `source`.
 *
 * @example checkFooter(await parquetMetadataAsync(file), file.byteLength, 'part-0.parquet');
 */
export function checkFooter(metadata: FileMetaData, size: number, source: string): void {
  let rows = 0;
  let dataBytes = 0;
  const ranges: [number, number, number][] = [];
  metadata.row_groups.forEach((g, index) => {
    const n = Number(g.num_rows);
    if (!Number.isSafeInteger(n) || n < 0)
      throw damaged(source, `gives row group ${index} ${g.num_rows} rows`);
    rows += n;
    for (const c of g.columns) {
      const m = c.meta_data;
      if (!m) continue;
      const start = Number(m.dictionary_page_offset || m.data_page_offset);
      const length = Number(m.total_compressed_size);
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(length) || start < 0 || length < 0) {
        throw damaged(source, `gives row group ${index} a column chunk at an invalid offset`);
      }
      if (start + length > size) {
        throw damaged(
          source,
          `puts a column chunk of row group ${index} at bytes [${start}, ${start + length}) of a ${size}-byte file`,
        );
      }
      dataBytes += length;
      if (length > 0) ranges.push([start, start + length, index]);
    }
  });
  if (BigInt(rows) !== BigInt(metadata.num_rows)) {
    throw damaged(source, `declares ${metadata.num_rows} rows while its row groups hold ${rows}`);
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) {
      throw damaged(
        source,
        `points row groups ${ranges[i - 1][2]} and ${ranges[i][2]} at the same bytes (from ${ranges[i][0]})`,
      );
    }
  }
  if (rows > MAX_ROWS_PER_BYTE * Math.max(dataBytes, 16)) {
    throw damaged(
      source,
      `declares ${rows} rows in ${dataBytes} bytes of column data (more than ${MAX_ROWS_PER_BYTE} rows a byte)`,
    );
  }
}
