// The datasets h5wasm's `slice` cannot give CAI as arrays: float16 (it throws "Float16 not supported") and
// compounds (h5py structured arrays: it returns rows as arrays of JavaScript values). Both are read as raw
// rows (h5-raw.ts) and converted by h5-types.ts; a compound's fields are listed as arrays of their own,
// named `<dataset>.<field>`, so each numeric field can be a model input, a label, an id or a carried column.
import type { Dataset } from 'h5wasm';
import type { TypedArray } from '../../tensor/dtype.js';
import type { ArrayInfo } from '../arrays/layout.js';
import { guarded, type H5Wasm } from './h5-library.js';
import { readRawRows } from './h5-raw.js';
import {
  compoundFields,
  decodeElements,
  fieldValues,
  holdsVlen,
  typeInfo,
  type CompoundField,
  type ElementType,
  type H5TypeMetadata,
} from './h5-types.js';

/** How to read one array that is not read with h5wasm's `slice`. */
export interface SpecialRead {
  /** The dataset holding it (the compound, for a field). */
  readonly dataset: string;
  readonly shape: readonly number[];
  /** Bytes of one element of the dataset (a whole row of a compound). */
  readonly elementSize: number;
  /** A numeric dataset read raw (float16): its elements, little-endian as libhdf5 returns them. */
  readonly element?: ElementType;
  /** A compound's field. */
  readonly field?: CompoundField;
  /** Whether rows hold variable-length data to free after each read. */
  readonly vlen: boolean;
  /** The last rows read of the dataset, shared by its fields (a batch reads each row once). */
  readonly last: { start: number; end: number; bytes?: Uint8Array };
}

/** Arrays read raw, by path. */
export type SpecialReads = Map<string, SpecialRead>;

/** The separator between a compound dataset's path and a field name in the field's array path. */
export const FIELD_SEPARATOR = '.';

const describeField = (f: CompoundField) =>
  `${f.name} ${f.type.stored}${f.shape.length ? ` [${f.shape.join(', ')}]` : ''}`;

/**
 * The arrays a dataset gives CAI: itself, registered in `special` when it is float16; for a compound,
 * itself (no column: it says which fields are) and one array per field, `catalog.ra`, with the compound's
 * rows and the field's shape (`[items, 4, 4, 3]` for an image field). Fields CAI cannot read (nested
 * compounds, variable-length, strings arrays...) are listed with no dtype and a note saying why.
 *
 * @example specialArrays({ path: 'catalog', shape: [40], stored: 'compound' }, metadata, special)
 */
export function specialArrays(array: ArrayInfo, m: H5TypeMetadata, special: SpecialReads): ArrayInfo[] {
  const t = typeInfo(m);
  const last = { start: 0, end: 0 };
  if (t.element?.kind === 'float' && t.element.size === 2) {
    const element = { ...t.element, littleEndian: true };
    special.set(array.path, {
      dataset: array.path,
      shape: array.shape,
      elementSize: 2,
      element,
      vlen: false,
      last,
    });
    return [array];
  }
  if (m.type !== 6) return [array];
  const fields = compoundFields(m);
  const vlen = holdsVlen(m);
  const name = (f: CompoundField) => `${array.path}${FIELD_SEPARATOR}${f.name}`;
  const readable = fields.filter((f) => !f.refused);
  const out: ArrayInfo[] = [
    {
      ...array,
      stored: `compound {${fields.map(describeField).join(', ')}}`,
      note: `is a compound dataset (a table of fields); each field is a column of its own: ${readable.map((f) => `"${name(f)}"`).join(', ') || 'none of its fields is numeric'}`,
    },
  ];
  for (const f of fields) {
    const path = name(f);
    const shape = [...array.shape, ...f.shape];
    const stored = `${f.type.stored} field of a compound`;
    if (f.refused) {
      out.push({
        path,
        shape,
        stored,
        note: `is field "${f.name}" of compound dataset "/${array.path}", ${f.refused}, which CAI does not read; leave it out (the compound's other fields read as columns)`,
      });
      continue;
    }
    // Decoded from libhdf5's bytes, which are little-endian whatever the file's order.
    const field: CompoundField = f.type.element
      ? { ...f, type: { ...f.type, element: { ...f.type.element, littleEndian: true } } }
      : f;
    special.set(path, { dataset: array.path, shape: array.shape, elementSize: m.size, field, vlen, last });
    out.push({
      path,
      shape,
      stored,
      chunkRows: array.chunkRows,
      ...(f.type.dtype ? { dtype: f.type.dtype } : { strings: true }),
    });
  }
  return out;
}

/**
 * Rows `[start, end)` of an array listed by {@link specialArrays}: a float16 dataset as float32, a field
 * as its values. A compound's rows are read once for all the fields a batch reads.
 *
 * @example readSpecial(h5, dataset, special.get('catalog.z'), 0, 64) // Float32Array
 */
export function readSpecial(
  h5: H5Wasm,
  d: Dataset,
  how: SpecialRead,
  start: number,
  end: number,
): TypedArray | string[] {
  const { last } = how;
  if (!last.bytes || last.start !== start || last.end !== end) {
    last.bytes = undefined;
    last.bytes = guarded(() => readRawRows(h5, d, how.shape, how.elementSize, start, end, how.vlen));
    last.start = start;
    last.end = end;
  }
  const bytes = last.bytes;
  if (how.field) return fieldValues(bytes, how.elementSize, how.field);
  return decodeElements(bytes, how.element as ElementType);
}
