// One HDF5 file opened with h5wasm: its datasets as arrays CAI can choose from, and ranged row reads
// (hyperslabs read inside libhdf5, so only the chunks holding the rows are read and inflated).
import type { Dataset, File as H5File, Group } from 'h5wasm';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { DType, TypedArray } from '../../tensor/dtype.js';
import type { ArrayInfo } from '../arrays/layout.js';
import { guarded, Hdf5Diagnostic, loadHdf5 } from './h5-library.js';
import { readSpecial, specialArrays, type SpecialReads } from './h5-special.js';
import { typeInfo, type H5TypeMetadata } from './h5-types.js';

/**
 * HDF5 filters libhdf5 in h5wasm applies: deflate (gzip), shuffle, fletcher32, szip, nbit, scaleoffset,
 * and LZF (h5py's). Any other filter is a plugin it lacks.
 */
export const BUILTIN_FILTERS: Readonly<Record<number, string>> = Object.freeze({
  1: 'deflate',
  2: 'shuffle',
  3: 'fletcher32',
  4: 'szip',
  5: 'nbit',
  6: 'scaleoffset',
  32000: 'lzf',
});

/** Registered plugin filters (https://github.com/HDFGroup/hdf5_plugins), to name what a file needs. */
const PLUGINS: Readonly<Record<number, string>> = Object.freeze({
  305: 'LZO',
  307: 'bzip2',
  32001: 'Blosc',
  32004: 'LZ4',
  32008: 'bitshuffle',
  32013: 'zfp',
  32015: 'Zstandard',
  32017: 'SZ',
  32026: 'Blosc2',
});

/** A dataset's type and shape as h5wasm's `metadata` gives them (chunk-index.ts lists the same fields). */
export interface Metadata extends H5TypeMetadata {
  readonly shape: number[] | null;
  readonly chunks?: number[] | null;
}

/** CAI's view of an HDF5 type: its dtype (float16 read as float32, unsigned 16/32-bit widened). */
export function dtypeOf(m: Metadata): { dtype?: DType; strings?: boolean; stored: string } {
  const t = typeInfo(m);
  if (t.stringBytes !== undefined || t.vlenStrings) return { strings: true, stored: t.stored };
  return t.dtype ? { dtype: t.dtype, stored: t.stored } : { stored: t.stored };
}

/** The array CAI sees for a dataset of metadata `m`. */
export function arrayInfoOf(path: string, m: Metadata): ArrayInfo {
  return { path, shape: m.shape ?? [], chunkRows: m.chunks?.[0], ...dtypeOf(m) };
}

/** An HDF5 file open for reading. Close it when done; reads are synchronous inside libhdf5. */
export interface Hdf5File {
  readonly arrays: readonly ArrayInfo[];
  /** Rows `[start, end)` of a dataset. */
  read(array: ArrayInfo, start: number, end: number): TypedArray | string[];
  /** How many chunks rows `[start, end)` of a dataset span (0 for a contiguous one). */
  chunksSpanned(array: ArrayInfo, start: number, end: number): number;
  close(): void;
}

function readError(source: string, path: string, err: unknown): CaiError {
  const why = err instanceof Error ? err.message : String(err);
  return new CaiError(
    ErrorCodes.corrupt,
    source,
    `dataset "/${path}" cannot be read (${why}); the file is damaged or truncated: write or download it again`,
    { cause: err },
  );
}

/**
 * Opens a local HDF5 file in place (libhdf5 reads only what it needs) and lists its datasets,
 * recursively. `source` names the file in errors (its S3 URI when it is a downloaded copy). A truncated
 * or non-HDF5 file is `E_CORRUPT` with libhdf5's reason.
 *
 * @example const f = await openHdf5('/data/galaxy10.h5', 'galaxy10.h5'); f.read(f.arrays[0], 0, 8); f.close();
 */
export async function openHdf5(file: string, source: string): Promise<Hdf5File> {
  const h5 = await loadHdf5();
  let f: H5File;
  try {
    f = guarded(() => new h5.File(file, 'r'));
    // h5wasm reports some failed opens only by an invalid id.
    if (f.file_id < 0n) throw new Hdf5Diagnostic('libhdf5 could not open it', []);
  } catch (err) {
    const why = err instanceof Hdf5Diagnostic ? err.message : String(err);
    throw new CaiError(
      ErrorCodes.corrupt,
      source,
      `is not a readable HDF5 file (${why}); it is truncated or not HDF5: write or download it again`,
      { cause: err },
    );
  }
  const datasets = new Map<string, Dataset>();
  // float16 datasets and compound fields: read as raw bytes, converted by h5-types.ts.
  const special: SpecialReads = new Map();
  const fieldArrays = new Set<ArrayInfo>();
  const chunkShapes = new Map<string, { shape: number[]; chunks: number[] }>();
  const arrays: ArrayInfo[] = [];
  try {
    const walk = (g: Group, prefix: string) => {
      for (const name of guarded(() => g.keys())) {
        const path = prefix ? `${prefix}/${name}` : name;
        const entity = guarded(() => g.get(name));
        if (entity instanceof h5.Group) walk(entity, path);
        else if (entity instanceof h5.Dataset) {
          const d = entity;
          const m = guarded(() => d.metadata) as unknown as Metadata;
          datasets.set(path, d);
          if (m.chunks && m.shape) chunkShapes.set(path, { shape: m.shape, chunks: m.chunks });
          const array = arrayInfoOf(path, m);
          // float16 read raw; a compound listed with a column per field (h5-special.ts).
          const listed = specialArrays(array, m, special);
          arrays.push(...listed);
          for (const field of listed.slice(1)) fieldArrays.add(field);
        }
      }
    };
    walk(f, '');
    // A dataset named like a field (`catalog.ra` beside compound `catalog`'s field `ra`) is the one read.
    for (let i = arrays.length - 1; i >= 0; i--) {
      const p = arrays[i].path;
      if (!fieldArrays.has(arrays[i]) || !datasets.has(p)) continue;
      arrays.splice(i, 1);
      if (special.get(p)?.field) special.delete(p);
    }
  } catch (err) {
    guarded(() => f.close());
    throw err instanceof CaiError ? err : readError(source, '', err);
  }
  const checked = new Set<string>();
  return {
    arrays,
    read(array, start, end) {
      const how = special.get(array.path);
      const path = how?.dataset ?? array.path;
      const d = datasets.get(path) as Dataset;
      if (!checked.has(path)) {
        checkFilters(d, path, source);
        checked.add(path);
      }
      let out: unknown;
      try {
        if (how) return readSpecial(h5, d, how, start, end);
        out = guarded(() => d.slice([[start, end]]));
      } catch (err) {
        throw readError(source, path, err);
      }
      return widen(out, array);
    },
    chunksSpanned(array, start, end) {
      const c = chunkShapes.get(special.get(array.path)?.dataset ?? array.path);
      if (!c || end <= start) return 0;
      const rows = Math.ceil(end / c.chunks[0]) - Math.floor(start / c.chunks[0]);
      return c.shape.slice(1).reduce((n, d, i) => n * Math.ceil(d / c.chunks[i + 1]), rows);
    },
    close: () => void guarded(() => f.close()),
  };
}

function checkFilters(d: Dataset, path: string, source: string): void {
  const filters = guarded(() => d.filters) as { id: number; name: string }[];
  const missing = filters.filter((x) => !(x.id in BUILTIN_FILTERS));
  if (missing.length === 0) return;
  const names = missing.map((x) => `${PLUGINS[x.id] ?? (x.name || 'unknown')} (filter id ${x.id})`);
  throw new CaiError(
    ErrorCodes.unsupported,
    source,
    `dataset "/${path}" is compressed with ${names.join(', ')}, an HDF5 plugin CAI's HDF5 library does not carry (it has ${Object.values(BUILTIN_FILTERS).join(', ')}); rewrite it with gzip, e.g. h5repack -f GZIP=4 in.h5 out.h5`,
  );
}

/** h5wasm's arrays as CAI's: unsigned 16/32-bit widened, strings kept. */
export function widen(out: unknown, array: ArrayInfo): TypedArray | string[] {
  if (array.strings) return Array.from(out as ArrayLike<unknown>, (v) => String(v));
  if (out instanceof Uint16Array) return Int32Array.from(out);
  if (out instanceof Uint32Array) return BigInt64Array.from(out, (v) => BigInt(v));
  if (out instanceof Int8Array && (array.dtype === 'uint8' || array.dtype === 'bool'))
    return new Uint8Array(out.buffer, out.byteOffset, out.length);
  return out as TypedArray;
}
