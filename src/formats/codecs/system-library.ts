// Compression libraries of the machine (libdeflate, liblz4, libzstd, c-blosc: the same C code h5py,
// numcodecs and zarr-python run), called through koffi (a maintained FFI with prebuilt binaries on npm).
// They are optional accelerators: a machine without one keeps Node's zlib, lz4-napi or numcodecs'
// WebAssembly, which decode the same bytes more slowly. `CAI_SYSTEM_CODECS=0` turns them all off (to
// compare, or to rule them out); which one each codec uses is reported by `codecBackends()`. koffi is
// required at first use, not imported: the Lambda bundle does not carry it (nor these libraries) and its
// workers decode with the fallbacks.
import { createRequire } from 'node:module';
import type { LibraryHandle } from 'koffi';

type Koffi = { load(file: string): LibraryHandle };
let koffi: Koffi | string | undefined;
function loadKoffi(): Koffi | string {
  if (koffi === undefined) {
    try {
      koffi = createRequire(import.meta.url)('koffi') as Koffi;
    } catch (err) {
      koffi = `koffi did not load (${err instanceof Error ? err.message.split('\n')[0] : String(err)})`;
    }
  }
  return koffi;
}

/** A loaded system library, or why it is not used in this process. */
export type SystemLibrary =
  | { readonly ok: true; readonly file: string; readonly lib: LibraryHandle }
  | { readonly ok: false; readonly why: string };

const loaded = new Map<string, SystemLibrary>();
let enabled = process.env.CAI_SYSTEM_CODECS !== '0';

/**
 * Turns the system libraries on or off for this process (tests and benchmarks compare both paths);
 * libraries already bound stay loaded but callers asking again get `ok: false`.
 *
 * @example useSystemLibraries(false) // decode with Node's zlib and lz4-napi only
 */
export function useSystemLibraries(on: boolean): void {
  enabled = on;
}

/**
 * The first of `files` (sonames such as `libdeflate.so.0`) the dynamic loader finds, loaded once per
 * process; `ok: false` with the reason when none loads or system libraries are turned off.
 *
 * @example const z = systemLibrary('libdeflate', ['libdeflate.so.0', 'libdeflate.dylib']);
 */
export function systemLibrary(name: string, files: readonly string[]): SystemLibrary {
  if (!enabled) return { ok: false, why: 'system libraries turned off (CAI_SYSTEM_CODECS=0)' };
  let found = loaded.get(name);
  if (!found) {
    const ffi = loadKoffi();
    if (typeof ffi === 'string') return { ok: false, why: ffi };
    const errors: string[] = [];
    for (const file of files) {
      try {
        found = { ok: true, file, lib: ffi.load(file) };
        break;
      } catch (err) {
        errors.push(`${file}: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}`);
      }
    }
    found ??= { ok: false, why: `${name} not found on this machine (${errors.join('; ')})` };
    loaded.set(name, found);
  }
  return found;
}
