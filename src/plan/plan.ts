import { CaiError, ErrorCodes } from '../errors.js';
import { formatForKey } from '../formats/registry.js';
import type { Store } from '../storage/store.js';
import { naturalCompare } from './natural-sort.js';

/** One unit of work: a partition object in the input store. */
export interface PlannedPartition {
  /** Stable id used to name its outputs: the key without its extension, `/` turned into `__`. */
  readonly id: string;
  /** Key relative to the input root. */
  readonly key: string;
  readonly bytes: number;
}

/**
 * The partition id for a key: the key without extension, nested folders joined by `__`.
 * @example partitionId('sdss/12.pt') // 'sdss__12'
 */
export function partitionId(key: string): string {
  const dot = key.lastIndexOf('.');
  const slash = key.lastIndexOf('/');
  const stem = dot > slash + 1 ? key.slice(0, dot) : key;
  return stem.replace(/\//g, '__');
}

/**
 * Initialize: lists every readable partition under the input (all pages of the listing), in natural
 * order, keeps the first `fileLimit`. Files of other types are skipped; if nothing readable is found
 * the error says which extensions are understood.
 *
 * @example const partitions = await planPartitions(await openStore('data'), { fileLimit: 4 });
 */
export async function planPartitions(input: Store, options: { fileLimit?: number } = {}): Promise<PlannedPartition[]> {
  const found: PlannedPartition[] = [];
  const skipped: string[] = [];
  for await (const obj of input.list()) {
    const base = obj.key.slice(obj.key.lastIndexOf('/') + 1);
    if (base.startsWith('.')) continue;
    if (formatForKey(obj.key)) found.push({ id: partitionId(obj.key), key: obj.key, bytes: obj.size });
    else skipped.push(obj.key);
  }
  if (found.length === 0) {
    const seen = skipped.length ? ` (found ${skipped.slice(0, 3).join(', ')}${skipped.length > 3 ? ', ...' : ''})` : '';
    throw new CaiError(
      ErrorCodes.notFound,
      input.uri,
      `no partition files to read${seen}; CAI reads .pt, .pth, .npy, .npz and .safetensors partitions`,
    );
  }
  found.sort((a, b) => naturalCompare(a.key, b.key));
  const ids = new Map<string, string>();
  for (const p of found) {
    const other = ids.get(p.id);
    if (other) {
      throw new CaiError(
        ErrorCodes.option,
        input.uri,
        `"${other}" and "${p.key}" would both be partition "${p.id}"; keep one file per partition name`,
      );
    }
    ids.set(p.id, p.key);
  }
  return options.fileLimit ? found.slice(0, options.fileLimit) : found;
}
