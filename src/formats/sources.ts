import { CaiError, ErrorCodes } from '../errors.js';
import { fitsFiles } from './fits/fits-source.js';
import { hdf5Files } from './hdf5/hdf5-source.js';
import { imageFiles } from './image/image-source.js';
import { parquetFiles } from './parquet/parquet-source.js';
import type { SourceKind } from './source.js';
import { tensorFiles } from './tensor-source.js';
import { zarrStores } from './zarr/zarr-source.js';

const registered: SourceKind[] = [imageFiles, fitsFiles, parquetFiles, hdf5Files, zarrStores, tensorFiles];
const all = (): SourceKind[] => registered;

/**
 * Adds a source kind (images, FITS, Parquet...). Later registrations are tried first.
 * @example registerSource(imageFiles);
 */
export function registerSource(kind: SourceKind): void {
  all().unshift(kind);
}

/** Every registered source kind. */
export function sourceKinds(): readonly SourceKind[] {
  return all();
}

/** The source kind with this name, or a clear error listing the valid names. @example sourceByName('tensor') */
export function sourceByName(name: string): SourceKind {
  const kind = all().find((k) => k.name === name);
  if (!kind) {
    throw new CaiError(
      ErrorCodes.option,
      'format',
      `unknown input format "${name}"; valid formats are ${all()
        .map((k) => k.name)
        .join(', ')}`,
    );
  }
  return kind;
}

/** The source kind that reads a key, if any. @example sourceForKey('12.pt')?.name // 'tensor' */
export function sourceForKey(key: string): SourceKind | undefined {
  return all().find((k) => k.accepts(key));
}
