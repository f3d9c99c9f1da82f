import { CaiError, ErrorCodes } from '../errors.js';
import type { PredictionFormat } from '../formats/predictions/writers.js';
import type { PlannedPartition } from '../plan/plan.js';
import type { Store } from '../storage/store.js';
import type { PartitionRecord } from '../worker/record.js';
import { outputKeys } from '../worker/run-partition.js';
import { mapBounded, READ_CONCURRENCY } from '../storage/bounded.js';

/**
 * Every key under `folder` of a store, from one paginated listing: what Summarize asks instead of a
 * HEAD per partition (100,000 HEADs at 20 ms are half an hour; the listing is 100 pages).
 *
 * @example const keys = await listKeys(output, 'results'); keys.has('results/1.json')
 */
export async function listKeys(store: Store, folder: string): Promise<Set<string>> {
  const keys = new Set<string>();
  for await (const o of store.list(folder)) keys.add(o.key);
  return keys;
}

/**
 * Parses a JSON object Summarize reads, or throws `E_CORRUPT` naming it: a truncated or corrupt
 * record says which object it is and what to do, instead of a bare SyntaxError.
 *
 * @example parseJsonObject<PartitionRecord>(bytes, output.describe('results/3.json'), 'delete it and run the job again')
 */
export function parseJsonObject<T>(bytes: Uint8Array, where: string, remedy: string): T {
  const text = new TextDecoder().decode(bytes);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new CaiError(
      ErrorCodes.corrupt,
      where,
      `is not valid JSON (${(err as Error).message}; ${text.length} bytes): truncated or corrupt; ${remedy}`,
    );
  }
  if (value === null || typeof value !== 'object') {
    throw new CaiError(
      ErrorCodes.corrupt,
      where,
      `holds ${JSON.stringify(value)?.slice(0, 40)}, not a JSON object; ${remedy}`,
    );
  }
  return value as T;
}

/**
 * The records of the planned partitions that have one, in plan order: `results/` listed once, then
 * the records read {@link READ_CONCURRENCY} at a time.
 *
 * @example const records = await readRecords(output, plan, 'parquet');
 */
export async function readRecords(
  output: Store,
  plan: readonly PlannedPartition[],
  format: PredictionFormat,
  concurrency = READ_CONCURRENCY,
): Promise<PartitionRecord[]> {
  const present = await listKeys(output, 'results');
  const keys = plan.map((p) => outputKeys(p.id, format).record).filter((k) => present.has(k));
  return mapBounded(keys, concurrency, async (key) =>
    parseJsonObject<PartitionRecord>(
      await output.get(key),
      output.describe(key),
      'delete it and run the job again to redo its partition',
    ),
  );
}

/**
 * `JSON.stringify(records, null, 2)` plus a newline, built record by record into one buffer: the text of
 * 100,000 records can pass V8's longest string, the bytes cannot.
 *
 * @example await output.put('combined_data.json', combinedJson(records));
 */
export function combinedJson(records: readonly unknown[]): Uint8Array {
  if (records.length === 0) return Buffer.from('[]\n');
  const chunks: Buffer[] = [Buffer.from('[\n')];
  records.forEach((r, i) => {
    chunks.push(
      Buffer.from(
        `  ${JSON.stringify(r, null, 2).replace(/\n/g, '\n  ')}${i < records.length - 1 ? ',' : ''}\n`,
      ),
    );
  });
  chunks.push(Buffer.from(']\n'));
  return Buffer.concat(chunks);
}
