// The HDF5 library (h5wasm: libhdf5 compiled to WebAssembly), loaded once per process on first use, and
// a guard that turns libhdf5's diagnostics into errors. libhdf5 reports a failure by printing its error
// stack (to stderr) and, in some calls (a dataset read through a filter it lacks), returning
// a buffer of garbage rather than failing: a call that printed a diagnostic must count as failed.
import fs from 'node:fs';
import type * as H5 from 'h5wasm';

/** The h5wasm module, ready to open files. */
export type H5Wasm = typeof H5;

let loading: Promise<H5Wasm> | undefined;

/**
 * Loads h5wasm's Node build (files are read in place through the file system, never copied whole into
 * its heap). Only processes that read HDF5 pay for its 4 MB of WebAssembly.
 *
 * @example const h5 = await loadHdf5(); const f = new h5.File('/data/galaxy10.h5', 'r');
 */
export function loadHdf5(): Promise<H5Wasm> {
  return (loading ??= import('h5wasm/node').then(async (m) => {
    await m.ready;
    return m as unknown as H5Wasm;
  }));
}

/** What libhdf5 printed during a call that failed or printed a diagnostic. */
export class Hdf5Diagnostic extends Error {
  constructor(
    message: string,
    /** The deepest messages of libhdf5's error stack, most specific last. */
    readonly details: readonly string[],
  ) {
    super(message);
  }
}

/**
 * The messages of the first HDF5-DIAG stack (later ones follow from it), outermost first:
 * `#006: ... in H5F__super_read(): truncated file: eof = ...`.
 */
function stackMessages(text: string): string[] {
  const first = text.split('HDF5-DIAG').find((s) => s.trim()) ?? '';
  const out: string[] = [];
  for (const m of first.matchAll(/#\d+: .*? in [\w.]+\(\): (.*)/g)) out.push(m[1].trim());
  return out;
}

/**
 * Runs a synchronous h5wasm call with libhdf5's diagnostics captured instead of printed. Throws an
 * {@link Hdf5Diagnostic} when the call threw or printed an error stack, with the stack's messages.
 *
 * @example const data = guarded(() => dataset.slice([[0, 128]]));
 */
export function guarded<T>(fn: () => T): T {
  const writeSync = fs.writeSync;
  let printed = '';
  // libhdf5 writes its error stack to fd 2 through Node's fs.writeSync (Emscripten's raw file system);
  // the call is synchronous, so nothing else writes to stderr while the hook is in place.
  fs.writeSync = ((fd: number, data: string | NodeJS.ArrayBufferView, ...rest: unknown[]) => {
    if (fd !== 2) return (writeSync as (...a: unknown[]) => number).call(fs, fd, data, ...rest);
    if (typeof data === 'string') {
      printed += data;
      return Buffer.byteLength(data);
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const offset = typeof rest[0] === 'number' ? rest[0] : 0;
    const length = typeof rest[1] === 'number' ? rest[1] : bytes.length - offset;
    printed += Buffer.from(bytes.subarray(offset, offset + length)).toString('utf8');
    return length;
  }) as typeof fs.writeSync;
  let result: T;
  try {
    result = fn();
  } catch (err) {
    const details = stackMessages(printed);
    throw new Hdf5Diagnostic(details.at(-1) ?? (err as Error).message ?? String(err), details);
  } finally {
    fs.writeSync = writeSync;
  }
  if (printed.includes('HDF5-DIAG')) {
    const details = stackMessages(printed);
    throw new Hdf5Diagnostic(details.at(-1) ?? printed.trim().split('\n')[0], details);
  }
  return result;
}
