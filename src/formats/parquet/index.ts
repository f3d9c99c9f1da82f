// Parquet inputs read with hyparquet through ranged requests: encoded or raw images, ids, features.
export { coalesce, storeBuffer, type StoreBuffer } from './async-buffer.js';
export { assembleBatch, type BatchContext } from './batch.js';
export {
  parquetLayout,
  type ColumnKind,
  type ParquetColumn,
  type ParquetJobFields,
  type ParquetLayout,
} from './layout.js';
export { ListCursor, type ListRow } from './list-column.js';
export { openParquet, parquetFiles, type OpenedParquet, type ParquetSourceFields } from './parquet-source.js';
export { COMPRESSORS, RowReader, type ParquetRow } from './row-reader.js';
