// JSON objects in a store: records, plans, jobs, locks, summaries, manifests, state files.
import { CaiError, ErrorCodes } from '../errors.js';
import type { Store } from './store.js';

/** Options of {@link readJson}. */
export interface ReadJsonOptions {
  /** The object's size where a listing or HEAD already gave it: the read must return that many bytes. */
  readonly expectedSize?: number;
  /** What to do about an object that is whole and still not valid JSON, for the error's message. */
  readonly remedy?: string;
}

const DEFAULT_REMEDY =
  'it was not written by CAI or was damaged after writing; rerun the command that writes it';

/**
 * An object parsed as JSON; a missing one is the store's not-found error. A body that does not parse
 * is first checked against the object's stored size (a HEAD): a read cut short in transit is read again
 * (S3 retries it, counted), and only an object that is bad as a whole is `E_CORRUPT`, naming it, its
 * size and what to do.
 *
 * @example const record = await readJson<PartitionRecord>(output, 'results/1.json', { expectedSize: 812 });
 */
export async function readJson<T>(store: Store, key: string, options: ReadJsonOptions = {}): Promise<T> {
  let bytes = await store.get(key, { expectedSize: options.expectedSize });
  let parsed = tryParse(bytes);
  if (!parsed.ok && options.expectedSize === undefined) {
    const head = await store.head(key);
    if (head && head.size !== bytes.byteLength) {
      bytes = await store.get(key, { expectedSize: head.size });
      parsed = tryParse(bytes);
    }
  }
  if (!parsed.ok) {
    throw new CaiError(
      ErrorCodes.corrupt,
      store.describe(key),
      `is not valid JSON (${parsed.message}), read whole (${bytes.byteLength} bytes, the size stored): the object itself is truncated or corrupt; ${options.remedy ?? DEFAULT_REMEDY}`,
    );
  }
  return parsed.value as T;
}

/**
 * A JSON object ({} or []) parsed with {@link readJson}; any other JSON value is `E_CORRUPT` too.
 * @example const summary = await readJsonObject<JobSummary>(output, 'summary.json');
 */
export async function readJsonObject<T extends object>(
  store: Store,
  key: string,
  options: ReadJsonOptions = {},
): Promise<T> {
  const value = await readJson<unknown>(store, key, options);
  if (value === null || typeof value !== 'object') {
    throw new CaiError(
      ErrorCodes.corrupt,
      store.describe(key),
      `holds ${JSON.stringify(value)?.slice(0, 40)}, not a JSON object; ${options.remedy ?? DEFAULT_REMEDY}`,
    );
  }
  return value as T;
}

/**
 * An object parsed as JSON, or `undefined` when there is none (state files that another process may
 * rewrite between the HEAD and the GET: the HEAD's size is not held against the read).
 * @example const plan = await readJsonIfPresent<PlannedPartition[]>(output, 'plan.json');
 */
export async function readJsonIfPresent<T>(
  store: Store,
  key: string,
  options: Omit<ReadJsonOptions, 'expectedSize'> = {},
): Promise<T | undefined> {
  if (!(await store.head(key))) return undefined;
  return readJson<T>(store, key, options);
}

function tryParse(bytes: Uint8Array): { ok: true; value: unknown } | { ok: false; message: string } {
  try {
    return { ok: true, value: JSON.parse(new TextDecoder().decode(bytes)) as unknown };
  } catch (err) {
    return { ok: false, message: (err as Error).message };
  }
}
