// One HDF5 file opened with h5wasm: its datasets as arrays CAI can choose from, and ranged row reads
// (hyperslabs read inside libhdf5, so only the chunks holding the rows are read and inflated).
import type { Dataset, File as H5File, Group } from 'h5wasm';
import { CaiError, ErrorCodes } from '../../errors.js';
import type { DType, TypedArray } from '../../tensor/dtype.js';
import type { ArrayInfo } from '../arrays/layout.js';
import { guarded, Hdf5Diagnostic, loadHdf5 } from './h5-library.js';

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
export interface Metadata {
  readonly type: number;
  readonly size: number;
  readonly signed: boolean;
  readonly vlen?: boolean;
  readonly littleEndian?: boolean;
  readonly shape: number[] | null;
  readonly chunks?: number[] | null;
}

/** CAI's dtype for an HDF5 numeric type (unsigned 16- and 32-bit widened, as the FITS reader does). */
export function dtypeOf(m: Metadata): { dtype?: DType; strings?: boolean; stored: string } {
  const bits = m.size * 8;
  if (m.type === 0) {
    const stored = `${m.signed ? 'int' : 'uint'}${bits}`;
    const map: Record<string, DType> = {
      int8: 'int8',
      uint8: 'uint8',
      int16: 'int16',
      uint16: 'int32',
      int32: 'int32',
      uint32: 'int64',
      int64: 'int64',
    };
    return { dtype: map[stored], stored };
  }
  if (m.type === 1) {
    const stored = `float${bits}`;
    return { dtype: bits === 32 ? 'float32' : bits === 64 ? 'float64' : undefined, stored };
  }
  if (m.type === 3) return { strings: true, stored: m.vlen ? 'string' : `S${m.size}` };
  // h5py stores numpy booleans as an enum {FALSE: 0, TRUE: 1} of int8.
  const members = (m as { enum_type?: { members?: Record<string, number> } }).enum_type?.members;
  if (m.type === 8 && m.size === 1 && members?.FALSE === 0 && members?.TRUE === 1) {
    return { dtype: 'bool', stored: 'bool' };
  }
  const names: Record<number, string> = { 6: 'compound', 8: 'enum', 9: 'vlen', 10: 'array' };
  return { stored: names[m.type] ?? `class ${m.type}` };
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
          arrays.push(arrayInfoOf(path, m));
        }
      }
    };
    walk(f, '');
  } catch (err) {
    guarded(() => f.close());
    throw err instanceof CaiError ? err : readError(source, '', err);
  }
  const checked = new Set<string>();
  return {
    arrays,
    read(array, start, end) {
      const d = datasets.get(array.path) as Dataset;
      if (!checked.has(array.path)) {
        checkFilters(d, array.path, source);
        checked.add(array.path);
      }
      let out: unknown;
      try {
        out = guarded(() => d.slice([[start, end]]));
      } catch (err) {
        throw readError(source, array.path, err);
      }
      return widen(out, array);
    },
    chunksSpanned(array, start, end) {
      const c = chunkShapes.get(array.path);
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
