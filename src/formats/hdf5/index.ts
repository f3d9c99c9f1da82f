// HDF5 files, read with h5wasm (libhdf5 as WebAssembly), in place or from a temporary copy of an S3 object
// (in a worker, kept while the next partitions read the same object).
export { guarded, Hdf5Diagnostic, loadHdf5, type H5Wasm } from './h5-library.js';
export { BUILTIN_FILTERS, openHdf5, type Hdf5File } from './h5-file.js';
export {
  DOWNLOAD_RANGE,
  dropKeptCopies,
  keepCopiesBetweenPartitions,
  localFile,
  type LocalFile,
} from './local-file.js';
export { HDF5_SUFFIXES, hdf5Files, isHdf5Key } from './hdf5-source.js';
