// JSON objects in a store: records, plans, manifests, state files.
import type { Store } from './store.js';

/**
 * An object parsed as JSON; a missing one is the store's not-found error.
 * @example const record = await readJson<PartitionRecord>(output, 'results/1.json');
 */
export async function readJson<T>(store: Store, key: string): Promise<T> {
  return JSON.parse(new TextDecoder().decode(await store.get(key))) as T;
}

/**
 * An object parsed as JSON, or `undefined` when there is none.
 * @example const plan = await readJsonIfPresent<PlannedPartition[]>(output, 'plan.json');
 */
export async function readJsonIfPresent<T>(store: Store, key: string): Promise<T | undefined> {
  if (!(await store.head(key))) return undefined;
  return readJson<T>(store, key);
}
