import type { PredictionFormat } from '../formats/predictions/writers.js';
import type { PlannedPartition } from '../plan/plan.js';
import type { Store } from '../storage/store.js';
import type { PartitionRecord } from '../worker/record.js';
import { OUTPUT_FOLDERS, outputKeys } from '../storage/output-layout.js';
import { mapBounded, READ_CONCURRENCY } from '../storage/bounded.js';
import { readJsonObject } from '../storage/json.js';

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

/** Where {@link readRecords} may take records from instead of reading them. */
export interface KnownRecords {
  /** Records the caller holds as its workers wrote them (the local engine's map): used as they are. */
  readonly held?: ReadonlyMap<string, PartitionRecord>;
  /**
   * Records read from somewhere else (the AWS Map's exported results): each used only when the listing
   * shows its object with exactly the size of the record's JSON as workers write it, else read.
   */
  readonly reported?: ReadonlyMap<string, PartitionRecord>;
}

/** The bytes of a record as workers write it: `JSON.stringify(record, null, 2)` and a newline. */
export const recordText = (record: PartitionRecord): string => `${JSON.stringify(record, null, 2)}\n`;

/**
 * The records of the planned partitions that have one, in plan order: `results/` listed once, then
 * the records read {@link READ_CONCURRENCY} at a time, except those `known` gives.
 *
 * @example const records = await readRecords(output, plan, 'parquet');
 */
export async function readRecords(
  output: Store,
  plan: readonly PlannedPartition[],
  format: PredictionFormat,
  concurrency = READ_CONCURRENCY,
  known: KnownRecords = {},
): Promise<PartitionRecord[]> {
  // The listing gives each record's size too: a read that returns fewer bytes (a 200 cut short) is
  // retried as a transient fault, and only a record bad as a whole is called corrupt.
  const sizes = new Map<string, number>();
  for await (const o of output.list(OUTPUT_FOLDERS.results)) sizes.set(o.key, o.size);
  const present = plan.filter((p) => sizes.has(outputKeys(p.id, format).record));
  // Records the map already holds (this run's, as its workers wrote them) are not read again: on S3 a
  // GET per partition is most of Summarize's time. A reported record stands for its object only if the
  // object listed has its size (a later write of another size, or none, means the object is read).
  return mapBounded(present, concurrency, async (p) => {
    const key = outputKeys(p.id, format).record;
    const own = known.held?.get(p.id);
    if (own) return own;
    const reported = known.reported?.get(p.id);
    if (reported && Buffer.byteLength(recordText(reported)) === sizes.get(key)) return reported;
    return readJsonObject<PartitionRecord>(output, key, {
      expectedSize: sizes.get(key),
      remedy: 'delete it and run the job again to redo its partition',
    });
  });
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
