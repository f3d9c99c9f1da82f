// Initialize's half shared by every engine: plan a job, or resume the one an output already holds, and
// find the partitions still to do. `runJob` and the AWS Initialize function both call these, so a job
// plans the same way wherever it runs.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { CaiError, ErrorCodes } from '../errors.js';
import { mapBounded, READ_CONCURRENCY } from '../storage/bounded.js';
import { inputListing, planInput, type PlannedPartition, type SkippedObject } from './plan.js';
import { readJson, readJsonIfPresent } from '../storage/json.js';
import { openInput, openParent } from '../storage/open.js';
import {
  OUTPUT_FOLDERS,
  OUTPUT_KEYS,
  predictionsKey,
  readJobDocument,
  recordKey,
  writeJobDocument,
  type PredictionFormat,
} from '../storage/output-layout.js';
import type { ObjectInfo, Store } from '../storage/store.js';
import { describeChanges, identityChanges, jobIdentity, type DerivedIdentity } from '../job/identity.js';
import type { JobSpec } from '../job/spec.js';

/** What planning may be told beyond the job. */
export interface PlanHooks {
  /** Checks a new plan before anything is written; throws to stop. */
  readonly check?: (plan: readonly PlannedPartition[]) => Promise<void>;
  /** A key prefix of the input never planned: the output, when it lies inside the input. */
  readonly exclude?: string;
  /**
   * Whether the model's bytes are hashed into the job's identity (default true). The AWS Initialize
   * function may not read the model: its stack fixes the model instead.
   */
  readonly hashModel?: boolean;
}

async function anyRecord(output: Store): Promise<boolean> {
  for await (const _ of output.list(OUTPUT_FOLDERS.results)) return true;
  return false;
}

/** SHA-256 of the model's bytes (a remote model is read through the store's download cache). */
async function modelSha256(spec: JobSpec): Promise<string> {
  const [store, key] = await openParent(spec.model, { s3Endpoint: spec.s3Endpoint });
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(await store.localPath(key))) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/** A plan decided by {@link decidePlan}: the partitions, and the writes that record a new plan. */
export interface DecidedPlan {
  readonly partitions: PlannedPartition[];
  /** Writes `job.json`, `skipped.json` and `plan.json` of a new plan; undefined when resuming one. */
  readonly write?: () => Promise<void>;
  /** Input objects a new plan left out, and why (what `skipped.json` will hold). */
  readonly skipped?: readonly SkippedObject[];
}

/**
 * {@link planOrResume} without its writes: the plan an output's earlier run of the same job holds, or a
 * new one checked by `hooks.check`, or the refusal of an output that holds another job. `cai aws run`
 * calls it on the submitting machine to refuse a job before any execution starts, as `cai run` would.
 *
 * @example const { partitions } = await decidePlan(spec, output, false, { check });
 */
export async function decidePlan(
  spec: JobSpec,
  output: Store,
  overwrite: boolean,
  hooks: PlanHooks = {},
): Promise<DecidedPlan> {
  const previous = overwrite ? undefined : await readJobDocument<JobSpec>(output);
  const input = await openInput(spec.input, { s3Endpoint: spec.s3Endpoint });
  const planOptions = { job: spec, exclude: hooks.exclude };
  const derived: DerivedIdentity = {
    modelSha256: (hooks.hashModel ?? true) ? await modelSha256(spec) : undefined,
  };
  if (previous) {
    const identity = jobIdentity(spec, {
      ...derived,
      inputListing: await inputListing(input, planOptions),
    });
    const changes = identityChanges(previous.identity, identity);
    if (changes.length && (await anyRecord(output))) {
      throw new CaiError(
        ErrorCodes.jobChanged,
        output.describe(OUTPUT_KEYS.job),
        `this output holds another job: ${describeChanges(changes).join('; ')}. Its predictions were made with the old values: run the old job again to resume it, use a new --output, or --overwrite to start over (it deletes the old predictions)`,
      );
    }
    if (!changes.length) {
      const plan = await readJsonIfPresent<PlannedPartition[]>(output, OUTPUT_KEYS.plan);
      if (plan) return { partitions: plan };
    }
  }
  const { partitions: plan, skipped, listing } = await planInput(input, planOptions);
  const identity = jobIdentity(spec, { ...derived, inputListing: listing });
  await hooks.check?.(plan);
  const write = async () => {
    await writeJobDocument(output, spec, identity);
    // What planning left out, beside the plan: Summarize names it (plan.json stays a plain list).
    // An earlier plan's list is overwritten, never deleted (the AWS stack grants Initialize no deletes).
    if (skipped.length || (await output.head(OUTPUT_KEYS.skipped))) {
      await output.put(OUTPUT_KEYS.skipped, `${JSON.stringify(skipped, null, 2)}\n`);
    }
    await output.put(OUTPUT_KEYS.plan, `${JSON.stringify(plan, null, 2)}\n`);
  };
  return { partitions: plan, write, skipped };
}

/**
 * The job's plan: the one in `plan.json` when the output holds an earlier run of the same job, else a
 * new one (every source option of the job applies), written with `job.json` before any work starts.
 * "The same job" is its identity (src/job/identity.ts): every field that can change a prediction, the
 * model's bytes and the input's listing. An output that holds a job of another identity with complete
 * partitions is refused before anything is written, naming each field that differs, its old and new
 * value; one without any (an earlier attempt that failed) is planned anew, since nothing is lost.
 *
 * @example const plan = await planOrResume(spec, await openStore(spec.output), false);
 */
export async function planOrResume(
  spec: JobSpec,
  output: Store,
  overwrite: boolean,
  hooks: PlanHooks = {},
): Promise<PlannedPartition[]> {
  const decided = await decidePlan(spec, output, overwrite, hooks);
  await decided.write?.();
  return decided.partitions;
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
      return [recordKey(p.id), predictionsKey(p.id, format)];
    }),
  );
  const stale = [...(await listOutputs(output)).keys()].filter((key) => !keep.has(key));
  for (const key of stale) await output.delete(key);
  return stale;
}

/** Every record and predictions file in the output, by key: `results/` and `predictions/` listed once. */
async function listOutputs(output: Store): Promise<Map<string, ObjectInfo>> {
  const written = new Map<string, ObjectInfo>();
  for (const folder of [OUTPUT_FOLDERS.results, OUTPUT_FOLDERS.predictions]) {
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
    const record = written.get(recordKey(p.id));
    const predictions = written.get(predictionsKey(p.id, format));
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
    const size = written.get(predictionsKey(p.id, format))?.size;
    if (await predictionsMatch(output, recordKey(p.id), size)) intact.add(p.id);
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
