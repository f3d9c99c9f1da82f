// `cai slurm run --detach` and `--dry-run`: plan like `runJob`, then submit the first round and the step
// that continues the chain after it (or only print the script), so nothing waits on the login session.
import { CaiError, ErrorCodes } from '../../errors.js';
import { pendingPartitions, planOrResume } from '../../plan/resume.js';
import { resolveJob, type JobSpec, type ResolvedJob } from '../../job/spec.js';
import { planPartitions, type PlannedPartition } from '../../plan/plan.js';
import { readJsonIfPresent } from '../../storage/json.js';
import { joinUri, openParent, openStore } from '../../storage/open.js';
import { submitStep } from './chain.js';
import { resolveSlurmOptions, type SlurmOptions } from '../../job/slurm-options.js';
import { logDirOf, preflight, readSlurmState, submitRound, taskJob, writeSlurmState } from './rounds.js';
import { batchScript, roundKeys, splitTasks } from './script.js';

/** What a detached submission started. */
export interface DetachedRun {
  readonly arrayJobId: string;
  /** The step after the array: it resubmits failures the retry policy allows, or summarizes. */
  readonly stepJobId: string;
  readonly round: number;
  readonly tasks: number;
  readonly partitions: number;
  /** Partitions that already had their record (resumed). */
  readonly resumed: number;
}

async function checkModel(spec: JobSpec): Promise<void> {
  const [store, key] = await openParent(spec.model, { s3Endpoint: spec.s3Endpoint });
  if (!(await store.head(key)))
    throw new CaiError(ErrorCodes.notFound, store.describe(key), 'the model does not exist; check --model');
}

function prepared(spec: JobSpec, partitions: number): { job: ResolvedJob; options: SlurmOptions } {
  const options = resolveSlurmOptions(spec.slurm);
  return { job: taskJob(resolveJob(spec, { partitions }), options), options };
}

/**
 * Plans (or resumes) the job, submits its pending partitions as one array and the step that runs when
 * the array has ended (it retries failures as the attached run would, then summarizes), and returns
 * their ids. Nothing is submitted when nothing is pending.
 *
 * @example const { arrayJobId } = await submitDetached(spec);
 */
export async function submitDetached(spec: JobSpec, overwrite = false): Promise<DetachedRun | undefined> {
  await checkModel(spec);
  const output = await openStore(spec.output, { s3Endpoint: spec.s3Endpoint });
  if (overwrite) await output.delete('summary.json');
  const plan = await planOrResume(spec, output, overwrite);
  const todo = overwrite ? plan : await pendingPartitions(output, plan, spec.predictionsFormat);
  if (!todo.length) return undefined;
  const { job, options } = prepared(spec, todo.length || plan.length);
  await preflight(job, options);
  const round = await submitRound(
    output,
    job,
    options,
    todo.map((partition) => ({ partition, attempt: 1 })),
  );
  // A new chain starts here (an earlier one in the same output, resumed now, is over).
  const state = await readSlurmState(output);
  await writeSlurmState(output, { ...state, detached: { firstRound: round.round, steps: [] } });
  const stepJobId = await submitStep(output, job, options, round);
  return {
    arrayJobId: round.jobId,
    stepJobId,
    round: round.round,
    tasks: round.tasks,
    partitions: todo.length,
    resumed: plan.length - todo.length,
  };
}

/**
 * The batch script `cai slurm run` would submit now, without writing or submitting anything.
 * @example process.stdout.write(await dryRunScript(spec));
 */
export async function dryRunScript(spec: JobSpec): Promise<string> {
  const output = await openStore(spec.output, { s3Endpoint: spec.s3Endpoint });
  const plan =
    (await readJsonIfPresent<PlannedPartition[]>(output, 'plan.json')) ??
    (await planPartitions(await openStore(spec.input, { s3Endpoint: spec.s3Endpoint }), { job: spec }));
  const todo = (await output.head('job.json'))
    ? await pendingPartitions(output, plan, spec.predictionsFormat)
    : plan;
  const { job, options } = prepared(spec, todo.length || plan.length);
  const state = await readSlurmState(output);
  const round = Math.max(0, ...state.rounds.map((r) => r.round)) + 1;
  const tasks = splitTasks(
    todo.map((partition) => ({ partition, attempt: 1 })),
    options,
  );
  return batchScript(options, {
    tasks: Math.max(1, tasks.length),
    logDir: logDirOf(job, options),
    manifest: joinUri(job.output, roundKeys(round).manifest),
    s3Endpoint: job.s3Endpoint,
  });
}
