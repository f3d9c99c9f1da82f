// The torch.save reader and its restricted unpickler. Zip and strided-layout helpers live in
// formats/zip.ts and formats/strided.ts, shared with the NumPy readers.
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
