// `cai partition` and the planning and streaming helpers shared by sources of many objects.
export { DEFAULT_PARTITION_ITEMS, groupItems, type KeyedItem } from './group-objects.js';
export { mapSettled, reasonOf } from './map-limit.js';
export { applyNanPolicy, type NanPolicy } from './nan.js';
export {
  checkRow,
  openObjectItems,
  type ItemRow,
  type ObjectItem,
  type ObjectItemsOptions,
} from './object-items.js';
export {
  PARTITION_FORMATS,
  partitionDataset,
  type ManifestPartition,
  type PartitionManifest,
  type PartitionOptions,
} from './partition.js';
export {
  CHUNK_BYTES,
  readAhead,
  sourceChunks,
  tensorChunks,
  type RowChunk,
  type SkippedItem,
  type SourceRange,
} from './rows.js';
export { formatBytes, parseByteSize } from './size.js';
export { openTensorRows, type ColumnInfo, type TensorRows } from './tensor-ranges.js';
