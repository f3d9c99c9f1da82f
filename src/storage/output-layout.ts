// The output folder is CAI's database: plan, job, predictions, records and summary of one job, read back
// by resume, Summarize, `cai predictions`, `cai report`, the engines and other tools. Every key of it is
// named here and nowhere else, with the format version recorded in `job.json`; docs/output-format.md
// describes each file. It sits in `storage` (the lowest layer that knows of stores) so that the worker,
// the planner, the engines, Summarize and the report all read one schema.
import { CaiError, ErrorCodes } from '../errors.js';
import type { Store } from './store.js';

/**
 * The output format this CAI writes and reads. Raise it when a file's meaning or a key changes; an output
 * of another version is refused (docs/output-format.md, "Versions").
 */
export const OUTPUT_FORMAT_VERSION = 2;

/**
 * Versions whose predictions, records, plan and summary read as this version's for a reader that does not
 * add to the output (`cai predictions`, `cai report`, `readPredictions`): format 2 changed only the
 * meaning of a failure's `data_path`. A run never resumes an output of another version.
 */
export const READABLE_OUTPUT_FORMAT_VERSIONS: readonly number[] = Object.freeze([1, OUTPUT_FORMAT_VERSION]);

/** Every fixed key of an output, relative to its root. @example output.put(OUTPUT_KEYS.plan, text) */
export const OUTPUT_KEYS = Object.freeze({
  /** The job as run, its identity and the format version (written with the plan, before any work). */
  job: 'job.json',
  /** One entry per partition: id, key, bytes (and keys or rows). */
  plan: 'plan.json',
  /** Input objects planning left out, and why. */
  skipped: 'skipped.json',
  /** The whole job across its runs. */
  summary: 'summary.json',
  /** Every record, as the seeds' Summarize wrote them. */
  combined: 'combined_data.json',
  /** One row per run. */
  resultStats: 'result_stats.csv',
  /** The live run's lock: host, pid, start, token. */
  lock: 'cai.lock',
} as const);

/** Folders of an output, relative to its root (no trailing slash: a Store lists by prefix). */
export const OUTPUT_FOLDERS = Object.freeze({
  /** `<id>.<parquet|csv|jsonl>`: one row per item. */
  predictions: 'predictions',
  /** `<id>.json`: a partition's execution record, written last. */
  results: 'results',
  /** `<id>.json`: a partition's last failure, as the AWS engine's handlers write it for Summarize. */
  failures: 'failures',
  /** The Slurm engine's state, rounds (manifests, scripts, failures) and task logs. */
  slurm: 'slurm',
  /** The AWS engine's per-execution folders (the Map's item manifest and results). */
  awsRuns: 'aws-runs',
} as const);

/** The prediction file formats and their extensions. */
export const PREDICTION_EXTENSIONS = Object.freeze({
  parquet: 'parquet',
  csv: 'csv',
  jsonl: 'jsonl',
} as const);

/** A prediction file format. */
export type PredictionFormat = keyof typeof PREDICTION_EXTENSIONS;

/** A partition's predictions file. @example predictionsKey('7', 'parquet') // 'predictions/7.parquet' */
export function predictionsKey(id: string, format: PredictionFormat): string {
  return `${OUTPUT_FOLDERS.predictions}/${id}.${PREDICTION_EXTENSIONS[format]}`;
}

/** A partition's execution record. @example recordKey('7') // 'results/7.json' */
export function recordKey(id: string): string {
  return `${OUTPUT_FOLDERS.results}/${id}.json`;
}

/**
 * Both files of a partition, relative to the output's root.
 * @example outputKeys('7', 'csv') // { predictions: 'predictions/7.csv', record: 'results/7.json' }
 */
export function outputKeys(id: string, format: PredictionFormat): { predictions: string; record: string } {
  return { predictions: predictionsKey(id, format), record: recordKey(id) };
}

/**
 * The partition id of a key under `predictions/` or `results/`.
 * @example partitionOfKey('predictions/7.parquet') // '7'
 */
export function partitionOfKey(key: string): string {
  const slash = key.indexOf('/');
  return key.slice(slash + 1, key.lastIndexOf('.'));
}

/** The Slurm engine's keys: its state and the folder of each round. */
export const SLURM_KEYS = Object.freeze({
  state: `${OUTPUT_FOLDERS.slurm}/state.json`,
  logs: `${OUTPUT_FOLDERS.slurm}/logs`,
  round: (n: number) => `${OUTPUT_FOLDERS.slurm}/round-${n}`,
});

/** The folder of one AWS execution. @example awsRunFolder('exec-1') // 'aws-runs/exec-1/' */
export function awsRunFolder(execution: string): string {
  return `${OUTPUT_FOLDERS.awsRuns}/${execution}/`;
}

/** The start of every temporary name an atomic write uses (hidden; listings skip it). */
export const TEMPORARY_PREFIX = '.cai-tmp-';

/**
 * What a run writes that a setup error may take back: the keys and folders of an output a run creates
 * before its first partition completes (docs/output-format.md). Never the predictions or records.
 */
export const SETUP_WRITES = Object.freeze({
  keys: [OUTPUT_KEYS.job, OUTPUT_KEYS.plan, OUTPUT_KEYS.skipped] as readonly string[],
  folders: [OUTPUT_FOLDERS.slurm, OUTPUT_FOLDERS.awsRuns] as readonly string[],
});

/**
 * Takes back what a run wrote before its first partition completed ({@link SETUP_WRITES}), when its
 * setup failed in an output that held no job before it: the job, plan and skipped lists and the engine
 * folders. An output holding any record or predictions file is left as it is. Returns the keys deleted.
 *
 * @example if (fresh) await removeSetupWrites(output);
 */
export async function removeSetupWrites(output: Store): Promise<string[]> {
  for (const folder of [OUTPUT_FOLDERS.results, OUTPUT_FOLDERS.predictions])
    for await (const _ of output.list(folder)) return [];
  const keys = [...SETUP_WRITES.keys];
  for (const folder of SETUP_WRITES.folders) for await (const o of output.list(folder)) keys.push(o.key);
  for (const key of keys) await output.delete(key);
  return keys;
}

/**
 * `job.json`: the job as run, its identity (every field that can change a prediction, plus the model's
 * hash and the input's listing) and the format version of the whole output.
 */
export interface JobDocument<Job = unknown> {
  readonly format_version: number;
  readonly job: Job;
  readonly identity: Readonly<Record<string, unknown>>;
}

/**
 * The output's `job.json`, or undefined when the output holds no job. An output of another format
 * version (or of a CAI before versions) is refused, naming both versions and what to do; a reader that
 * only reads passes `{ read: true }` to accept {@link READABLE_OUTPUT_FORMAT_VERSIONS} too.
 *
 * @example const previous = await readJobDocument<JobSpec>(output);
 */
export async function readJobDocument<Job>(
  output: Store,
  options: { readonly read?: boolean } = {},
): Promise<JobDocument<Job> | undefined> {
  if (!(await output.head(OUTPUT_KEYS.job))) return undefined;
  const where = output.describe(OUTPUT_KEYS.job);
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(await output.get(OUTPUT_KEYS.job)));
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new CaiError(
      ErrorCodes.corrupt,
      where,
      `is not valid JSON (${err.message}); use a new --output, or --overwrite to start over`,
    );
  }
  const version =
    typeof parsed === 'object' && parsed !== null && 'format_version' in parsed
      ? (parsed as { format_version: unknown }).format_version
      : undefined;
  const accepted = options.read ? READABLE_OUTPUT_FORMAT_VERSIONS : [OUTPUT_FORMAT_VERSION];
  if (typeof version !== 'number' || !accepted.includes(version)) {
    const written =
      typeof version === 'number'
        ? `output format ${version}, ${version > OUTPUT_FORMAT_VERSION ? 'a newer' : 'an older'} CAI's`
        : 'a CAI from before output format versions';
    throw new CaiError(
      ErrorCodes.outputFormat,
      where,
      `this output was written by ${written}; this CAI ${options.read ? `reads output formats ${accepted.join(' and ')}` : `continues output format ${OUTPUT_FORMAT_VERSION} only`} (docs/output-format.md). Use a new --output, or --overwrite to start over${typeof version === 'number' && version > OUTPUT_FORMAT_VERSION ? ', or the CAI that wrote it' : ''}`,
    );
  }
  return parsed as JobDocument<Job>;
}

/**
 * Writes `job.json` with the current format version.
 * @example await writeJobDocument(output, spec, identity);
 */
export async function writeJobDocument<Job>(
  output: Store,
  job: Job,
  identity: Readonly<Record<string, unknown>>,
): Promise<void> {
  const doc: JobDocument<Job> = { format_version: OUTPUT_FORMAT_VERSION, job, identity };
  await output.put(OUTPUT_KEYS.job, `${JSON.stringify(doc, null, 2)}\n`);
}
