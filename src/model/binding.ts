import { CaiError, ErrorCodes } from '../errors.js';
import type { ColumnSet } from '../formats/columns.js';
import { DTYPES, isFloat, type DType } from '../tensor/dtype.js';
import { cast, type Tensor } from '../tensor/tensor.js';
import type { ModelValueInfo } from './session.js';

/** Which partition column feeds which model input, and the dtype it is cast to. */
export interface InputBinding {
  readonly input: string;
  readonly column: number;
  readonly columnName: string;
  readonly dtype: DType;
}

/** A column reference: a name or a position. */
export type ColumnRef = string | number;

function findColumn(set: ColumnSet, ref: ColumnRef): number {
  if (typeof ref === 'number') return ref < set.columns.length ? ref : -1;
  const byName = set.names.indexOf(ref);
  if (byName >= 0) return byName;
  return /^\d+$/.test(ref) && Number(ref) < set.columns.length ? Number(ref) : -1;
}

function describeColumns(set: ColumnSet): string {
  return set.names
    .map((n, i) => `${i}:"${n}" [${set.columns[i].shape.join(',')}] ${set.columns[i].dtype}`)
    .join(', ');
}

/**
 * The position of a column in a partition, or a clear error naming the valid columns.
 * @example resolveColumn(set, 'redshift', '1.pt', 'label') // 2
 */
export function resolveColumn(set: ColumnSet, ref: ColumnRef, source: string, role: string): number {
  const i = findColumn(set, ref);
  if (i < 0) {
    throw new CaiError(
      ErrorCodes.binding,
      source,
      `${role} column ${JSON.stringify(ref)} does not exist; the partition has columns ${describeColumns(set)}\nhint: --${role === 'label' ? 'label' : 'inputs'} takes a column's name or position; --datasets chooses the HDF5 datasets or Zarr arrays read as columns, --feature-columns the Parquet ones`,
    );
  }
  return i;
}

function castable(from: DType, to: DType): boolean {
  if (from === to || from === 'bool') return true;
  if (isFloat(to)) return true;
  // Floats into integer inputs would silently truncate: refuse before the first batch.
  return !isFloat(from) && to !== 'bool';
}

/**
 * Binds partition columns to model inputs (by the explicit mapping; else by name when every input has
 * a column of its name; else by position) and checks every
 * input's dtype and per-item shape before the first batch. All problems are reported in one error that
 * names each input with its expected and actual shape.
 *
 * @example bindInputs(set, model.inputs, { image: 0, magnitude: 1 }, '1.pt')
 */
export function bindInputs(
  set: ColumnSet,
  inputs: readonly ModelValueInfo[],
  mapping: Readonly<Record<string, ColumnRef>> | undefined,
  source: string,
): InputBinding[] {
  const problems: string[] = [];
  const names = inputs.map((i) => i.name);
  // Columns named exactly like the model's inputs (an .npz saved as np.savez(f, image=..., magnitude=...))
  // bind by name whatever their order; other columns bind by position.
  if (!mapping && names.length > 0 && names.every((n) => set.names.includes(n))) {
    mapping = Object.fromEntries(names.map((n) => [n, n]));
  }
  if (mapping) {
    for (const key of Object.keys(mapping)) {
      if (!names.includes(key))
        problems.push(`mapping names input "${key}", but the model's inputs are ${names.join(', ')}`);
    }
  } else if (inputs.length > set.columns.length) {
    problems.push(
      `the model takes ${inputs.length} inputs (${names.join(', ')}) but the partition has ${set.columns.length} columns (${describeColumns(set)}); map them with --inputs`,
    );
  }
  const bindings: InputBinding[] = [];
  inputs.forEach((input, position) => {
    const ref = mapping ? mapping[input.name] : position;
    if (ref === undefined) {
      problems.push(
        `input "${input.name}" is not mapped; add it to --inputs (columns: ${describeColumns(set)})`,
      );
      return;
    }
    const column = findColumn(set, ref);
    if (column < 0) {
      problems.push(
        `input "${input.name}" maps to column ${JSON.stringify(ref)}, which does not exist (columns: ${describeColumns(set)})`,
      );
      return;
    }
    const t = set.columns[column];
    if (!(DTYPES as readonly string[]).includes(input.dtype)) {
      problems.push(`input "${input.name}" takes ${input.dtype}, which CAI cannot feed`);
      return;
    }
    const dtype = input.dtype as DType;
    if (!castable(t.dtype, dtype)) {
      problems.push(
        `input "${input.name}" takes ${dtype} but column "${set.names[column]}" is ${t.dtype}, which would lose values; convert the data or the model`,
      );
    }
    const expected = input.shape;
    const actual = t.shape;
    const fmt = (s: readonly (number | string)[]) => `[${s.map((d) => (d === -1 ? '?' : d)).join(', ')}]`;
    if (expected.length > 0) {
      const fits =
        expected.length === actual.length &&
        expected.every((d, i) => i === 0 || typeof d !== 'number' || d < 0 || d === actual[i]);
      if (!fits) {
        problems.push(
          `input "${input.name}" expects shape ${fmt(expected)} but column "${set.names[column]}" has ${fmt(['N', ...actual.slice(1)])}`,
        );
      }
    }
    bindings.push({ input: input.name, column, columnName: set.names[column], dtype });
  });
  if (problems.length) {
    throw new CaiError(
      ErrorCodes.binding,
      source,
      `cannot feed the model: ${problems.join('; ')}\nhint: ${bindingHint(set, inputs, mapping, problems)}`,
    );
  }
  return bindings;
}

/**
 * The line after a binding error that names the flags that fix it: which column went to which input
 * when they were bound by position (an HDF5 file's datasets are columns in alphabetical order, so a
 * model's `image` input gets `ans`), `--inputs` and `--datasets` to choose, and the image preprocessing
 * (`--preset`, `--layout`) when images stored as [N, H, W, C] meet a model that takes [N, C, H, W].
 */
function bindingHint(
  set: ColumnSet,
  inputs: readonly ModelValueInfo[],
  mapping: Readonly<Record<string, ColumnRef>> | undefined,
  problems: readonly string[],
): string {
  const hints: string[] = [];
  if (!mapping) {
    const pairs = inputs
      .slice(0, set.columns.length)
      .map((input, i) => `${input.name} <- column ${i} "${set.names[i]}"`);
    hints.push(
      `the inputs were bound by position (${pairs.join(', ')}); choose with --inputs ${inputs.map((i) => `${i.name}=<column>`).join(',')}, and choose which HDF5 datasets or Zarr arrays are columns with --datasets (e.g. --datasets ${inputs[0]?.name ?? 'image'}=images)`,
    );
  } else
    hints.push(
      '--inputs maps model inputs to columns; --datasets chooses the HDF5 datasets or Zarr arrays read as columns',
    );
  const images = set.columns.some(
    (c) => c.shape.length === 4 && [1, 3, 4].includes(c.shape[3]) && c.shape[1] > 4 && c.shape[2] > 4,
  );
  if (images && problems.some((p) => p.includes('expects shape')))
    hints.push(
      'images stored as [N, H, W, C] reach a model taking [N, C, H, W] through the image preprocessing: --preset imagenet, or --resize/--center-crop/--mean/--std with --layout nchw',
    );
  return hints.join('; ');
}

/** The feeds for rows of a partition, cast to each input's dtype. @example feedsFor(batch, bindings) */
export function feedsFor(batch: ColumnSet, bindings: readonly InputBinding[]): Record<string, Tensor> {
  const feeds: Record<string, Tensor> = {};
  for (const b of bindings) feeds[b.input] = cast(batch.columns[b.column], b.dtype, b.input);
  return feeds;
}
