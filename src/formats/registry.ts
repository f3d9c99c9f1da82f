// Every tensor-file reader CAI knows, chosen by file extension.
import { CaiError, ErrorCodes } from '../errors.js';
import type { ColumnSet } from './columns.js';
import type { TensorFormat } from './format.js';
import { npyFormat, npzFormat } from './npy/index.js';
import { ptFormat } from './pt/index.js';
import { safetensorsFormat } from './safetensors/index.js';

/**
 * The tensor-file readers, in the order they are tried by extension.
 *
 * @example TENSOR_FORMATS.map((f) => f.name) // ['pt', 'npy', 'npz', 'safetensors']
 */
export const TENSOR_FORMATS: readonly TensorFormat[] = Object.freeze([
  ptFormat,
  npyFormat,
  npzFormat,
  safetensorsFormat,
]);

/**
 * The lower-case extension of a key's last path segment, with the dot, or '' when it has none.
 *
 * @example extensionOf('data/Part.1.PT') // '.pt'
 */
export function extensionOf(key: string): string {
  const base = key.slice(key.lastIndexOf('/') + 1);
  const dot = base.lastIndexOf('.');
  return dot <= 0 ? '' : base.slice(dot).toLowerCase();
}

/**
 * The reader for a key, by its extension (case-insensitive), or `undefined`.
 *
 * @example formatForKey('s3://bucket/data/1.pt')?.name // 'pt'
 */
export function formatForKey(key: string): TensorFormat | undefined {
  const ext = extensionOf(key);
  return ext === '' ? undefined : TENSOR_FORMATS.find((f) => f.extensions.includes(ext));
}

/**
 * Decodes a whole tensor file with the reader its extension names. Throws `E_UNSUPPORTED` naming the key
 * and listing the supported extensions when no reader fits.
 *
 * @example decodeTensorFile(await readFile('1.pt'), '1.pt').items // 1278 for a 25 MB CAI partition
 */
export function decodeTensorFile(bytes: Uint8Array, key: string): ColumnSet {
  const format = formatForKey(key);
  if (format === undefined) {
    const known = TENSOR_FORMATS.flatMap((f) => f.extensions).join(', ');
    const ext = extensionOf(key);
    throw new CaiError(
      ErrorCodes.unsupported,
      key,
      `${ext ? `extension "${ext}"` : 'a name without an extension'} is not a tensor file CAI reads; supported: ${known}`,
    );
  }
  return format.decode(bytes, key);
}
