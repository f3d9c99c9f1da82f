// Partitions as HDF5 files, written with h5wasm (libhdf5) into memory: libhdf5 writes through Node's
// file calls (h5wasm's Node build), and for the duration of one synchronous write those calls for one
// virtual path are answered by a growing buffer, so no file exists anywhere until the caller stores the
// bytes (atomically, through its Store). A killed process leaves nothing behind.
import fs from 'node:fs';
import type { File as H5File } from 'h5wasm';
import type { DType, TypedArray } from '../../tensor/dtype.js';
import type { Tensor } from '../../tensor/tensor.js';
import { guarded, loadHdf5 } from './h5-library.js';
import { halfBitsToFloat32 } from './h5-types.js';

/**
 * The dtype each CAI dtype is written as: h5wasm creates integer and 32/64-bit float datasets only, so
 * float16 is written as float32 (exactly: every half is a float32) and bool as uint8 (0 or 1).
 */
export const HDF5_WRITTEN_DTYPES: Readonly<Record<DType, DType>> = Object.freeze({
  float16: 'float32',
  float32: 'float32',
  float64: 'float64',
  int8: 'int8',
  int16: 'int16',
  int32: 'int32',
  int64: 'int64',
  uint8: 'uint8',
  bool: 'uint8',
});

// h5wasm's dtype strings (NumPy's type characters), little-endian.
const H5_DTYPES: Readonly<Record<DType, string>> = Object.freeze({
  float16: '<f',
  float32: '<f',
  float64: '<d',
  int8: '<b',
  int16: '<h',
  int32: '<i',
  int64: '<q',
  uint8: '<B',
  bool: '<B',
});

/** Bytes of a chunk, about: whole rows, at least one. */
const CHUNK_BYTES = 1 << 20;

/** A file in memory answering Node's synchronous file calls for one path and descriptor. */
class MemoryFile {
  length = 0;
  bytes: Buffer;

  /** `expected`: about the bytes the file will hold (its data), so it is rarely grown. */
  constructor(expected: number) {
    this.bytes = Buffer.allocUnsafeSlow(expected + (1 << 16));
  }

  read(buffer: Uint8Array, offset: number, length: number, position: number): number {
    const n = Math.max(0, Math.min(length, this.length - position));
    buffer.set(this.bytes.subarray(position, position + n), offset);
    return n;
  }

  write(buffer: Uint8Array, offset: number, length: number, position: number): number {
    this.reserve(position + length);
    // A hole left by a write past the end reads as zeros, as in a file.
    if (position > this.length) this.bytes.fill(0, this.length, position);
    this.bytes.set(buffer.subarray(offset, offset + length), position);
    this.length = Math.max(this.length, position + length);
    return length;
  }

  truncate(length: number): void {
    this.reserve(length);
    if (length > this.length) this.bytes.fill(0, this.length, length);
    this.length = length;
  }

  private reserve(n: number): void {
    if (n <= this.bytes.length) return;
    const next = Buffer.allocUnsafeSlow(Math.max(n, this.bytes.length * 2));
    next.set(this.bytes.subarray(0, this.length));
    this.bytes = next;
  }
}

// A path no real file has, and a descriptor number no real file gets.
const VIRTUAL_PATH = '/dev/null/cai-hdf5-partition.h5';
const VIRTUAL_FD = 0x3fff_0002;

type Fn = (...args: unknown[]) => unknown;

/**
 * Runs `write` (synchronous h5wasm calls creating `VIRTUAL_PATH`) with Node's file calls for that path
 * answered in memory; returns the file's bytes. The calls are replaced only while `write` runs, and
 * `write` is synchronous, so no other code sees them.
 */
function inMemory(expected: number, write: (path: string) => void): Uint8Array {
  const file = new MemoryFile(expected);
  const names = ['openSync', 'closeSync', 'readSync', 'writeSync', 'fstatSync', 'statSync', 'lstatSync'];
  const extra = ['ftruncateSync', 'truncateSync', 'fsyncSync', 'fdatasyncSync', 'existsSync'];
  const target = fs as unknown as Record<string, Fn>;
  const saved = Object.fromEntries([...names, ...extra].map((n) => [n, target[n]]));
  const stat = (): fs.Stats => {
    const base = (saved.statSync as typeof fs.statSync)(process.execPath);
    return Object.assign(Object.create(Object.getPrototypeOf(base) as object) as fs.Stats, base, {
      size: file.length,
      ino: 2,
      mode: 0o100644,
      blocks: Math.ceil(file.length / 512),
    });
  };
  const isPath = (p: unknown) => p === VIRTUAL_PATH;
  const isFd = (fd: unknown) => fd === VIRTUAL_FD;
  const patches: Record<string, Fn> = {
    openSync: (p, ...rest) => (isPath(p) ? VIRTUAL_FD : saved.openSync(p, ...rest)),
    closeSync: (fd) => (isFd(fd) ? undefined : saved.closeSync(fd)),
    fstatSync: (fd, ...rest) => (isFd(fd) ? stat() : saved.fstatSync(fd, ...rest)),
    statSync: (p, ...rest) => (isPath(p) ? stat() : saved.statSync(p, ...rest)),
    lstatSync: (p, ...rest) => (isPath(p) ? stat() : saved.lstatSync(p, ...rest)),
    existsSync: (p) => isPath(p) || saved.existsSync(p),
    readSync: (fd, buffer, offset, length, position) =>
      isFd(fd)
        ? file.read(buffer as Uint8Array, Number(offset ?? 0), Number(length), Number(position ?? 0))
        : saved.readSync(fd, buffer, offset, length, position),
    writeSync: (fd, buffer, offset, length, position, ...rest) =>
      isFd(fd)
        ? file.write(buffer as Uint8Array, Number(offset ?? 0), Number(length), Number(position ?? 0))
        : saved.writeSync(fd, buffer, offset, length, position, ...rest),
    ftruncateSync: (fd, len) => (isFd(fd) ? file.truncate(Number(len ?? 0)) : saved.ftruncateSync(fd, len)),
    truncateSync: (p, len) => (isPath(p) ? file.truncate(Number(len ?? 0)) : saved.truncateSync(p, len)),
    fsyncSync: (fd) => (isFd(fd) ? undefined : saved.fsyncSync(fd)),
    fdatasyncSync: (fd) => (isFd(fd) ? undefined : saved.fdatasyncSync(fd)),
  };
  Object.assign(fs, patches);
  try {
    write(VIRTUAL_PATH);
  } finally {
    Object.assign(fs, saved);
  }
  return new Uint8Array(file.bytes.buffer, file.bytes.byteOffset, file.length);
}

/** A column's values as h5wasm writes them (float16 decoded to float32). */
function valuesOf(t: Tensor): TypedArray {
  return t.dtype === 'float16' ? halfBitsToFloat32(t.data as Uint16Array) : t.data;
}

/** The groups a dataset path needs (`a/b/x` -> `a`, `a/b`), created once each. */
function ensureGroups(f: H5File, path: string, made: Set<string>): void {
  const parts = path.split('/').slice(0, -1);
  for (let i = 1; i <= parts.length; i++) {
    const g = parts.slice(0, i).join('/');
    if (made.has(g)) continue;
    f.create_group(g);
    made.add(g);
  }
}

/**
 * Serializes named columns as an HDF5 file: one dataset per column, named as the column (a `/` in the
 * name makes groups), rows along the first axis, chunked by whole rows of about 1 MiB, uncompressed;
 * float16 written as float32 and bool as uint8 ({@link HDF5_WRITTEN_DTYPES}); `attributes` as string
 * attributes of the root group. Readable by h5py and by CAI's HDF5 source.
 *
 * @example await store.put('1.h5', await encodeHdf5([{ name: 'image', tensor }], { input: 'big.npy' }));
 */
export async function encodeHdf5(
  columns: readonly { readonly name: string; readonly tensor: Tensor }[],
  attributes: Readonly<Record<string, string>> = {},
): Promise<Uint8Array> {
  const h5 = await loadHdf5();
  const expected = columns.reduce(
    (sum, c) => sum + c.tensor.data.byteLength * (c.tensor.dtype === 'float16' ? 2 : 1),
    0,
  );
  return inMemory(expected, (path) =>
    guarded(() => {
      const f = new h5.File(path, 'w');
      try {
        const made = new Set<string>();
        for (const { name, tensor } of columns) {
          ensureGroups(f, name, made);
          const shape = [...tensor.shape];
          const rowBytes =
            shape.slice(1).reduce((a, b) => a * b, 1) * (tensor.data.BYTES_PER_ELEMENT || 1) || 1;
          const rows = Math.max(1, Math.min(shape[0] || 1, Math.floor(CHUNK_BYTES / rowBytes)));
          f.create_dataset({
            name,
            data: valuesOf(tensor),
            shape,
            dtype: H5_DTYPES[tensor.dtype],
            // A dataset of no rows cannot be chunked by rows.
            ...(shape.length > 0 && shape.every((d) => d > 0) ? { chunks: [rows, ...shape.slice(1)] } : {}),
          });
        }
        for (const [k, v] of Object.entries(attributes)) f.create_attribute(k, v);
      } finally {
        f.close();
      }
    }),
  );
}
