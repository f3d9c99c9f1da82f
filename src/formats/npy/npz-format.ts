// NumPy's .npz files: a zip of .npy members, stored (np.savez) or deflated (np.savez_compressed).
import { CaiError } from '../../errors.js';
import type { Tensor } from '../../tensor/tensor.js';
import { columnSet, type ColumnSet } from '../columns.js';
import type { TensorFormat } from '../format.js';
import { inflateBudget, listZip, readZipEntry } from '../zip.js';
import { decodeNpyTensor } from './npy-format.js';

/**
 * Decodes a .npz archive: one column per `.npy` member, named without `.npy`, in archive order. Stored
 * members are read in place; deflated ones are inflated first.
 *
 * @example decodeNpz(bytes, 'part.npz').names // ['images', 'magnitudes', 'redshift']
 */
export function decodeNpz(bytes: Uint8Array, key: string): ColumnSet {
  const names: string[] = [];
  const columns: Tensor[] = [];
  // One budget for the whole archive: many members each inflating a little add up.
  const budget = inflateBudget(bytes.length);
  for (const entry of listZip(bytes, key)) {
    if (!entry.name.endsWith('.npy')) continue;
    const name = entry.name.slice(0, -'.npy'.length);
    const inner = `${key}:${entry.name}`;
    try {
      columns.push(decodeNpyTensor(readZipEntry(bytes, entry, key, budget), inner));
    } catch (err) {
      // Report the archive as the object, with the member in the message.
      if (!(err instanceof CaiError) || err.object !== inner) throw err;
      throw new CaiError(err.code, key, `member "${entry.name}" ${err.message.slice(inner.length + 2)}`, {
        cause: err,
      });
    }
    names.push(name);
  }
  return columnSet(key, names, columns);
}

/**
 * The `.npz` reader.
 *
 * @example npzFormat.decode(bytes, 'x.npz').names // ['arr_0', 'arr_1']
 */
export const npzFormat: TensorFormat = Object.freeze({
  name: 'npz',
  extensions: Object.freeze(['.npz']),
  decode: decodeNpz,
});
