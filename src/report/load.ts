import { existsSync } from 'node:fs';
import { CaiError, ErrorCodes } from '../errors.js';
import { readJson, readJsonIfPresent } from '../storage/json.js';
import { naturalCompare } from '../storage/natural-sort.js';
import { openStore, uriScheme, type StoreOptions } from '../storage/open.js';
import { OUTPUT_FOLDERS, OUTPUT_KEYS } from '../storage/output-layout.js';
import { listKeys, type Store } from '../storage/store.js';
import type { PartitionRecord } from '../worker/record.js';
import type { SweepRow } from '../experiments/sweep-rows.js';

/**
 * What an output folder holds: a sweep (`sweep.json`) or one finished run (records, summary).
 * @example const out = await loadOutput('cai-out'); if (out.kind === 'sweep') console.log(out.rows.length);
 */
export type LoadedOutput =
  | {
      readonly kind: 'sweep';
      /** The output as the user named it (a folder or an `s3://` URI). */
      readonly dir: string;
      readonly store: Store;
      readonly rows: readonly SweepRow[];
    }
  | {
      readonly kind: 'run';
      readonly dir: string;
      /** Where the output's files are read from (the local folder or the object store). */
      readonly store: Store;
      readonly records: readonly PartitionRecord[];
      /** `summary.json` as written by Summarize, when present. */
      readonly summary?: Readonly<Record<string, unknown>>;
      /** `result_stats.csv` text, when present. */
      readonly resultStatsCsv?: string;
    };

const REMEDY = 're-run the job that wrote it';

function isRecord(v: unknown): v is PartitionRecord {
  const r = v as Partial<PartitionRecord> | null;
  return (
    typeof r === 'object' &&
    r !== null &&
    r.status === 'ok' &&
    typeof r.items === 'number' &&
    typeof r.timings === 'object'
  );
}

async function jsonArray(store: Store, key: string, what: string): Promise<unknown[]> {
  const data = await readJson<unknown>(store, key, { remedy: REMEDY });
  if (!Array.isArray(data))
    throw new CaiError(ErrorCodes.corrupt, store.describe(key), `should hold ${what}`);
  return data;
}

/**
 * Successful partition records of a run: `combined_data.json`, or else every `results/*.json`. Failed
 * partitions (status `failed`) are left out: they have no timings.
 * @example const records = await loadRecords(await openStore('cai-out'));
 */
export async function loadRecords(store: Store): Promise<PartitionRecord[]> {
  let values: unknown[];
  if (await store.head(OUTPUT_KEYS.combined)) {
    values = await jsonArray(store, OUTPUT_KEYS.combined, 'an array of partition records');
  } else {
    const results = [...(await listKeys(store, OUTPUT_FOLDERS.results))]
      .filter((k) => k.endsWith('.json'))
      .sort(naturalCompare);
    if (!results.length)
      throw new CaiError(
        ErrorCodes.notFound,
        store.describe(''),
        'has no sweep.json, combined_data.json or results/ folder; point at the output folder of `cai run` or `cai bench`',
      );
    values = await Promise.all(results.map((k) => readJson<unknown>(store, k, { remedy: REMEDY })));
  }
  return values.filter(isRecord);
}

/**
 * Loads the output of `cai run` or `cai bench`: a local folder or an object store URI (`s3://...`).
 * @example const out = await loadOutput('bench-out');
 */
export async function loadOutput(dir: string, options: StoreOptions = {}): Promise<LoadedOutput> {
  if (uriScheme(dir) === 'file' && !existsSync(dir))
    throw new CaiError(ErrorCodes.notFound, dir, 'does not exist; give the output folder of a finished run');
  const store = await openStore(dir, options);
  if (await store.head('sweep.json')) {
    const rows = await jsonArray(store, 'sweep.json', 'an array of sweep rows');
    return { kind: 'sweep', dir, store, rows: rows as SweepRow[] };
  }
  const records = await loadRecords(store);
  const summary = await readJsonIfPresent<Record<string, unknown>>(store, OUTPUT_KEYS.summary, {
    remedy: REMEDY,
  });
  const stats = await store.head(OUTPUT_KEYS.resultStats);
  const resultStatsCsv = stats
    ? new TextDecoder().decode(await store.get(OUTPUT_KEYS.resultStats, { expectedSize: stats.size }))
    : undefined;
  return { kind: 'run', dir, store, records, summary, resultStatsCsv };
}
