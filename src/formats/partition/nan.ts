import { CaiError, ErrorCodes } from '../../errors.js';
import type { TypedArray } from '../../tensor/dtype.js';

/** What to do with NaN in an item: fail the item (default), keep it, or replace it by a number. */
export type NanPolicy = 'fail' | 'keep' | number;

/**
 * Applies the NaN policy to one item's values, in place. NaN fails the item by default: a model turns
 * NaN inputs into NaN predictions without a word, so a blank pixel should be a decision, not a surprise.
 * Integer data never holds NaN and is returned as is.
 *
 * @example applyNanPolicy(values, 'fail', 'cutouts/17.fits') // throws when a BLANK pixel became NaN
 */
export function applyNanPolicy(data: TypedArray, policy: NanPolicy | undefined, source: string): TypedArray {
  if (policy === 'keep' || !(data instanceof Float32Array || data instanceof Float64Array)) return data;
  let count = 0;
  for (let i = 0; i < data.length; i++) {
    if (Number.isNaN(data[i])) {
      count++;
      if (typeof policy === 'number') data[i] = policy;
    }
  }
  if (count > 0 && (policy === undefined || policy === 'fail')) {
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `holds ${count} NaN value${count > 1 ? 's' : ''} of ${data.length} (BLANK pixels or NaN in the data); set nan to "keep" to pass them to the model, or to a number (e.g. --nan 0) to replace them`,
    );
  }
  return data;
}
