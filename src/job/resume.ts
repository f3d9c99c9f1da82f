// Initialize's half shared by every engine: plan a job, or resume the one an output already holds, and
// find the partitions still to do. `runJob` and the AWS Initialize function both call these, so a job
// plans the same way wherever it runs.
import { CaiError, ErrorCodes } from '../errors.js';
import type { PredictionFormat } from '../formats/predictions/writers.js';
import { planPartitions, type PlannedPartition } from '../plan/plan.js';
import { openStore } from '../storage/open.js';
import type { Store } from '../storage/store.js';
import { outputKeys } from '../worker/run-partition.js';
import type { JobSpec } from './spec.js';

// Fields that change what the predictions are: a resumed run must match them.
const IDENTITY_FIELDS = ['input', 'model', 'inputs', 'label', 'predictionsFormat', 'fileLimit'] as const;

async function readJson<T>(store: Store, key: string): Promise<T | undefined> {
  if (!(await store.head(key))) return undefined;
  return JSON.parse(new TextDecoder().decode(await store.get(key))) as T;
}

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
  const previous = overwrite ? undefined : await readJson<JobSpec>(output, 'job.json');
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
    const plan = await readJson<PlannedPartition[]>(output, 'plan.json');
    // A resumed job passed the check when its job.json was written: nothing more is read for it.
    if (plan) return plan;
  }
  const input = await openStore(spec.input, { s3Endpoint: spec.s3Endpoint });
  const plan = await planPartitions(input, { job: spec, exclude: hooks.exclude });
  await hooks.check?.(plan);
  await output.put('job.json', `${JSON.stringify(spec, null, 2)}\n`);
  await output.put('plan.json', `${JSON.stringify(plan, null, 2)}\n`);
  return plan;
}

/**
 * The partitions of a plan without both a record and predictions in the output. It lists the output's
 * two folders (a request per 1000 objects on S3) rather than asking for each partition's objects, which
 * would cost two requests a partition before any work starts.
 *
 * @example const todo = await pendingPartitions(output, plan, 'parquet');
 */
export async function pendingPartitions(
  output: Store,
  plan: readonly PlannedPartition[],
  format: PredictionFormat,
): Promise<PlannedPartition[]> {
  const written = new Set<string>();
  for (const folder of ['results', 'predictions']) {
    for await (const o of output.list(folder)) written.add(o.key);
  }
  return plan.filter((p) => {
    const keys = outputKeys(p.id, format);
    return !(written.has(keys.record) && written.has(keys.predictions));
  });
}
