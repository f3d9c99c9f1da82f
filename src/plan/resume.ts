// Initialize's half shared by every engine: plan a job, or resume the one an output already holds, and
// find the partitions still to do. `runJob` and the AWS Initialize function both call these, so a job
// plans the same way wherever it runs.
import { CaiError, ErrorCodes } from '../errors.js';
import type { PredictionFormat } from '../formats/predictions/writers.js';
import { mapBounded, READ_CONCURRENCY } from '../storage/bounded.js';
import { planInput, type PlannedPartition } from './plan.js';
import { readJson, readJsonIfPresent } from '../storage/json.js';
import { openInput } from '../storage/open.js';
import type { ObjectInfo, Store } from '../storage/store.js';
import { outputKeys } from '../worker/run-partition.js';
import type { JobSpec } from '../job/spec.js';

// Fields that change what the predictions are: a resumed run must match them.
const IDENTITY_FIELDS = ['input', 'model', 'inputs', 'label', 'predictionsFormat', 'fileLimit'] as const;

/** What planning may be told beyond the job. */
export interface PlanHooks {
  /** Checks a new plan before anything is written; throws to stop. */
  readonly check?: (plan: readonly PlannedPartition[]) => Promise<void>;
  /** A key prefix of the input never planned: the output, when it lies inside the input. */
  readonly exclude?: string;
}

async function anyRecord(output: Store): Promise<boolean> {
  for await (const _ of output.list('results')) return true;
  return false;
}

/**
 * The job's plan: the one in `plan.json` when the output holds an earlier run of the same job, else a
 * new one (every source option of the job applies), written with `job.json` before any work starts.
 * An output that holds a different job with complete partitions is refused, naming the fields that
 * changed; one without any (an earlier attempt that failed) is planned anew, since nothing is lost.
 *
 * @example const plan = await planOrResume(spec, await openStore(spec.output), false);
 */
export async function planOrResume(
  spec: JobSpec,
  output: Store,
  overwrite: boolean,
  hooks: PlanHooks = {},
): Promise<PlannedPartition[]> {
  const previous = overwrite ? undefined : await readJsonIfPresent<JobSpec>(output, 'job.json');
  const changed = previous
    ? IDENTITY_FIELDS.filter((f) => JSON.stringify(previous[f]) !== JSON.stringify(spec[f]))
    : [];
  if (previous && !(changed.length && !(await anyRecord(output)))) {
    if (changed.length) {
      throw new CaiError(
        ErrorCodes.option,
        output.describe('job.json'),
        `this output holds a different job (${changed.join(', ')} changed); use a new output, or --overwrite to start over`,
      );
    }
    const plan = await readJsonIfPresent<PlannedPartition[]>(output, 'plan.json');
    // A resumed job passed the check when its job.json was written: nothing more is read for it.
    if (plan) return plan;
  }
  const input = await openInput(spec.input, { s3Endpoint: spec.s3Endpoint });
  const { partitions: plan, skipped } = await planInput(input, { job: spec, exclude: hooks.exclude });
  await hooks.check?.(plan);
  await output.put('job.json', `${JSON.stringify(spec, null, 2)}\n`);
  // What planning left out, beside the plan: Summarize names it (plan.json stays a plain list).
  // An earlier plan's list is overwritten, never deleted (the AWS stack grants Initialize no deletes).
  if (skipped.length || (await output.head('skipped.json'))) {
    await output.put('skipped.json', `${JSON.stringify(skipped, null, 2)}\n`);
  }
  await output.put('plan.json', `${JSON.stringify(plan, null, 2)}\n`);
  return plan;
}

/**
 * After `--overwrite`: deletes the records and predictions of an earlier job that the new plan does not
 * make (a smaller job must not leave the old job's files beside its own). Returns the keys deleted.
 *
 * @example await removeStaleOutputs(output, plan, 'parquet'); // ['predictions/7.parquet', 'results/7.json']
 */
export async function removeStaleOutputs(
  output: Store,
  plan: readonly PlannedPartition[],
  format: PredictionFormat,
): Promise<string[]> {
  const keep = new Set(
    plan.flatMap((p) => {
      const keys = outputKeys(p.id, format);
      return [keys.record, keys.predictions];
    }),
  );
  const stale = [...(await listOutputs(output)).keys()].filter((key) => !keep.has(key));
  for (const key of stale) await output.delete(key);
  return stale;
}

/** Every record and predictions file in the output, by key: `results/` and `predictions/` listed once. */
async function listOutputs(output: Store): Promise<Map<string, ObjectInfo>> {
  const written = new Map<string, ObjectInfo>();
  for (const folder of ['results', 'predictions']) {
    for await (const o of output.list(folder)) written.set(o.key, o);
  }
  return written;
}

/**
 * The partitions of a plan without both a record and predictions in the output, or whose predictions
 * file is not the size its record says (torn or replaced): those are done again. It lists the output's
 * two folders (a request per 1000 objects on S3) rather than asking for each partition's objects. A
 * worker writes the predictions, then the record: only a record whose predictions were written after it
 * (or a listing without times) is read to compare sizes, so resuming a finished job of 100,000
 * partitions reads no record at all.
 *
 * @example const todo = await pendingPartitions(output, plan, 'parquet');
 */
export async function pendingPartitions(
  output: Store,
  plan: readonly PlannedPartition[],
  format: PredictionFormat,
): Promise<PlannedPartition[]> {
  const written = await listOutputs(output);
  const intact = new Set<string>();
  const suspect: PlannedPartition[] = [];
  for (const p of plan) {
    const keys = outputKeys(p.id, format);
    const record = written.get(keys.record);
    const predictions = written.get(keys.predictions);
    if (!record || !predictions) continue;
    const ordered =
      record.modified !== undefined &&
      predictions.modified !== undefined &&
      predictions.modified <= record.modified;
    if (ordered) intact.add(p.id);
    else suspect.push(p);
  }
  // A suspect's record holds the size its predictions were written with; records are read as many at
  // once as Summarize reads, so S3's latency does not set the pace.
  await mapBounded(suspect, READ_CONCURRENCY, async (p) => {
    const keys = outputKeys(p.id, format);
    if (await predictionsMatch(output, keys.record, written.get(keys.predictions)?.size)) intact.add(p.id);
  });
  return plan.filter((p) => !intact.has(p.id));
}

/** Whether a record is readable and its predictions file has the size it recorded (when it did). */
async function predictionsMatch(
  output: Store,
  recordKey: string,
  size: number | undefined,
): Promise<boolean> {
  let record: { predictions_bytes?: unknown };
  try {
    record = await readJson<typeof record>(output, recordKey);
  } catch (err) {
    // A torn record is redone; a store that cannot be read is not a reason to redo work.
    if (err instanceof SyntaxError) return false;
    throw err;
  }
  return typeof record.predictions_bytes !== 'number' || record.predictions_bytes === size;
}
