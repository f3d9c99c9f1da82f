// Rows of a dataset as libhdf5 reads them, without h5wasm's conversion to JavaScript values: the bytes of
// each element in little-endian order (libhdf5 converts big-endian data while reading). h5wasm's own
// `slice` throws on float16 ("Float16 not supported") and turns compound rows into arrays of arrays;
// these bytes go through h5-types.ts instead.
import type { Dataset } from 'h5wasm';
import type { H5Wasm } from './h5-library.js';

/**
 * Rows `[start, end)` of a dataset (every column of the other dimensions) as raw little-endian bytes,
 * `metadata.size` bytes an element. Variable-length data inside the rows (a compound with a vlen field)
 * is freed before returning: only fixed-size fields of the bytes are meaningful.
 *
 * @example const bytes = readRawRows(h5, dataset, [40, 3], 2, 0, 8, false) // 8 x 3 float16s
 */
export function readRawRows(
  h5: H5Wasm,
  d: Dataset,
  shape: readonly number[],
  elementSize: number,
  start: number,
  end: number,
  vlen: boolean,
): Uint8Array {
  const count = [end - start, ...shape.slice(1)];
  const nbytes = count.reduce((a, b) => a * b, 1) * elementSize;
  const bigCount = count.map(BigInt);
  const offset = shape.map((_, i) => BigInt(i === 0 ? start : 0));
  const strides = shape.map(() => 1n);
  const m = h5.Module;
  const ptr = m._malloc(Math.max(1, nbytes));
  if (!ptr) throw new Error(`could not allocate ${nbytes} bytes in the HDF5 library's memory`);
  try {
    const status = m.get_dataset_data(d.file_id, d.path, bigCount, offset, strides, BigInt(ptr));
    if (status < 0) throw new Error(`libhdf5 could not read rows [${start}, ${end})`);
    const out = m.HEAPU8.slice(ptr, ptr + nbytes);
    if (vlen) m.reclaim_vlen_memory_count(d.file_id, d.path, '', BigInt(ptr), bigCount);
    return out;
  } finally {
    m._free(ptr);
  }
}
