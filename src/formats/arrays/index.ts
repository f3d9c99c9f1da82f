// Sources of chunked arrays (HDF5, Zarr): choosing arrays as columns, row-range partitions, batches.
export { arrayStream, isImageArray, type ArraySourceFields, type ReadRows } from './batches.js';
export {
  chooseArrays,
  cleanPath,
  type ArrayColumn,
  type ArrayInfo,
  type ArrayJobFields,
  type ArrayLayout,
} from './layout.js';
export { rowPartitions } from './row-partitions.js';
