import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { CaiError, ErrorCodes } from '../errors.js';
import { OUTPUT_FOLDERS, OUTPUT_KEYS } from '../storage/output-layout.js';
import type { PartitionRecord } from '../worker/record.js';
import type { SweepRow } from '../experiments/sweep-rows.js';

/**
 * What an output folder holds: a sweep (`sweep.json`) or one finished run (records, summary).
 * @example const out = await loadOutput('cai-out'); if (out.kind === 'sweep') console.log(out.rows.length);
 */
export type LoadedOutput =
  | { readonly kind: 'sweep'; readonly dir: string; readonly rows: readonly SweepRow[] }
  | {
      readonly kind: 'run';
      readonly dir: string;
      readonly records: readonly PartitionRecord[];
      /** `summary.json` as written by Summarize, when present. */
      readonly summary?: Readonly<Record<string, unknown>>;
      /** `result_stats.csv` text, when present. */
      readonly resultStatsCsv?: string;
    };

async function readJson(file: string): Promise<unknown> {
  try {
    return JSON.parse(await readFile(file, 'utf8'));
  } catch (err) {
    throw new CaiError(
      ErrorCodes.corrupt,
      file,
      `is not readable JSON (${(err as Error).message}); re-run the job that wrote it`,
      {
        cause: err,
      },
    );
  }
}

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

/**
 * Successful partition records of a run: `combined_data.json`, or else every `results/*.json`. Failed
 * partitions (status `failed`) are left out: they have no timings.
 * @example const records = await loadRecords('cai-out');
 */
export async function loadRecords(dir: string): Promise<PartitionRecord[]> {
  const combined = path.join(dir, OUTPUT_KEYS.combined);
  let values: unknown[];
  if (existsSync(combined)) {
    const data = await readJson(combined);
    if (!Array.isArray(data))
      throw new CaiError(ErrorCodes.corrupt, combined, 'should hold an array of partition records');
    values = data;
  } else if (existsSync(path.join(dir, OUTPUT_FOLDERS.results))) {
    const results = path.join(dir, OUTPUT_FOLDERS.results);
    const files = (await readdir(results)).filter((f) => f.endsWith('.json')).sort();
    values = await Promise.all(files.map((f) => readJson(path.join(results, f))));
  } else {
    throw new CaiError(
      ErrorCodes.notFound,
      dir,
      'has no sweep.json, combined_data.json or results/ folder; point at the output folder of `cai run` or `cai bench`',
    );
  }
  return values.filter(isRecord);
}

/**
 * Loads an output folder of `cai run` or `cai bench`.
 * @example const out = await loadOutput('bench-out');
 */
export async function loadOutput(dir: string): Promise<LoadedOutput> {
  if (!existsSync(dir))
    throw new CaiError(ErrorCodes.notFound, dir, 'does not exist; give the output folder of a finished run');
  const sweepFile = path.join(dir, 'sweep.json');
  if (existsSync(sweepFile)) {
    const rows = await readJson(sweepFile);
    if (!Array.isArray(rows))
      throw new CaiError(ErrorCodes.corrupt, sweepFile, 'should hold an array of sweep rows');
    return { kind: 'sweep', dir, rows: rows as SweepRow[] };
  }
  const records = await loadRecords(dir);
  const summaryFile = path.join(dir, OUTPUT_KEYS.summary);
  const summary = existsSync(summaryFile)
    ? ((await readJson(summaryFile)) as Record<string, unknown>)
    : undefined;
  const statsFile = path.join(dir, OUTPUT_KEYS.resultStats);
  const resultStatsCsv = existsSync(statsFile) ? await readFile(statsFile, 'utf8') : undefined;
  return { kind: 'run', dir, records, summary, resultStatsCsv };
}
