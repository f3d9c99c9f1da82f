// NumPy's .npy files (format versions 1.0, 2.0 and 3.0).
import { CaiError, ErrorCodes } from '../../errors.js';
import { bytesPerElement, type DType, viewBytes } from '../../tensor/dtype.js';
import { numel, tensor, type Tensor } from '../../tensor/tensor.js';
import { columnSet, type ColumnSet } from '../columns.js';
import type { TensorFormat } from '../format.js';
import { denseBytes } from '../strided.js';
import { parseNpyHeader } from './npy-header.js';

/** The dtypes a `.npy` descr names (without its byte-order character). */
export const NPY_DTYPES: Readonly<Record<string, DType>> = Object.freeze({
  f2: 'float16',
  f4: 'float32',
  f8: 'float64',
  i1: 'int8',
  i2: 'int16',
  i4: 'int32',
  i8: 'int64',
  u1: 'uint8',
  b1: 'bool',
});

const SUPPORTED = Object.keys(NPY_DTYPES)
  .map((k) => `<${k}`)
  .join(' ');

/** The dtype and byte order a descr string means, or a clear error. */
function dtypeOf(descr: unknown, source: string): { dtype: DType; bigEndian: boolean } {
  if (typeof descr === 'string' && descr.length >= 2) {
    const order = descr[0];
    const dtype = NPY_DTYPES[descr.slice(1)];
    if (dtype && '<>|='.includes(order)) return { dtype, bigEndian: order === '>' };
    if (descr.slice(1) === 'O') {
      throw new CaiError(
        ErrorCodes.unsupported,
        source,
        'holds Python objects (dtype |O), which only pickle can rebuild and CAI never unpickles .npy data; ' +
          'save a numeric array instead, e.g. np.save(path, np.asarray(values, dtype=np.float32))',
      );
    }
  }
  const shown = typeof descr === 'string' ? descr : 'a structured dtype';
  throw new CaiError(
    ErrorCodes.unsupported,
    source,
    `has dtype ${shown}, which CAI does not read; supported: ${SUPPORTED} (and their > big-endian forms); ` +
      'convert it with arr.astype(...) before saving',
  );
}

const MAX_HEADER_BYTES = 1024 * 1024;

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

/**
 * Decodes one .npy file to a tensor: little-endian C-order data becomes a view into `bytes` (copied only
 * when unaligned), big-endian data is byte-swapped into a new array and Fortran-order data transposed
 * into C order.
 *
 * @example decodeNpyTensor(bytes, 'x.npy') // { dtype: 'float32', shape: [3, 4], data: Float32Array }
 */
export function decodeNpyTensor(bytes: Uint8Array, source: string): Tensor {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b)) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      'does not start with the .npy magic string; it is not a .npy file or is damaged',
    );
  }
  const major = bytes[6];
  if (major < 1 || major > 3) {
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      `uses .npy format version ${major}.${bytes[7]}; CAI reads 1.0-3.0`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (major > 1 && bytes.length < 12)
    throw new CaiError(ErrorCodes.corrupt, source, 'ends inside its .npy header');
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  if (headerLength > MAX_HEADER_BYTES) {
    // numpy itself refuses headers past 10,000 bytes by default; one this long is damage or an attack.
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `declares a ${headerLength}-byte .npy header, past the ${MAX_HEADER_BYTES}-byte limit; write it again with numpy.save`,
    );
  }
  const dataStart = headerStart + headerLength;
  if (dataStart > bytes.length)
    throw new CaiError(ErrorCodes.corrupt, source, 'ends inside its .npy header; it is truncated');
  const decoder = new TextDecoder(major === 3 ? 'utf-8' : 'latin1');
  const header = parseNpyHeader(decoder.decode(bytes.subarray(headerStart, dataStart)), source);
  const { dtype, bigEndian } = dtypeOf(header.descr, source);
  const shape = header.shape;
  const count = numel(shape);
  const size = bytesPerElement(dtype);
  if (!Number.isSafeInteger(count * size) || dataStart + count * size > bytes.length) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `holds ${bytes.length - dataStart} data bytes, fewer than its shape [${shape.join(', ')}] of ${dtype} needs; it is truncated`,
    );
  }
  const data = bytes.subarray(dataStart, dataStart + count * size);
  // Fortran order is a strided view of the data: the first index varies fastest.
  const strides = shape.map(() => 1);
  if (header.fortranOrder) for (let d = 1; d < shape.length; d++) strides[d] = strides[d - 1] * shape[d - 1];
  else for (let d = shape.length - 2; d >= 0; d--) strides[d] = strides[d + 1] * shape[d + 1];
  const dense = denseBytes(data, size, { offset: 0, shape, strides }, bigEndian && size > 1);
  return tensor(dtype, shape, viewBytes(dtype, dense));
}

/**
 * Decodes a .npy file to one column named `"0"`.
 *
 * @example decodeNpy(bytes, 'images.npy').names // ['0']
 */
export function decodeNpy(bytes: Uint8Array, key: string): ColumnSet {
  return columnSet(key, ['0'], [decodeNpyTensor(bytes, key)]);
}

/**
 * The `.npy` reader.
 *
 * @example npyFormat.decode(bytes, 'x.npy').columns[0].shape // [3, 4]
 */
export const npyFormat: TensorFormat = Object.freeze({
  name: 'npy',
  extensions: Object.freeze(['.npy']),
  decode: decodeNpy,
});
