import type { ColumnSet } from './columns.js';

/**
 * A file format whose objects decode, whole, to tensor columns: CAI's `.pt` partitions, `.npy`, `.npz`,
 * `.safetensors`. A reader never executes anything found in a file.
 *
 * @example
 * const set = ptFormat.decode(await store.get('1.pt'), '1.pt');
 */
export interface TensorFormat {
  /** Short name used in options and errors, e.g. `pt`. */
  readonly name: string;
  /** Lower-case file extensions with the dot, e.g. `['.pt', '.pth']`. */
  readonly extensions: readonly string[];
  /** Decodes a whole object; `key` names it in errors. */
  decode(bytes: Uint8Array, key: string): ColumnSet;
}
