// The safetensors format: an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {...}}, then little-endian data.
import { CaiError, ErrorCodes } from '../../errors.js';
import { bytesPerElement, type DType, viewBytes } from '../../tensor/dtype.js';
import { numel, tensor, type Tensor } from '../../tensor/tensor.js';
import { columnSet, type ColumnSet } from '../columns.js';
import type { TensorFormat } from '../format.js';
import { parseSafetensorsHeader } from './header.js';

/** The dtypes safetensors names. */
export const SAFETENSORS_DTYPES: Readonly<Record<string, DType>> = Object.freeze({
  F16: 'float16',
  F32: 'float32',
  F64: 'float64',
  I8: 'int8',
  I16: 'int16',
  I32: 'int32',
  I64: 'int64',
  U8: 'uint8',
  BOOL: 'bool',
});

/** The safetensors name of each dtype. */
export const SAFETENSORS_CODES: Readonly<Record<DType, string>> = Object.freeze(
  Object.fromEntries(Object.entries(SAFETENSORS_DTYPES).map(([code, dtype]) => [dtype, code])) as Record<
    DType,
    string
  >,
);

interface Entry {
  readonly name: string;
  readonly dtype: string;
  readonly shape: number[];
  readonly begin: number;
  readonly end: number;
}

function corrupt(source: string, what: string): CaiError {
  return new CaiError(
    ErrorCodes.corrupt,
    source,
    `is not a valid safetensors file (${what}); write it again`,
  );
}

function parseHeader(bytes: Uint8Array, source: string): { entries: Entry[]; dataStart: number } {
  if (bytes.length < 8) throw corrupt(source, 'shorter than its 8-byte header length');
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = view.getBigUint64(0, true);
  if (headerLength > BigInt(bytes.length - 8))
    throw corrupt(source, `its ${headerLength}-byte header runs past the end`);
  // No size limit beyond the file's own: the header is scanned in place (padding and metadata of any
  // size or depth cost a pass over bytes already in memory), only tensor entries are parsed.
  const dataStart = 8 + Number(headerLength);
  const entries: Entry[] = [];
  for (const [name, info] of parseSafetensorsHeader(bytes.subarray(8, dataStart), source)) {
    const { dtype, shape, data_offsets: offsets } = info;
    const ints = (v: unknown): v is number[] =>
      Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0);
    if (typeof dtype !== 'string' || !ints(shape) || !ints(offsets) || offsets.length !== 2) {
      throw corrupt(source, `tensor "${name}" lacks dtype, shape or data_offsets`);
    }
    entries.push({ name, dtype, shape, begin: offsets[0], end: offsets[1] });
  }
  return { entries, dataStart };
}

function decodeEntry(bytes: Uint8Array, source: string, dataStart: number, e: Entry): Tensor {
  const dtype = e.dtype === 'BF16' ? undefined : SAFETENSORS_DTYPES[e.dtype];
  if (dtype === undefined && e.dtype !== 'BF16') {
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      `tensor "${e.name}" has dtype ${e.dtype}, which CAI does not read; supported: ${Object.keys(SAFETENSORS_DTYPES).join(' ')} BF16`,
    );
  }
  const size = dtype ? bytesPerElement(dtype) : 2;
  const available = bytes.length - dataStart;
  if (e.begin > e.end || e.end > available) {
    throw corrupt(
      source,
      `tensor "${e.name}" spans bytes [${e.begin}, ${e.end}) of a ${available}-byte data section`,
    );
  }
  if (e.end - e.begin !== numel(e.shape) * size) {
    throw corrupt(
      source,
      `tensor "${e.name}" has ${e.end - e.begin} bytes for shape [${e.shape.join(', ')}] of ${e.dtype}`,
    );
  }
  const raw = bytes.subarray(dataStart + e.begin, dataStart + e.end);
  if (dtype) return tensor(dtype, e.shape, viewBytes(dtype, raw));
  // bfloat16 is the top half of a float32: widen it so models and metrics see ordinary floats.
  const bits = viewBytes('float16', raw);
  const wide = new Uint32Array(bits.length);
  for (let i = 0; i < bits.length; i++) wide[i] = bits[i] << 16;
  return tensor('float32', e.shape, new Float32Array(wide.buffer));
}

/**
 * Decodes a .safetensors file: one column per tensor, in the order of their data offsets, as views into
 * `bytes` when aligned; BF16 is widened to float32; `__metadata__` is ignored. Offsets are checked
 * against the file length and against each other.
 *
 * @example decodeSafetensors(bytes, 'part.safetensors').names // ['images', 'magnitudes', 'redshift']
 */
export function decodeSafetensors(bytes: Uint8Array, key: string): ColumnSet {
  const { entries, dataStart } = parseHeader(bytes, key);
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  for (let i = 1; i < entries.length; i++) {
    if (entries[i].begin < entries[i - 1].end) {
      throw corrupt(key, `tensors "${entries[i - 1].name}" and "${entries[i].name}" overlap`);
    }
  }
  return columnSet(
    key,
    entries.map((e) => e.name),
    entries.map((e) => decodeEntry(bytes, key, dataStart, e)),
  );
}

/**
 * The `.safetensors` reader.
 *
 * @example safetensorsFormat.decode(bytes, 'x.safetensors').names // ['weight']
 */
export const safetensorsFormat: TensorFormat = Object.freeze({
  name: 'safetensors',
  extensions: Object.freeze(['.safetensors']),
  decode: decodeSafetensors,
});
