// Which arrays of a chunked-array container (an HDF5 file, a Zarr group) become columns: named by the
// job, else every numeric array whose first dimension is the most common one; plus an id array.
import { CaiError, ErrorCodes } from '../../errors.js';
import type { DType } from '../../tensor/dtype.js';

/** One array of a container, as the reader found it. */
export interface ArrayInfo {
  /** Path inside the container, without a leading `/` (`images`, `data/image`). */
  readonly path: string;
  readonly shape: readonly number[];
  /** CAI dtype its values are read as, or `undefined` for strings and other non-numeric types. */
  readonly dtype?: DType;
  /** Whether it holds strings (usable only as ids). */
  readonly strings?: boolean;
  /** A short description of the stored type, for messages (`<u2`, `S8`, `compound`). */
  readonly stored: string;
  /** Rows along the first axis per chunk, when the array is chunked. */
  readonly chunkRows?: number;
  /** Why a non-numeric array is no column and what to read instead (an HDF5 compound names its fields). */
  readonly note?: string;
}

/** The job fields that choose arrays. */
export interface ArrayJobFields {
  /** Arrays read as columns: a list of paths, or column name -> path. */
  readonly datasets?: readonly string[] | Readonly<Record<string, string>>;
  /** Group the paths are relative to (default the root). */
  readonly group?: string;
  /** Array whose values become the item ids. */
  readonly idColumn?: string;
  /** Arrays copied into the predictions, one value per item. */
  readonly carry?: readonly string[];
  /** Array of HWC uint8 images to preprocess (default: every such array, when preprocessing is asked). */
  readonly imageColumn?: string;
}

/** A column to read: its name in the batch and its array. */
export interface ArrayColumn {
  readonly name: string;
  readonly array: ArrayInfo;
}

/** The arrays chosen: columns in order, the id array, and the items they share. */
export interface ArrayLayout {
  readonly columns: readonly ArrayColumn[];
  readonly id?: ArrayInfo;
  /** Arrays carried into the predictions (`carry`), by the name the job gave. */
  readonly carry?: readonly ArrayColumn[];
  readonly items: number;
}

/** `/data/` -> `data`, `/` -> ''. */
export function cleanPath(p: string | undefined): string {
  return (p ?? '').replace(/^\/+|\/+$/g, '').replace(/\/+/g, '/');
}

const numelOf = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

const describeArray = (a: ArrayInfo) => `/${a.path} ${a.stored} [${a.shape.join(', ')}]`;

function find(
  arrays: readonly ArrayInfo[],
  group: string,
  path: string,
  field: string,
  source: string,
): ArrayInfo {
  const full = cleanPath(group ? `${group}/${cleanPath(path)}` : path);
  const found = arrays.find((a) => a.path === full);
  if (!found) {
    throw new CaiError(
      // Every dataset looked up here is one the job names (--datasets, --id-column, --carry): one the data
      // lacks is the job's option not fitting, refused by the preflight before any work (as Parquet's).
      ErrorCodes.option,
      source,
      `has no dataset "/${full}" (${field}); its datasets are ${arrays.map(describeArray).join(', ') || 'none'}`,
    );
  }
  if (found.shape.length === 0) {
    throw new CaiError(
      ErrorCodes.unsupported,
      source,
      `dataset "/${full}" is a scalar; a column needs a first (items) dimension`,
    );
  }
  return found;
}

function raggedError(source: string, arrays: readonly ArrayInfo[]): CaiError {
  return new CaiError(
    ErrorCodes.corrupt,
    source,
    `datasets disagree on the number of items (${arrays.map((a) => `/${a.path}: ${a.shape[0]}`).join(', ')}); every column needs one row per item: name the datasets to read with --datasets`,
  );
}

/**
 * Chooses the columns of a container. Named datasets (`datasets`, relative to `group`) must exist, be
 * numeric and share their first dimension; left out, every numeric array under `group` whose first
 * dimension is the most common one is a column (a tie is an error: the items are ambiguous). The id
 * array is never a column. Column names are the paths relative to `group`, or the names the job gives.
 *
 * @example chooseArrays(arrays, { datasets: { image: 'images' }, idColumn: 'ids' }, 'galaxy10.h5')
 */
export function chooseArrays(arrays: readonly ArrayInfo[], job: ArrayJobFields, source: string): ArrayLayout {
  const group = cleanPath(job.group);
  const under = arrays.filter((a) => !group || a.path.startsWith(`${group}/`));
  const relative = (a: ArrayInfo) => (group ? a.path.slice(group.length + 1) : a.path);
  const id = job.idColumn ? find(arrays, group, job.idColumn, 'idColumn', source) : undefined;
  let columns: ArrayColumn[];
  if (job.datasets) {
    const entries = Array.isArray(job.datasets)
      ? (job.datasets as readonly string[]).map((p) => [cleanPath(p), p] as const)
      : Object.entries(job.datasets);
    columns = entries.map(([name, p]) => ({ name, array: find(arrays, group, p, 'datasets', source) }));
    for (const c of columns) {
      if (!c.array.dtype) {
        throw new CaiError(
          ErrorCodes.unsupported,
          source,
          c.array.note
            ? `dataset "/${c.array.path}" ${c.array.note}`
            : `dataset "/${c.array.path}" holds ${c.array.stored} values, which no model takes; use it as idColumn or leave it out`,
        );
      }
    }
  } else {
    const numeric = under.filter((a) => a.dtype && a.shape.length > 0 && a !== id);
    const counts = new Map<number, number>();
    for (const a of numeric) counts.set(a.shape[0], (counts.get(a.shape[0]) ?? 0) + 1);
    const ranked = [...counts.entries()].sort((x, y) => y[1] - x[1]);
    if (ranked.length === 0) {
      throw new CaiError(
        ErrorCodes.notFound,
        source,
        `has no numeric dataset${group ? ` under /${group}` : ''} to read (datasets: ${arrays.map(describeArray).join(', ') || 'none'}); name them with --datasets or choose --group`,
      );
    }
    if (ranked.length > 1 && ranked[0][1] === ranked[1][1]) throw raggedError(source, numeric);
    columns = numeric
      .filter((a) => a.shape[0] === ranked[0][0])
      .map((a) => ({ name: relative(a), array: a }));
  }
  const carry = job.carry?.map((name) => {
    const array = find(arrays, group, name, '--carry', source);
    if (numelOf(array.shape.slice(1)) !== 1) {
      throw new CaiError(
        ErrorCodes.option,
        source,
        `dataset "/${array.path}" is ${array.stored} [${array.shape.join(', ')}]: --carry copies one value per item (a dataset of shape [items] or [items, 1]); leave it out of --carry`,
      );
    }
    return { name, array };
  });
  for (const a of [...(id ? [id] : []), ...(carry ?? []).map((c) => c.array)]) {
    // An id or carried array may hold strings; an array with a note holds neither (an HDF5 compound).
    if (a.note && !a.dtype && !a.strings)
      throw new CaiError(ErrorCodes.unsupported, source, `dataset "/${a.path}" ${a.note}`);
  }
  const all = [...columns.map((c) => c.array), ...(id ? [id] : []), ...(carry ?? []).map((c) => c.array)];
  if (all.some((a) => a.shape[0] !== all[0].shape[0])) throw raggedError(source, all);
  return { columns, id, ...(carry ? { carry } : {}), items: all[0].shape[0] };
}
