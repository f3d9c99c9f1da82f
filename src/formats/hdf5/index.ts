// HDF5 files, read through CAI's own chunk index and the machine's libdeflate (or Node's zlib), or with
// h5wasm (libhdf5 as WebAssembly) for what the index does not cover: local files in place, objects in S3
// by byte ranges from a worker thread (never copied whole).
export { guarded, Hdf5Diagnostic, loadHdf5, type H5Wasm } from './h5-library.js';
export { BUILTIN_FILTERS, openHdf5, type Hdf5File } from './h5-file.js';
export { openRemoteHdf5, openThreadedHdf5, type Hdf5Reader, type RemoteHdf5Options } from './remote-file.js';
export { SYNC_RANGE_DEFAULTS, SyncRanges, type SyncRangeOptions } from './sync-ranges.js';
export { HDF5_SUFFIXES, hdf5Files, isHdf5Key } from './hdf5-source.js';
export {
  compoundFields,
  decodeElements,
  fieldValues,
  halfBitsToFloat32,
  typeInfo,
  type CompoundField,
  type ElementType,
  type H5TypeMetadata,
  type TypeInfo,
} from './h5-types.js';
