// The torch.save reader and the building blocks other zip- or strided-layout readers share.
export { decodePt, ptFormat } from './pt-format.js';
export { unpickle } from './pickle.js';
export { PyDict, PyObject, pyTypeName, refuse, type PyValue, type UnpickleHooks } from './py-value.js';
export {
  TensorDatasetValue,
  TensorValue,
  torchHooks,
  type StorageDType,
  type StorageLookup,
} from './torch-globals.js';
export { denseBytes, extentOf, gatherStrided, isRowMajor, type StridedLayout } from './strided.js';
export { isZip, listZip, readZipEntry, type ZipEntry } from './zip.js';
