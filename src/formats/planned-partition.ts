// What planning makes of an input: the unit of work every engine hands to a worker. Below the sources
// (which produce it) and the planner (which orders and limits it), so neither imports the other for it.

/** One unit of work: a partition of the input. */
export interface PlannedPartition {
  /** Stable id used to name its outputs: the key without its extension, `/` turned into `__`. */
  readonly id: string;
  /** Key relative to the input root (the first key, for partitions of many objects). */
  readonly key: string;
  /** Bytes of its source objects. */
  readonly bytes: number;
  /** The source kind that reads it (`tensor`, `image`...); `tensor` when absent. */
  readonly source?: string;
  /** Every key of a partition made of many objects (a folder of images), in item order. */
  readonly keys?: readonly string[];
  /** Items, when known before reading. */
  readonly items?: number;
  /** Rows `[start, end)` of the object, for partitions that are a slice of one file. */
  readonly rows?: readonly [number, number];
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
